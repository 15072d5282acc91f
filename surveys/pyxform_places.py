"""Where in a workbook a pyxform message points: sheet, spreadsheet row and column as written.

pyxform words its errors and warnings for people reading the XForm build; the loader reports
each at the place the author can find it, the way it reports its own problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from pyxform import aliases
from pyxform.xls2json_backends import DefinitionData

from surveys.model import Location

_PYXFORM_ROW = re.compile(r"\[row\s*:\s*(\d+)\]")
_SHEETS = r"(survey|choices|settings|entities|external_choices|osm)"
# Only a quoted sheet name says where the problem is: "List name not in choices sheet"
# is about a row of the survey sheet.
_PYXFORM_SHEET = re.compile(rf"'{_SHEETS}' sheet|sheet: '{_SHEETS}'")
# "the 'label' value is invalid", or the second of two clashing headers.
_PYXFORM_COLUMN = re.compile(r"the '([^']+)' (?:value|column)|found: '[^']+', '([^']+)'")
# pyxform's older messages name no column: the column each is about.
_PYXFORM_MESSAGE_COLUMNS = {
    "Missing calculation": "calculation", "with no name": "name", "with no type": "type",
    "List name not in": "type", "Repeat loop without list name": "type", "'or other' question": "type",
    "table list": "type", "Choice filter not supported": "choice_filter", "has no label": "label",
    "Parameter": "parameters", "Unmatched": "type",
}
_PYXFORM_ELEMENT = re.compile(r"survey element named '([^']+)'")


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def problem_from_pyxform(message: str, workbook: DefinitionData | None) -> Problem:
    """Turn a pyxform error or warning into a Problem at the sheet, row and column it names.

    pyxform writes the row as "[row : N]" (1-based, header = 1) and, in newer messages,
    "On the 'choices' sheet, the 'label' value"; older ones name no column, so the column
    is inferred from the message. The column is reported as the header written in that row.
    """
    row_match = _PYXFORM_ROW.search(message)
    sheet_match = _PYXFORM_SHEET.search(message)
    row = int(row_match.group(1)) if row_match else None
    named = _PYXFORM_ELEMENT.search(message)
    if row is None and named and workbook is not None:
        rows = sheet_rows(workbook, "survey")
        row = next((index + 2 for index, r in enumerate(rows) if cell(r, "name") == named.group(1)), None)
    if sheet_match:
        sheet = sheet_match.group(1) or sheet_match.group(2)
    else:
        sheet = "survey" if row else "file"
    column_match = _PYXFORM_COLUMN.search(message)
    if column_match:
        column = column_match.group(1) or column_match.group(2)
    else:
        column = next((c for fragment, c in _PYXFORM_MESSAGE_COLUMNS.items() if fragment in message), None)
    if message.startswith("Invalid headers"):
        row = 1
    elif column and row and workbook is not None:
        column = header_in_row(sheet_rows(workbook, sheet), row - 2, column)
    return Problem(Location(sheet, row, column), _PYXFORM_ROW.sub("", message).strip())


def sheet_rows(workbook: DefinitionData, sheet: str) -> list[dict]:
    return getattr(workbook, sheet, None) or []


def header_in_row(rows: list[dict], index: int | None, key: str) -> str:
    """The header, as written, of the column in `rows[index]` that pyxform reads as `key`.

    `key` is a pyxform name (`calculation`, `bind.calculate`, `media`, `bind.readonly`);
    headers are matched through pyxform's aliases and case-insensitively, and a key also
    matches its translated or sub-columns (`media` matches `media::image`).
    """
    wanted = {key, f"bind.{key}"} | ({"bind.calculate"} if key in ("calculation", "calculate") else set())
    if index is not None and 0 <= index < len(rows):
        for header, value in rows[index].items():
            if value in (None, ""):
                continue
            meaning = canonical_column(header)
            if meaning in wanted or header == key or any(meaning.startswith(f"{w}.") for w in wanted):
                return header
    return key


def cell(row: Mapping[str, Any], key: str) -> str:
    """The value of the column that pyxform reads as `key` (headers are case-insensitive)."""
    for header, value in row.items():
        if value not in (None, "") and canonical_column(header) == key:
            return str(value).strip()
    return ""


def canonical_column(header: str) -> str:
    """The pyxform meaning of a column header, e.g. `constraint message::en` → `bind.jr:constraintMsg`.

    Like pyxform, the column name is case-insensitive (`LABEL::EN` is a label), while what
    follows `::` (a language, an XML attribute) keeps its case.
    """
    base, sep, rest = header.partition("::")
    base = base.strip().lower()
    if sep and base in ("bind", "control", "instance", "body", "media"):
        return f"{'control' if base == 'body' else base}.{rest}"
    if not sep and ":" in header:
        head = header.split(":", 1)[0].strip().lower()
        if head in aliases.TRANSLATABLE_SURVEY_COLUMNS or head in aliases.survey_header:
            base = head
    alias = aliases.survey_header.get(base, base)
    if isinstance(alias, tuple):
        return ".".join(alias)
    return {"constraint_message": "bind.jr:constraintMsg", "required_message": "bind.jr:requiredMsg",
            "constraint message": "bind.jr:constraintMsg", "required message": "bind.jr:requiredMsg"
            }.get(alias, alias)
