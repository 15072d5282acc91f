"""What the loader does with XLSForm features a chat cannot honour as written.

The rule is pyxform's: a form that pyxform converts loads. What a chat cannot do becomes a
warning that names the place and says what the chat does instead:

- a question a chat cannot ask (a line on a map, a barcode, a question inside a repeat...) is kept
  as an UNASKABLE question: never shown, exported as missing with its own code;
- a `range` is asked as numbered buttons when it has few steps, else as a number checked
  against its bounds;
- a column or setting the chat does not use is kept as metadata;
- CSV files shipped beside the form are read with it, for `pulldata()`, `instance()` lookups
  and `select_one_from_file`.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from surveys.expressions import ExpressionError
from surveys.model import Location, Question, QuestionType

_LOCATIONS = "lines and areas on a map (a geopoint is asked)"
#: Photos, sound, video and files are asked (the platform's attachment button); sound recorded
#: in the background while the form is filled has no meaning in a chat.
_BACKGROUND_AUDIO = "sound recorded in the background (a chat has no device to record it)"
_DEVICE_LOCATION = "the device's own location (a chat has no device to read it from)"
#: XLSForm type → what a chat cannot take; such a question loads as UNASKABLE.
UNASKABLE_TYPES = {
    "geotrace": _LOCATIONS, "geoshape": _LOCATIONS,
    "start-geopoint": _DEVICE_LOCATION, "background-geopoint": _DEVICE_LOCATION, "osm": "map features",
    "background-audio": _BACKGROUND_AUDIO, "barcode": "barcode scanning",
    "select one external": "external choice lists with no external_choices sheet", "hidden": "hidden fields",
    "xml-external": "external XML data", "csv-external": "external data",
    "include": "other forms included by name",
}
YES = {"yes", "true", "true()"}
# Extensions of the file a `select_one_from_file` reads its choices from.
CHOICE_FILE = re.compile(r".+\.(csv|xml|geojson)$", re.IGNORECASE)
REPEAT_REASON = "questions inside a loop (loop '{}' is not asked in this version)"
#: A range with at most this many steps is asked as buttons, one per value.
RANGE_BUTTONS = 11
_RANGE_DEFAULTS = {"start": Decimal(1), "end": Decimal(10), "step": Decimal(1)}
# Messages of ExpressionError that mean "a feature this chat does not evaluate", not a typo:
# ODK accepts such expressions, so the form loads and the expression is dropped with a warning.
_UNSUPPORTED_EXPRESSION = ("invalid regular expression", "'..' (parent)", "unexpected character '/'",
                           "unexpected character '['", "not shipped beside", "has no column", "pulldata() needs")
_UNKNOWN_FUNCTION = re.compile(r"unknown function '([^']+)'")
#: ODK functions (https://getodk.github.io/xforms-spec/) that a chat does not evaluate.
ODK_FUNCTIONS_NOT_EVALUATED = frozenset({
    "distance", "area", "geofence", "digest", "randomize", "version", "extract-signed",
    "base64-decode", "decimal-time", "checklist", "weighted-checklist", "instance", "current",
    "translate", "last-saved", "property", "sum-selected", "choice-name",
})


def is_unsupported_feature(error: ExpressionError) -> bool:
    """Whether the expression uses something ODK has and a chat does not do (a warning), not a typo.

    A function ODK knows but the chat does not evaluate, or one of another tool (`wq:length`,
    a namespace prefix), is a feature; any other unknown function name is a typo (an error).
    """
    unknown = _UNKNOWN_FUNCTION.search(error.message)
    if unknown:
        name = unknown.group(1)
        return name in ODK_FUNCTIONS_NOT_EVALUATED or (":" in name and not name.startswith("jr:"))
    return any(fragment in error.message for fragment in _UNSUPPORTED_EXPRESSION)


@dataclass(frozen=True)
class Range:
    start: Decimal
    end: Decimal
    step: Decimal
    #: Every value, when there are few enough to be buttons; else None (asked as a number).
    values: tuple[Decimal, ...] | None

    @property
    def integral(self) -> bool:
        return all(v == v.to_integral_value() for v in (self.start, self.end, self.step))

    def constraint(self) -> str:
        low, high = min(self.start, self.end), max(self.start, self.end)
        return f". >= {number_text(low)} and . <= {number_text(high)}"


def read_range(parameters: Mapping[str, object]) -> Range | str:
    """A `range`'s bounds (pyxform's defaults: start 1, end 10, step 1), or why they are unusable."""
    bounds = dict(_RANGE_DEFAULTS)
    for key in bounds:
        if key in parameters and str(parameters[key]).strip() != "":
            try:
                bounds[key] = Decimal(str(parameters[key]).strip())
            except InvalidOperation:
                return f"range parameter {key}={parameters[key]} is not a number"
    start, end, step = bounds["start"], bounds["end"], bounds["step"]
    if step == 0 or (end - start) / step < 0:
        return f"range start={start} end={end} step={step} has no values"
    count = int((end - start) / step) + 1
    values = tuple(start + step * i for i in range(count)) if count <= RANGE_BUTTONS else None
    return Range(start, end, step, values)


def number_text(value: Decimal) -> str:
    """3, 2.5, -1: how a range value is shown and stored."""
    return format(value.normalize(), "f")


class Attachments:
    """CSV files shipped beside the form, by name without `.csv`, read once when first used.

    `read(filename)` gives a file's bytes or None. Choice lists of the form count as tables
    too (`instance('list')` in ODK reads the choices sheet), after the CSV files.
    """

    def __init__(self, read: Callable[[str], bytes | None],
                 choice_lists: Mapping[str, list[dict[str, str]]] | None = None):
        self._read = read
        self._choice_lists = choice_lists or {}
        self._tables: dict[str, list[dict[str, str]] | None] = {}
        #: Problems met reading files (name → message), reported as warnings by the loader.
        self.problems: dict[str, str] = {}

    def get(self, name: str, default: object = None) -> list[dict[str, str]] | object:
        if name not in self._tables:
            self._tables[name] = self._load(name)
        found = self._tables[name]
        return default if found is None else found

    def _load(self, name: str) -> list[dict[str, str]] | None:
        data = self._read(f"{name}.csv")
        if data is None:
            return self._choice_lists.get(name)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.problems[name] = "it is not UTF-8 text (save it as 'CSV UTF-8')"
            return None
        rows = list(csv.DictReader(io.StringIO(text)))
        return [{str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def uses_parameters(element: dict) -> bool:
    """`parameters` that the chat honours: a range's bounds, the columns of a choice file, a choice
    list's `randomize` and `seed`."""
    return (element.get("type") == "range" or bool(CHOICE_FILE.match(str(element.get("itemset") or "")))
            or (bool(element.get("itemset") or element.get("choices"))
                and set(element.get("parameters") or ()) <= {"randomize", "seed"}))


