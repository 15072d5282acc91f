"""The builder's per-cell work: checks of columns and appearances, values read from cells, row lookups.

Split out of `surveys/xlsform.py`, beside `surveys/xlsform_build.py`, to keep each module short:
these methods read one cell or one row at a time and know nothing of the walk over the form's
elements. `_Builder` (in `surveys.xlsform_build`) inherits them.
"""

from __future__ import annotations

from typing import Any, Mapping

from surveys.expressions import Expression, ExpressionError, parse
from surveys.pyxform_places import Problem
from surveys.pyxform_places import cell as _cell
from surveys.pyxform_places import header_in_row as _header_in_row
from surveys.xlsform_extras import DROPPED, YES, is_unsupported_feature, uses_parameters
from surveys.xlsform_types import (
    _GROUP_TYPES,
    _HANDLED_KEYS,
    _MEDIA_TYPES,
    _NO,
    _SUPPORTED_BIND,
    _SUPPORTED_KEYS,
    _UNNAMED_NOTE,
    CHAT_APPEARANCES,
)
from surveys.xpath_functions import respondent_attributes, rewrite_paths
from surveys.model import ANY_LANGUAGE, Language, Location, Text


class FormCells:
    """Checks and lookups of single cells and rows; the base of the builder.

    Uses the builder's `survey_rows`, `workbook`, `row_cursor`, `attachments`, `languages`,
    `preloads`, `unused_columns`, `warnings` and `problems`.
    """

    # -- checks -------------------------------------------------------------------------

    def _check_keys(self, element: dict, row: int | None) -> dict[str, str]:
        """The columns pyxform read into keys this loader does not use, as written (header → value).

        They are kept with the question as metadata and reported once per column, with its
        rows, when the form is built. pyxform moves some `parameters` (e.g. `rows=3`) into
        `control`; those are reported as the `parameters` column the author wrote.
        """
        unknown = [f"{k}" for k in element if k not in _SUPPORTED_KEYS and k not in _HANDLED_KEYS
                   and not (k == "media" and element.get("type") not in _GROUP_TYPES)]  # labels' media are read
        unknown += [f"bind.{k}" for k in element.get("bind", {}) if k not in _SUPPORTED_BIND]
        unknown += [f"control.{k}" for k in element.get("control", {})
                    if k != "appearance" and not (k == "jr:count" and element.get("type") == "repeat")
                    and not (k == "accept" and element.get("type") in _MEDIA_TYPES)]
        if element.get("parameters") and not uses_parameters(element):
            unknown.append("parameters")
        metadata: dict[str, str] = {}
        for key in unknown:
            column = "default" if key == "_dynamic_default" else self._column_for(row, key)
            if column == key and key.startswith("control.") and self._raw(row, "parameters"):
                column, key = self._column_for(row, "parameters"), "parameters"
            value = self.survey_rows[row].get(column) if row is not None else None
            metadata[column] = "" if value is None else str(value)
            rows = self.unused_columns.setdefault(column, (key, []))[1]
            if row is not None and self._row_number(row) not in rows:
                rows.append(self._row_number(row))
        return metadata

    def _check_appearance(self, appearance: str, row: int | None) -> None:
        unknown = [a for a in str(appearance).split() if a not in CHAT_APPEARANCES]
        if unknown:
            self.warnings.append(f"{Location('survey', self._row_number(row), 'appearance')}: "
                                 f"appearance {', '.join(unknown)} has no effect in a chat")

    def _check_names(self, used, names, location: Location | None, column: str) -> None:
        row = location.row if location else None
        header = self._column_for(row - 2 if row else None, column)
        for name in sorted(set(used) - names):
            self._problem(Location("survey", row, header),
                          f"${{{name}}} names no question in this form")

    # -- values -------------------------------------------------------------------------

    def _required(self, value: Any, row: int | None) -> Expression | None:
        if value is None or str(value).strip().lower() in _NO:
            return None
        if str(value).strip().lower() in YES:
            return parse("true()")
        return self._expression(str(value), row, "required")

    def _expression(self, source: Any, row: int | None, column: str, *,
                    allow_current: bool = False, allow_bare_names: bool = False) -> Expression | None:
        if source is None or str(source).strip() == "":
            return None
        self.preloads.update(respondent_attributes(str(source)))
        try:
            return parse(rewrite_paths(str(source)), allow_current=allow_current,
                         allow_bare_names=allow_bare_names, tables=self.attachments)
        except ExpressionError as error:
            where = Location("survey", self._row_number(row), self._column_for(row, column))
            if is_unsupported_feature(error):
                self.warnings.append(f"{where}: {column} '{source}' is not used ({error}); {DROPPED[column]}")
            else:
                self._problem(where, f"cannot read {column} '{source}': {error}")
            return None

    def _text(self, value: Any) -> Text:
        if value is None:
            return Text()
        if isinstance(value, Mapping):
            texts = {}
            for column_language, text in value.items():
                if column_language == "default":
                    texts[ANY_LANGUAGE] = str(text)
                    continue
                language = Language.from_column(column_language)
                self.languages.setdefault(language.code, language)
                texts[language.code] = str(text)
            return Text(texts)
        return Text({ANY_LANGUAGE: str(value)})

    # -- rows ---------------------------------------------------------------------------

    def _find_row(self, name: str) -> int | None:
        """Index into the survey sheet of the row that defines `name`.

        pyxform keeps blank rows so that row numbers stay true; elements come out in sheet
        order, so searching forward from the last match finds the right row even when the
        same name appears in two groups. A note left without a name is named by pyxform
        after its row (`generated_note_name_7`). Other elements pyxform generated have no row.
        """
        for index in range(self.row_cursor, len(self.survey_rows)):
            if name and _cell(self.survey_rows[index], "name") == name:
                self.row_cursor = index + 1
                return index
        if unnamed_note := _UNNAMED_NOTE.fullmatch(name):
            index = int(unnamed_note.group(1)) - 2
            if 0 <= index < len(self.survey_rows) and not _cell(self.survey_rows[index], "name"):
                self.row_cursor = index + 1
                return index
        return None

    def _choice_row(self, list_name: str | None, name: str) -> int | None:
        for index, row in enumerate(self.workbook.choices or []):
            if (_cell(row, "list_name") or _cell(row, "list name")) == list_name and _cell(row, "name") == name:
                return index + 2
        return None

    @staticmethod
    def _row_number(row: int | None) -> int | None:
        return None if row is None else row + 2

    def _raw(self, row: int | None, column: str) -> str:
        if row is None:
            return ""
        return _cell(self.survey_rows[row], column)

    def _column_for(self, row: int | None, key: str) -> str:
        """The header, as written, of the column in `row` that pyxform read as `key`."""
        return _header_in_row(self.survey_rows, row, key)

    def _problem(self, location: Location, message: str) -> None:
        self.problems.append(Problem(location, message))
