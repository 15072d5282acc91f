"""The XPath core function table (selected(), round(), concat(), format-date() …) with arities.

Part of `surveys.expressions`: the parser looks names up in `_FUNCTIONS` (functions of their
evaluated arguments) and `_SPECIAL_FORMS` / `_BUILDERS` (forms that need their unevaluated
arguments), so an unknown function or a wrong argument count is reported when the form is
loaded. ODK's further functions (`surveys.xpath_functions`) register themselves into the same
tables.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from surveys.xpath_values import (
    _MAX_ROUND_PLACES,
    _NAN,
    _ROUNDING,
    Environment,
    ExpressionError,
    NodeSet,
    _is_finite,
    _is_nan,
    _items,
    _to_bool,
    _to_date,
    _to_float,
    _to_number,
    to_string,
)

if TYPE_CHECKING:
    from surveys.xpath_tree import _Node

def _selected(value: object, choice: object) -> bool:
    needle = to_string(choice).strip()
    if value.__class__ is tuple:
        # A stored answer is a tuple of plain strings, each its own string(): no copy needed.
        for item in value:
            if item.__class__ is not str:
                break
        else:
            return needle in value
    return needle in _items(value)


def _selected_at(value: object, index: object) -> str:
    items = _items(value)
    position = _to_number(index)
    if not _is_finite(position) or not 0 <= position < len(items):
        return ""
    return items[int(position)]


def _count_selected(value: object) -> int:
    return len(_items(value))


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regex(value: object, pattern: object) -> bool:
    try:
        compiled = _compile(to_string(pattern))
    except re.error:
        return False
    return compiled.search(to_string(value)) is not None


def _coalesce(first: object, second: object) -> object:
    return first if to_string(first) != "" else second


def _int(value: object) -> int | float:
    number = _to_number(value)
    if isinstance(number, int) or not math.isfinite(number):
        return number
    return int(number)


def _round(value: object, places: object = 0) -> int | float:
    """Half away from zero on the decimal digits the author sees, as JavaRosa does."""
    number, digits = _to_number(value), _to_number(places)
    if _is_nan(digits):
        return _NAN
    if isinstance(number, float) and not math.isfinite(number):
        return number
    digits = int(max(-_MAX_ROUND_PLACES, min(_MAX_ROUND_PLACES, digits)))
    exact = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    try:
        rounded = exact.quantize(Decimal(1).scaleb(-digits), context=_ROUNDING)
    except InvalidOperation:
        return number
    return float(rounded) if isinstance(number, float) else int(rounded)


def _rounding(direction: Callable[[float], int]) -> Callable[[object], int | float]:
    def apply(value: object) -> int | float:
        number = _to_number(value)
        return direction(number) if _is_finite(number) else number

    return apply


def _abs(value: object) -> int | float:
    return abs(_to_number(value))


def _pow(base: object, exponent: object) -> float:
    """Java's Math.pow semantics: domain errors are NaN, overflow is infinite."""
    a, b = _to_float(_to_number(base)), _to_float(_to_number(exponent))
    try:
        return math.pow(a, b)
    except OverflowError:
        odd_integer_power = b.is_integer() and b % 2 == 1
        return -math.inf if a < 0 and odd_integer_power else math.inf
    except ValueError:
        return math.inf if a == 0 and b < 0 else _NAN


def _extremum(pick: Callable[..., int | float]) -> Callable[..., int | float]:
    """ODK's variadic min/max: one empty or non-numeric argument poisons the result."""

    def apply(*values: object) -> int | float:
        numbers = [_to_number(value) for value in _nodes(values)]
        if not numbers:
            return _NAN
        if any(_is_nan(number) for number in numbers):
            return _NAN
        return pick(numbers)

    return apply


def _nodes(values: tuple[object, ...]) -> list[object]:
    """Arguments with every node-set spread into its answered nodes (an unanswered instance is skipped)."""
    found: list[object] = []
    for value in values:
        if value.__class__ is NodeSet:
            found += [node for node in value if to_string(node) != ""]
        else:
            found.append(value)
    return found


def _slice_index(value: object) -> int:
    number = _to_number(value)
    if _is_nan(number):
        return 0
    if not _is_finite(number):
        return sys.maxsize if number > 0 else -sys.maxsize
    return int(number)


def _substr(value: object, start: object, end: object = None) -> str:
    """ODK substr: 0-based start, exclusive end, negatives count from the end."""
    text = to_string(value)
    stop = len(text) if end is None else _slice_index(end)
    return text[_slice_index(start) : stop]


def _substring_before(value: object, separator: object) -> str:
    text, needle = to_string(value), to_string(separator)
    index = text.find(needle)
    return "" if index < 0 or needle == "" else text[:index]


def _substring_after(value: object, separator: object) -> str:
    text, needle = to_string(value), to_string(separator)
    index = text.find(needle)
    return "" if index < 0 else text[index + len(needle) :]


def _date(value: object) -> datetime.date | str:
    parsed = _to_date(value)
    if parsed is None:
        return ""
    if isinstance(parsed, datetime.datetime):
        return parsed.date()
    return parsed


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FORMAT_CODE = re.compile(r"%(.)", re.DOTALL)