def unused_column_effect(key: str) -> str:
    """What the chat does instead of what an unused column asks for."""
    if key.startswith("media"):
        return "images, audio and video in a group's label are not sent in a chat; its text label is"
    if key == "_dynamic_default":
        return "a default worked out by an expression is not used; the question starts empty"
    if key == "parameters":
        return "parameters have no effect in a chat; kept with the question"
    return "not used by a chat survey; kept with the question as metadata"


# What the chat does when an expression uses something it does not evaluate.
DROPPED = {"relevant": "the chat treats it as always true", "constraint": "answers are not checked against it",
            "calculation": "the value stays empty", "required": "the question is optional",
            "choice_filter": "every choice is shown", "repeat_count": "the chat asks \"add another?\" instead",
            "parameters": "the choices are shuffled from the session's own seed"}


class LenientBuilder:
    """The loader's handling of what a chat cannot do as written; mixed into its builder.

    Reads and appends to the builder's state (`questions`, `warnings`, `attachments`,
    `repeat`, `repeat_members`, `unused_columns`) and uses its readers (`_text`,
    `_expression`, `_column_for`).
    """

    def _unaskable(self, element: dict, groups: tuple[str, ...], location: Location, written: str, why: str,
                   metadata: Mapping[str, str] | None = None, *, warn: bool = True) -> None:
        """Keep a question a chat cannot ask: never shown, its column empty, `form check` lists it."""
        if warn:
            self.warnings.append(f"{location}: '{element['name']}' ({written}) is not asked: a chat cannot take "
                                 f"{why}; it is skipped and exported as missing")
        row = location.row - 2 if location.row else None
        if self.repeat is not None:
            self.repeat_members[len(self.questions)] = self.repeat
        self.questions.append(Question(
            name=element["name"], type=QuestionType.UNASKABLE, label=self._text(element.get("label")),
            relevant=self._expression(element.get("bind", {}).get("relevant"), row, "relevant"),
            groups=groups, source_type=written, location=location, unaskable=why, metadata=metadata or {}))

    def _range(self, element: dict, location: Location) -> tuple[dict, str] | str:
        """A `range` as numbered buttons (few values) or as a number checked against its bounds."""
        bounds = read_range(element.get("parameters") or {})
        if isinstance(bounds, str):
            return bounds
        if bounds.values is not None:
            choices = [{"name": number_text(v), "label": number_text(v)} for v in bounds.values]
            self.warnings.append(f"{location}: range is asked as {len(choices)} numbered buttons "
                                 f"({choices[0]['name']} to {choices[-1]['name']})")
            return {**element, "choices": choices, "list_name": None}, "select one"
        bind = dict(element.get("bind", {}))
        limits = bounds.constraint()
        bind["constraint"] = f"({bind['constraint']}) and {limits}" if bind.get("constraint") else limits
        self.warnings.append(f"{location}: range is asked as a number from {number_text(bounds.start)} "
                             f"to {number_text(bounds.end)}" + ("" if bounds.step == 1 else
                                                                " (its step is not checked)"))
        return {**element, "bind": bind}, "integer" if bounds.integral else "decimal"

    def _choices_from_file(self, element: dict) -> dict | str:
        """select_one_from_file: the choices read from the CSV file shipped beside the form."""
        filename = str(element["itemset"])
        if not filename.lower().endswith(".csv"):
            return f"choices from the file '{filename}' (only CSV files are read)"
        rows = self.attachments.get(Path(filename).stem)
        if not rows or filename.lower() != f"{Path(filename).stem.lower()}.csv":
            return f"choices from the file '{filename}', which is not shipped beside the form"
        parameters = element.get("parameters") or {}
        value = parameters.get("value", "name")
        label = parameters.get("label", "label")
        if value not in rows[0]:
            return f"choices from the file '{filename}', which has no column '{value}'"
        if label not in rows[0]:
            label = next((column for column in rows[0] if column.startswith("label")), value)
        choices = [{**row, "name": row[value], "label": row.get(label) or row[value]} for row in rows]
        return {**element, "choices": choices}

    def _external_choices(self, element: dict) -> dict | None:
        """select_one_external: its choices from the form's own `external_choices` sheet, if there."""
        list_name = element.get("itemset")
        choices = []
        for raw in self.workbook.external_choices or []:
            row = {str(k).strip(): v for k, v in raw.items() if v not in (None, "")}
            if str(row.pop("list_name", row.pop("list name", ""))).strip() != list_name:
                continue
            labels = {("default" if k == "label" else k.split("::", 1)[1]): str(v)
                      for k, v in row.items() if k == "label" or k.startswith("label::")}
            others = {k: str(v) for k, v in row.items() if k != "label" and not k.startswith("label::")}
            choices.append({**others, "name": str(row.get("name", "")), "label": labels})
        return {**element, "choices": choices, "list_name": list_name} if choices else None

    def _read_only(self, question: Question, element: dict) -> Question:
        """A read_only question is not asked: worked out if it has a calculation, else shown as a note."""
        read_only = str(element.get("bind", {}).get("readonly", "")).strip().lower() in YES
        if not read_only or not question.type.is_asked:
            return question
        column = self._column_for(question.location.row - 2 if question.location and question.location.row
                                  else None, "bind.readonly")
        where = Location("survey", question.location.row if question.location else None, column)
        if question.calculation is not None:
            self.warnings.append(f"{where}: read_only: the chat works the value out and does not ask it")
            return replace(question, type=QuestionType.CALCULATE)
        self.warnings.append(f"{where}: read_only: the chat shows it as a note and does not ask it")
        return replace(question, type=QuestionType.NOTE)

    def _repeat(self, name: str, element: dict, first: int, row: int | None) -> None:
        """A repeat whose questions are `self.questions[first:]`: they are asked once per instance.

        Its count is `repeat_count` (pyxform turns a number into a generated `NAME_count`
        calculation, read back here); without one the chat asks "add another?" after each instance.
        """
        for index in range(first, len(self.questions)):
            question = self.questions[index]
            self.questions[index] = replace(question, repeats=(name,) + question.repeats)
            self.repeat_members.setdefault(index, name)
        count = str(element.get("control", {}).get("jr:count") or "").strip()
        generated = re.fullmatch(r"\$\{(\w+)\}", count)
        if generated and generated.group(1) in self.generated_counts:
            count = self.generated_counts[generated.group(1)]
        self.groups[name] = replace(self.groups[name], repeat=True,
                                    repeat_count=self._expression(count, row, "repeat_count") if count else None)

    def _qualify_repeat_names(self) -> None:
        """A question inside a repeat may share its name with one outside: call it `repeat/name`.

        pyxform allows it (names are unique per repeat level); answers are kept by name, so the
        question that is asked must keep its own.
        """
        counts = Counter(q.name for q in self.questions)
        for index, repeat in self.repeat_members.items():
            question = self.questions[index]
            if counts[question.name] > 1:
                self.questions[index] = replace(question, name=f"{repeat}/{question.name}")

    def _report_unreadable_attachments(self) -> None:
        for name, problem in self.attachments.problems.items():
            self.warnings.append(f"file '{name}.csv' beside the form: {problem}; what reads it is not used")

    def _report_unused_columns(self) -> None:
        for column, (key, rows) in self.unused_columns.items():
            shown = ", ".join(str(r) for r in rows[:8]) + (f" and {len(rows) - 8} more" if len(rows) > 8 else "")
            where = f"sheet 'survey', column '{column}' (row{'s' if len(rows) > 1 else ''} {shown})"
            self.warnings.append(f"{where}: {unused_column_effect(key)}")

    @staticmethod
    def _choice_tables(workbook) -> dict[str, list[dict[str, str]]]:
        """The choice lists as tables, for `instance('list')/root/item[...]` lookups."""
        tables: dict[str, list[dict[str, str]]] = {}
        for raw in workbook.choices or []:
            row = {str(k).strip(): "" if v is None else str(v).strip() for k, v in raw.items()}
            list_name = next((v for k, v in row.items() if k.lower() in ("list_name", "list name") and v), "")
            if not list_name:
                continue
            label = next((v for k, v in row.items() if k.lower().startswith("label")), "")
            tables.setdefault(list_name, []).append({**row, "label": row.get("label") or label})
        return tables
