"""What the loader does with XLSForm features a chat cannot honour as written.

The rule is pyxform's: a form that pyxform converts loads. What a chat cannot do becomes a
warning that names the place and says what the chat does instead:

- a question a chat cannot ask (a location, a photo, a question inside a repeat...) is kept
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from surveys.expressions import ExpressionError

_LOCATIONS = "locations"
_MEDIA = "photos, sound, video or files"
#: XLSForm type → what a chat cannot take; such a question loads as UNASKABLE.
UNASKABLE_TYPES = {
    "geopoint": _LOCATIONS, "geotrace": _LOCATIONS, "geoshape": _LOCATIONS,
    "start-geopoint": _LOCATIONS, "background-geopoint": _LOCATIONS, "osm": "map features",
    "photo": _MEDIA, "image": _MEDIA, "audio": _MEDIA, "video": _MEDIA, "file": _MEDIA,
    "background-audio": _MEDIA, "barcode": "barcode scanning", "rank": "ranking",
    "time": "time-of-day answers", "dateTime": "date-and-time answers", "datetime": "date-and-time answers",
    "select one external": "external choice lists (itemsets.csv)", "hidden": "hidden fields",
    "xml-external": "external XML data", "csv-external": "external data",
    "include": "other forms included by name",
}
REPEAT_REASON = "questions inside a repeat (repeat '{}' is not asked in this version)"
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
    "indexed-repeat", "distance", "area", "geofence", "digest", "randomize", "version", "extract-signed",
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
    text = format(value.normalize(), "f")
    return text


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

    def __getitem__(self, name: str) -> list[dict[str, str]]:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, rows in self._tables.items() if rows is not None)

    def _load(self, name: str) -> list[dict[str, str]] | None:
        data = self._read(f"{name}.csv")
        if data is None:
            return self._choice_lists.get(name)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.problems[name] = f"'{name}.csv' is not UTF-8 text"
            return None
        rows = list(csv.DictReader(io.StringIO(text)))
        return [{str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]
