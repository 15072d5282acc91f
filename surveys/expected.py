"""What a valid answer to a number or date question looks like, for the engine's words.

Examples are found by trying values against the question's own constraint (the engine does the
trying): likely values first, then values around the bounds the constraint names, so that a
year-of-birth question gets a year as its example and never "12".
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any, Iterator

from surveys.model import QuestionType

_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def typed_date(text: str) -> tuple[int, int, int] | None:
    """(day, month, year) of a date typed as day/month/year (also with . or -) or YYYY-MM-DD,
    not yet checked against the calendar; None when the text has neither shape."""
    cleaned = text.strip()
    if match := _ISO_DATE.fullmatch(cleaned):
        year, month, day = (int(part) for part in match.groups())
        return day, month, year
    if match := _DAY_MONTH_YEAR.fullmatch(cleaned):
        day, month, year = (int(part) for part in match.groups())
        return day, month, year
    return None


def missing_day(text: str) -> tuple[int, int, int] | None:
    """(day, month, year) of a typed date whose month exists but has no such day."""
    parts = typed_date(text)
    if parts is None:
        return None
    day, month, year = parts
    if not 1 <= month <= 12 or year < dt.MINYEAR or not calendar.monthrange(year, month)[1] < day <= 31:
        return None
    return day, month, year


_NUMBER_LITERAL = re.compile(r"(?<![\w.$'{])-?\d+(?:\.\d+)?(?![\w.'-])")
_DATE_LITERAL = re.compile(r"date\(\s*'(\d{4})-(\d{2})-(\d{2})'\s*\)")


def example_candidates(kind: QuestionType, constraint: str, year: int) -> Iterator[Any]:
    """Values worth trying as an example, likely ones first, then around the constraint's bounds."""
    numbers = sorted({float(n) for n in _NUMBER_LITERAL.findall(_DATE_LITERAL.sub("", constraint))})
    midpoints = [(a + b) / 2 for a, b in zip(numbers, numbers[1:])]
    if kind is QuestionType.INTEGER:
        yield from (12, 5, 2, 1, 0, 30, 100)
        for value in midpoints + numbers:
            yield from (int(value), int(value) + 1, int(value) - 1)
    elif kind is QuestionType.DECIMAL:
        yield from (3.5, 1.5, 0.5, 12.5)
        for value in midpoints + numbers:
            yield from (value + 0.5, value, value - 0.5)
    else:  # a day above 12 shows which number is the day
        for back in (0, 1, 10, 30):
            if year - back >= dt.MINYEAR:
                yield from (dt.date(year - back, 12, 25), dt.date(year - back, 6, 15), dt.date(year - back, 1, 15))
        for found in _DATE_LITERAL.findall(constraint):
            try:
                bound = dt.date(*(int(part) for part in found))
                yield from (bound + dt.timedelta(days=14), bound - dt.timedelta(days=14), bound)
            except (ValueError, OverflowError):  # not a day, or at the calendar's ends
                continue


def shown_example(value: Any, ui: str) -> str:
    """An example as a person types it: 25/12/2026, 12, 3,5 (Vietnamese) or 3.5 (English)."""
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return text.replace(".", ",") if ui == "vi" else text  # Vietnamese writes 3,5
