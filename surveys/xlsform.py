"""Load an XLSForm (.xlsx, .xls, .csv, .md) into a `Questionnaire`.

pyxform does the reading and its own validation (its workbook-to-JSON step); this module
decides what a chat survey can honour. Everything a chat cannot do is an error naming the
sheet, row and column, because a column silently ignored is a question asked wrongly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from pyxform import aliases
from pyxform.errors import PyXFormError
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import DefinitionData, get_xlsform

from surveys.expressions import Expression, ExpressionError, parse, references_in_text
from surveys.model import (
    ANY_LANGUAGE,
    Choice,
    Group,
    Language,
    Location,
    Question,
    QuestionType,
    Questionnaire,
    Text,
)

SUPPORTED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".md")

_TYPES = {
    "note": QuestionType.NOTE,
    "select one": QuestionType.SELECT_ONE,
    "select all that apply": QuestionType.SELECT_MULTIPLE,
    "integer": QuestionType.INTEGER,
    "decimal": QuestionType.DECIMAL,
    "text": QuestionType.TEXT,
    "date": QuestionType.DATE,
    "acknowledge": QuestionType.ACKNOWLEDGE,
    "trigger": QuestionType.ACKNOWLEDGE,
    "calculate": QuestionType.CALCULATE,
    "start": QuestionType.START,
    "end": QuestionType.END,
    "today": QuestionType.TODAY,
}
# Device metadata an ODK form may carry: a chat has no device to read it from.
_EMPTY_METADATA = {
    "deviceid", "subscriberid", "simserial", "phonenumber", "username", "email", "audit",
}
_WHY_UNSUPPORTED = {
    "repeat": "repeats (a chat asks a fixed list of questions)",
    "geopoint": "locations", "geotrace": "locations", "geoshape": "locations",
    "start-geopoint": "locations",
    "photo": "media answers", "image": "media answers", "audio": "media answers",
    "video": "media answers", "file": "media answers", "background-audio": "media answers",
    "barcode": "barcode scanning", "range": "range sliders", "rank": "ranking",
    "time": "time answers", "dateTime": "date-time answers", "datetime": "date-time answers",
    "select one external": "external choice lists", "hidden": "hidden fields",
    "xml-external": "external data", "csv-external": "external data",
}

_SUPPORTED_KEYS = {
    "type", "name", "label", "hint", "bind", "control", "choice_filter", "default",
    "parameters", "itemset", "list_name", "choices", "children",
}
_SUPPORTED_BIND = {"required", "relevant", "constraint", "calculate", "jr:constraintMsg", "jr:requiredMsg"}
_SUPPORTED_SETTINGS = {"form_id", "id_string", "version", "form_title", "title", "default_language"}
# Settings that only concern ODK servers or web rendering: nothing to do in a chat, and
# nothing is lost by not doing it, so they are reported as warnings rather than errors.
_SERVER_SETTINGS = {"style", "instance_name", "submission_url", "public_key", "auto_send", "auto_delete"}
_CHOICE_MEDIA = {"image", "big-image", "audio", "video", "media"}
# Appearances that change how a chat renders a question; others are reported as warnings.
CHAT_APPEARANCES = {"minimal", "likert", "horizontal", "horizontal-compact", "compact", "quick",
                    "field-list", "multiline", "label", "list", "list-nolabel", "autocomplete"}

_YES = {"yes", "true", "true()"}
_NO = {"no", "false", "false()", ""}
_PYXFORM_ROW = re.compile(r"\[row\s*:\s*(\d+)\]")
_PYXFORM_SHEET = re.compile(r"'?\b(survey|choices|settings|entities|external_choices)\b'? sheet")
_OTHER_LABEL = Text({"vi": "Khác", "en": "Other"})
_OTHER_PROMPT = Text({"vi": "Vui lòng ghi rõ:", "en": "Please specify:"})


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class FormError(ValueError):
    """The form cannot be used; every problem found is listed with its place."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
        )


def load_questionnaire(path: str | Path) -> Questionnaire:
    path = Path(path)
    if not path.is_file():
        raise FormError(str(path), [Problem(Location("file"), "no such file")])
    return load_questionnaire_bytes(path.read_bytes(), path.name)