def _format_date(value: object, pattern: object) -> str:
    """ODK's format-date codes, spelled out here so the output ignores the server locale."""
    moment = _to_date(value)
    if moment is None:
        return ""
    clock = moment if isinstance(moment, datetime.datetime) else datetime.datetime.min
    codes = {
        "Y": f"{moment.year:04d}",
        "y": f"{moment.year % 100:02d}",
        "m": f"{moment.month:02d}",
        "n": str(moment.month),
        "b": _MONTHS[moment.month - 1],
        "d": f"{moment.day:02d}",
        "e": str(moment.day),
        "a": _WEEKDAYS[moment.weekday()],
        "H": f"{clock.hour:02d}",
        "h": str(clock.hour),
        "M": f"{clock.minute:02d}",
        "S": f"{clock.second:02d}",
    }
    return _FORMAT_CODE.sub(lambda match: codes.get(match.group(1), match.group(0)), to_string(pattern))


def _today(env: Environment) -> datetime.date:
    if env.today is None:
        raise ExpressionError("today() needs a date")
    return env.today


def _now(env: Environment) -> datetime.datetime:
    if env.now is None:
        raise ExpressionError("now() needs a date and time")
    return env.now


@dataclass(frozen=True)
class _Arity:
    minimum: int
    maximum: int | None  # None: any number of arguments

    def accepts(self, count: int) -> bool:
        return count >= self.minimum and (self.maximum is None or count <= self.maximum)

    def __str__(self) -> str:
        plural = "" if self.minimum == 1 else "s"
        if self.maximum is None:
            return f"at least {self.minimum} argument{plural}"
        if self.minimum == self.maximum:
            return f"{self.minimum} argument{plural}"
        return f"{self.minimum} to {self.maximum} arguments"


@dataclass(frozen=True)
class _Function:
    implementation: Callable[..., object]
    arity: _Arity
    needs_env: bool = False


def _function(
    implementation: Callable[..., object], minimum: int, maximum: int | None, *, needs_env: bool = False
) -> _Function:
    return _Function(implementation, _Arity(minimum, maximum), needs_env)


def _math(operation: Callable[..., float]) -> Callable[..., float]:
    """An ODK math function: arguments as numbers, NaN instead of an error outside its domain."""

    def apply(*values: object) -> float:
        try:
            return float(operation(*(float(_to_number(v)) for v in values)))
        except (ValueError, OverflowError):
            return math.nan

    return apply


_FUNCTIONS: dict[str, _Function] = {
    "selected": _function(_selected, 2, 2),
    "selected-at": _function(_selected_at, 2, 2),
    "count-selected": _function(_count_selected, 1, 1),
    "string-length": _function(lambda value: len(to_string(value)), 0, 1),
    "regex": _function(_regex, 2, 2),
    "coalesce": _function(_coalesce, 2, 2),
    "number": _function(_to_number, 1, 1),
    "int": _function(_int, 1, 1),
    "today": _function(_today, 0, 0, needs_env=True),
    "now": _function(_now, 0, 0, needs_env=True),
    "not": _function(lambda value: not _to_bool(value), 1, 1),
    "true": _function(lambda: True, 0, 0),
    "false": _function(lambda: False, 0, 0),
    "boolean": _function(_to_bool, 1, 1),
    "string": _function(to_string, 1, 1),
    "concat": _function(lambda *values: "".join(to_string(value) for value in values), 1, None),
    "round": _function(_round, 1, 2),
    "floor": _function(_rounding(math.floor), 1, 1),
    "ceiling": _function(_rounding(math.ceil), 1, 1),
    "abs": _function(_abs, 1, 1),
    "pow": _function(_pow, 2, 2),
    "sqrt": _function(_math(math.sqrt), 1, 1),
    "exp": _function(_math(math.exp), 1, 1),
    "exp10": _function(_math(lambda x: 10.0 ** x), 1, 1),
    "log": _function(_math(math.log), 1, 1),
    "log10": _function(_math(math.log10), 1, 1),
    "sin": _function(_math(math.sin), 1, 1),
    "cos": _function(_math(math.cos), 1, 1),
    "tan": _function(_math(math.tan), 1, 1),
    "asin": _function(_math(math.asin), 1, 1),
    "acos": _function(_math(math.acos), 1, 1),
    "atan": _function(_math(math.atan), 1, 1),
    "atan2": _function(_math(math.atan2), 2, 2),
    "pi": _function(lambda: math.pi, 0, 0),
    "min": _function(_extremum(min), 1, None),
    "max": _function(_extremum(max), 1, None),
    "contains": _function(lambda text, part: to_string(part) in to_string(text), 2, 2),
    "starts-with": _function(lambda text, part: to_string(text).startswith(to_string(part)), 2, 2),
    "ends-with": _function(lambda text, part: to_string(text).endswith(to_string(part)), 2, 2),
    "substr": _function(_substr, 2, 3),
    "substring-before": _function(_substring_before, 2, 2),
    "substring-after": _function(_substring_after, 2, 2),
    "normalize-space": _function(lambda value: " ".join(to_string(value).split()), 1, 1),
    "date": _function(_date, 1, 1),
    "format-date": _function(_format_date, 2, 2),
}

# Forms that look like functions but need their unevaluated arguments.
_SPECIAL_FORMS: dict[str, _Arity] = {
    "if": _Arity(3, 3),
    "jr:choice-name": _Arity(2, 2),
}
#: Functions whose node the parser cannot build from arguments alone (they need the data
#: beside the form, or where they stand in the source): name → builder(parser, name token,
#: argument tokens, arguments). Filled by `surveys.xpath_functions`.
_BUILDERS: dict[str, Callable[..., "_Node"]] = {}