def load_questionnaire_bytes(data: bytes, filename: str) -> Questionnaire:
    """Load from bytes, as stored in the database, so a stored form loads like a file."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise FormError(filename, [Problem(Location("file"),
                        f"unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}")])
    try:
        workbook = get_xlsform(data, file_type=suffix)
        warnings: list[str] = []
        form = workbook_to_json(workbook, fallback_form_name=Path(filename).stem, warnings=warnings)
    except PyXFormError as error:
        raise FormError(filename, [_problem_from_pyxform(str(error))]) from None
    except Exception as error:  # pyxform raises bare errors on some malformed files
        raise FormError(filename, [Problem(Location("file"), f"cannot read the file: {error}")]) from None
    return _Builder(filename, data, workbook, form, warnings).build()


def _problem_from_pyxform(message: str) -> Problem:
    row = _PYXFORM_ROW.search(message)
    sheet = _PYXFORM_SHEET.search(message)
    location = Location(sheet.group(1) if sheet else ("survey" if row else "file"),
                        int(row.group(1)) if row else None)
    return Problem(location, _PYXFORM_ROW.sub("", message).strip())


def canonical_column(header: str) -> str:
    """The pyxform meaning of a column header, e.g. `constraint message::en` → `bind.jr:constraintMsg`."""
    base, sep, rest = header.partition("::")
    if sep and base in ("bind", "control", "instance", "body", "media"):
        return f"{'control' if base == 'body' else base}.{rest}"
    if not sep and ":" in header:
        head = header.split(":", 1)[0]
        if head in aliases.TRANSLATABLE_SURVEY_COLUMNS or head in aliases.survey_header:
            base = head
    base = base.strip()
    alias = aliases.survey_header.get(base, base)
    if isinstance(alias, tuple):
        return ".".join(alias)
    return {"constraint_message": "bind.jr:constraintMsg", "required_message": "bind.jr:requiredMsg",
            "constraint message": "bind.jr:constraintMsg", "required message": "bind.jr:requiredMsg"
            }.get(alias, alias)


class _Builder:
    def __init__(self, filename: str, data: bytes, workbook: DefinitionData, form: dict, warnings: list[str]):
        self.filename = filename
        self.data = data
        self.workbook = workbook
        self.form = form
        self.pyxform_warnings = warnings
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.survey_rows: list[dict] = workbook.survey or []
        self.row_cursor = 0
        self.default_language = self._default_language()
        self.languages: dict[str, Language] = {}
        self.questions: list[Question] = []
        self.groups: dict[str, Group] = {}

    # -- whole form -------------------------------------------------------------------

    def build(self) -> Questionnaire:
        self._check_settings()
        for child in self.form.get("children", []):
            self._element(child, ())
        self._check_references()
        if not any(q.type.is_asked for q in self.questions) and not self.problems:
            self._problem(Location("survey"), "the form asks no question")
        if self.problems:
            raise FormError(self.filename, self.problems)
        languages = tuple(self.languages.values()) or (Language(self.default_language, self.default_language),)
        return Questionnaire(
            form_id=str(self.form.get("id_string") or Path(self.filename).stem),
            version=self._version(),
            title=str(self.form.get("title") or self.form.get("id_string") or ""),
            default_language=self.default_language,
            languages=languages,
            questions=tuple(self.questions),
            groups=self.groups,
            warnings=tuple(self.warnings),
        )

    def _version(self) -> str:
        version = self.form.get("version")
        if version:
            return str(version)
        digest = hashlib.sha256(self.data).hexdigest()[:10]
        self.warnings.append(f"settings: no 'version'; using the content hash 'sha-{digest}'")
        return f"sha-{digest}"

    def _default_language(self) -> str:
        language = self.form.get("default_language")
        if not language or language == "default":
            return "vi"
        return Language.from_column(language).code

    def _check_settings(self) -> None:
        for row_index, row in enumerate(self.workbook.settings or []):
            for header, value in row.items():
                if value in (None, "") or header in _SUPPORTED_SETTINGS:
                    continue
                location = Location("settings", row_index + 2, header)
                if header in _SERVER_SETTINGS:
                    self.warnings.append(f"{location}: ignored, it only concerns ODK servers and web forms")
                else:
                    self._problem(location, f"setting '{header}' is not supported")

    # -- elements -----------------------------------------------------------------------

    def _element(self, element: dict, groups: tuple[str, ...]) -> None:
        kind = element.get("type", "")
        name = element.get("name", "")
        if kind == "group" and element.get("control", {}).get("bodyless"):
            return  # pyxform's generated `meta` group (instanceID): nothing for a person to see
        row = self._find_row(name)
        location = Location("survey", row + 2 if row is not None else None, "type")
        self._check_keys(element, row)
        if kind == "group":
            self._group(element, groups, location)
            return
        if kind in _WHY_UNSUPPORTED:
            self._problem(location, f"type '{self._raw(row, 'type') or kind}' is not supported: "
                          f"a chat survey cannot take {_WHY_UNSUPPORTED[kind]}")
            return
        if kind in _EMPTY_METADATA:
            self.warnings.append(f"{location}: '{kind}' has no value in a chat; the column stays empty")
            self.questions.append(Question(name=name, type=QuestionType.EMPTY_METADATA, groups=groups,
                                           source_type=kind, location=location))
            return
        if kind not in _TYPES:
            self._problem(location, f"type '{self._raw(row, 'type') or kind}' is not supported")
            return
        self.questions.append(self._question(element, _TYPES[kind], groups, row, location))

    def _group(self, element: dict, groups: tuple[str, ...], location: Location) -> None:
        name = element["name"]
        row = location.row - 2 if location.row else None
        self.groups[name] = Group(
            name=name,
            label=self._text(element.get("label")),
            relevant=self._expression(element.get("bind", {}).get("relevant"), row, "relevant"),
            parents=groups,
            location=location,
        )
        appearance = element.get("control", {}).get("appearance")
        if appearance:
            self._check_appearance(appearance, row)
        for child in element.get("children", []):
            self._element(child, groups + (name,))

    def _question(self, element: dict, kind: QuestionType, groups: tuple[str, ...],
                  row: int | None, location: Location) -> Question:
        bind = element.get("bind", {})
        required = self._required(bind.get("required"), row)
        if kind is QuestionType.CALCULATE and not bind.get("calculate"):
            self._problem(Location("survey", location.row, "calculation"), "a calculate needs a calculation")
        appearance = element.get("control", {}).get("appearance")
        if appearance:
            self._check_appearance(appearance, row)
        choices: tuple[Choice, ...] = ()
        if kind.is_select:
            choices = self._choices(element)
        label = self._text(element.get("label"))
        if generated_other := self._generated_other(element):
            label = _OTHER_PROMPT
            bind = {**bind, "relevant": f"selected(${{{generated_other}}}, 'other')"}
        if kind.is_shown and not label:
            self._problem(Location("survey", location.row, "label"),
                          f"'{element['name']}' is shown to the respondent but has no label")
        return Question(
            name=element["name"],
            type=kind,
            label=label,
            hint=self._text(element.get("hint")),
            required=required,
            required_message=self._text(bind.get("jr:requiredMsg")),
            relevant=self._expression(bind.get("relevant"), row, "relevant"),
            constraint=self._expression(bind.get("constraint"), row, "constraint", allow_current=True),
            constraint_message=self._text(bind.get("jr:constraintMsg")),
            calculation=self._expression(bind.get("calculate"), row, "calculation"),
            choices=choices,
            choice_list=element.get("list_name"),
            choice_filter=self._expression(element.get("choice_filter"), row, "choice_filter",
                                           allow_bare_names=True, allow_current=True),
            default=None if element.get("default") in (None, "") else str(element["default"]),
            appearance=appearance,
            groups=groups,
            source_type=self._raw(row, "type") or element.get("type", ""),
            location=location,
        )

    def _generated_other(self, element: dict) -> str | None:
        """The select's name if pyxform generated this `_other` text question for `or_other`.

        pyxform writes its relevance as an XPath path and its label in English only; the chat
        shows it in the respondent's language instead.
        """
        relevant = element.get("bind", {}).get("relevant", "")
        match = re.fullmatch(r"selected\(\.\./(.+), 'other'\)", relevant or "")
        if match and element.get("type") == "text" and element["name"] == f"{match.group(1)}_other":
            return match.group(1)
        return None

    def _choices(self, element: dict) -> tuple[Choice, ...]:
        list_name = element.get("list_name") or element.get("itemset")
        choices = []
        for position, raw in enumerate(element.get("choices") or []):
            name = str(raw.get("name", ""))
            label = self._text(raw.get("label"))
            if name == "other" and label.by_language and set(label.by_language.values()) == {"Other"}:
                label = _OTHER_LABEL  # pyxform's English-only label for or_other
            media = _CHOICE_MEDIA & set(raw)
            if media:
                self._problem(Location("choices", self._choice_row(list_name, name), sorted(media)[0]),
                              "choice images, audio and video are not supported in a chat")
            columns = {k: str(v) for k, v in raw.items() if k not in {"name", "label", *_CHOICE_MEDIA}}
            choices.append(Choice(name=name, label=label or Text({ANY_LANGUAGE: name}),
                                  key=str(position + 1), columns=columns))
        if not choices:
            self._problem(Location("survey", self._row_number(self._find_row(element["name"], advance=False)),
                                   "type"), f"the choice list '{list_name}' is empty")
        return tuple(choices)

    # -- checks -------------------------------------------------------------------------

    def _check_keys(self, element: dict, row: int | None) -> None:
        unknown = [f"{k}" for k in element if k not in _SUPPORTED_KEYS]
        unknown += [f"bind.{k}" for k in element.get("bind", {}) if k not in _SUPPORTED_BIND]
        unknown += [f"control.{k}" for k in element.get("control", {}) if k != "appearance"]
        if element.get("parameters"):
            unknown.append("parameters")
        for key in unknown:
            column = self._column_for(row, key)
            self._problem(Location("survey", self._row_number(row), column),
                          f"column '{column}' is not supported by a chat survey")

    def _check_appearance(self, appearance: str, row: int | None) -> None:
        unknown = [a for a in str(appearance).split() if a not in CHAT_APPEARANCES]
        if unknown:
            self.warnings.append(f"{Location('survey', self._row_number(row), 'appearance')}: "
                                 f"appearance {', '.join(unknown)} has no effect in a chat")

    def _check_references(self) -> None:
        names = {q.name for q in self.questions}
        for question in self.questions:
            for column, expression in (("relevant", question.relevant), ("constraint", question.constraint),
                                       ("calculation", question.calculation), ("required", question.required),
                                       ("choice_filter", question.choice_filter)):
                if expression is not None:
                    self._check_names(expression.references, names, question.location, column)
            for column, text in (("label", question.label), ("hint", question.hint)):
                for value in text.by_language.values():
                    self._check_names(references_in_text(value), names, question.location, column)
        for group in self.groups.values():
            if group.relevant is not None:
                self._check_names(group.relevant.references, names, group.location, "relevant")

    def _check_names(self, used, names, location: Location | None, column: str) -> None:
        for name in sorted(set(used) - names):
            self._problem(Location("survey", location.row if location else None, column),
                          f"${{{name}}} names no question in this form")

    # -- values -------------------------------------------------------------------------

    def _required(self, value: Any, row: int | None) -> Expression | None:
        if value is None or str(value).strip().lower() in _NO:
            return None
        if str(value).strip().lower() in _YES:
            return parse("true()")
        return self._expression(str(value), row, "required")

    def _expression(self, source: Any, row: int | None, column: str, *,
                    allow_current: bool = False, allow_bare_names: bool = False) -> Expression | None:
        if source is None or str(source).strip() == "":
            return None
        try:
            return parse(str(source), allow_current=allow_current, allow_bare_names=allow_bare_names)
        except ExpressionError as error:
            self._problem(Location("survey", self._row_number(row), self._column_for(row, column)),
                          f"cannot read {column} '{source}': {error}")
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

    def _find_row(self, name: str, advance: bool = True) -> int | None:
        """Index into the survey sheet of the row that defines `name`.

        pyxform keeps blank rows so that row numbers stay true; elements come out in sheet
        order, so searching forward from the last match finds the right row even when the
        same name appears in two groups. Elements pyxform generated have no row.
        """
        for index in range(self.row_cursor, len(self.survey_rows)):
            if str(self.survey_rows[index].get("name") or "").strip() == name:
                if advance:
                    self.row_cursor = index + 1
                return index
        return None

    def _choice_row(self, list_name: str | None, name: str) -> int | None:
        for index, row in enumerate(self.workbook.choices or []):
            if str(row.get("list_name") or row.get("list name") or "") == list_name and str(row.get("name")) == name:
                return index + 2
        return None

    @staticmethod
    def _row_number(row: int | None) -> int | None:
        return None if row is None else row + 2

    def _raw(self, row: int | None, column: str) -> str:
        if row is None:
            return ""
        return str(self.survey_rows[row].get(column) or "")

    def _column_for(self, row: int | None, key: str) -> str:
        """The header, as written, of the column in `row` that pyxform read as `key`."""
        wanted = {key, f"bind.{key}"} | ({"bind.calculate"} if key == "calculation" else set())
        if row is not None:
            for header, value in self.survey_rows[row].items():
                if value not in (None, "") and (canonical_column(header) in wanted or header == key):
                    return header
        return key

    def _problem(self, location: Location, message: str) -> None:
        self.problems.append(Problem(location, message))


def iter_form_files(folder: Path) -> Iterator[Path]:
    """Every file under `folder` that the loader would try, in a stable order."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path
