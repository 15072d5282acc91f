"""The value model of form expressions: answers as expressions see them, coercions, operators.

Part of `surveys.expressions` (the public import point): the error type, the environment an
expression reads, the NOT_APPLICABLE marker for skipped answers, and XPath 1.0's string(),
number() and boolean() as ODK/JavaRosa apply them, with the operators built on them. Kept apart
from the parser and the function table because everything else (tree, functions, engine) reads
values through these, and none of it needs to know how a cell was parsed.
"""

from __future__ import annotations

import datetime
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal

class ExpressionError(ValueError):
    """A form expression that cannot be parsed or evaluated.

    ``position`` is a 0-based offset into ``source`` so tools can point at the
    offending character in the spreadsheet cell; it is ``None`` when the
    problem has no single location.
    """

    def __init__(self, message: str, position: int | None = None, source: str = "") -> None:
        super().__init__(message, position, source)
        self.message = message
        self.position = position
        self.source = source

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"{self.message} at character {self.position}"


class _NotApplicable:
    """Marks an answer whose question was skipped because it was not relevant.

    Kept distinct from ``None`` so storage and exports can tell "skipped by
    logic" from "not answered yet"; expressions read both as empty.
    """

    def __repr__(self) -> str:
        return "NOT_APPLICABLE"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        # Pickling and copying resolve to the module global, keeping identity checks valid.
        return "NOT_APPLICABLE"


NOT_APPLICABLE = _NotApplicable()


@dataclass(frozen=True)
class Environment:
    """Everything an expression may read; expressions have no other inputs."""

    values: Mapping[str, object] = field(default_factory=dict)
    current: object = None
    today: datetime.date | None = None
    now: datetime.datetime | None = None
    choice_label: Callable[[str, str], str] | None = None
    choice_row: Mapping[str, str] | None = None
    #: Stable for one session (`surveys.session.session_seed`): random() and uuid() are worked out from it,
    #: so they are the same at every step, as `once()` would keep them in ODK.
    seed: str = ""
    #: `position(..)`: the number of the repeat instance being evaluated (1 outside repeats).
    position: int = 1
    #: `indexed-repeat(${name}, ${repeat}, n, ...)`: the answer to `name` in the instances named by
    #: (repeat, number) pairs, or None for a form without repeats (then every answer is the first).
    indexed: Callable[[str, tuple[tuple[str, object], ...]], object] | None = None
    #: `instance('respondent')/root/item/x`: the sampled person's unit, group, stratum and frame
    #: attributes, given to the session when it opens (empty for a respondent without a frame row).
    preloads: Mapping[str, str] = field(default_factory=dict)


class NodeSet(tuple):
    """The answers to a question inside a repeat, read from outside its instance: one per instance.

    XPath's node-set, as count(), sum(), min(), max() and join() take it; read as one value it is its
    first node (XPath's string() of a node-set). Members are values as expressions see them.
    """

    __slots__ = ()


# --------------------------------------------------------------------------
# Coercions (XPath 1.0 string(), number(), boolean() with ODK's extensions)
# --------------------------------------------------------------------------

_EPOCH_DATE = datetime.date(1970, 1, 1)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_EPOCH_AWARE = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_SECONDS_PER_DAY = 86400
_NUMERIC = re.compile(r"\s*-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NAN = float("nan")
# Wide enough that quantizing any finite float to any clamped place count is exact.
_ROUNDING = Context(prec=1000, rounding=ROUND_HALF_UP)
_MAX_ROUND_PLACES = 400


def _read(value: object) -> object:
    """Normalise a stored answer to the value model: empty is always ""."""
    if value is None or value is NOT_APPLICABLE:
        return ""
    if isinstance(value, list):
        return tuple(value)
    return value


def _is_nan(number: int | float) -> bool:
    return isinstance(number, float) and math.isnan(number)


def _is_finite(number: int | float) -> bool:
    """Safe for integers too large for a float, which math.isfinite rejects."""
    return isinstance(number, int) or math.isfinite(number)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_float(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    # repr() gives the shortest round-tripping digits; Decimal spells them
    # out without an exponent, as XPath's string() requires.
    text = format(Decimal(repr(number)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_string(value: object) -> str:
    """XPath ``string()``: how answers are piped into labels and exported."""
    if value is None or value is NOT_APPLICABLE:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        if value.__class__ is NodeSet:
            return to_string(value[0]) if value else ""
        return " ".join(to_string(item) for item in value)
    return str(value)


def _to_number(value: object) -> int | float:
    """XPath ``number()``; dates count days so date arithmetic works as in ODK."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime.datetime):
        epoch = _EPOCH_NAIVE if value.tzinfo is None else _EPOCH_AWARE
        return (value - epoch).total_seconds() / _SECONDS_PER_DAY
    if isinstance(value, datetime.date):
        return (value - _EPOCH_DATE).days
    text = to_string(value)
    if _NUMERIC.fullmatch(text):
        return float(text)
    return _NAN


def _to_bool(value: object) -> bool:
    """XPath ``boolean()``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0 and not _is_nan(value)
    if isinstance(value, datetime.date):
        return True
    return to_string(value) != ""


def _to_float(number: int | float) -> float:
    """Like ``float()`` but saturates instead of raising on huge integers."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _parse_iso(text: str) -> datetime.date | None:
    """Read 'YYYY-MM-DD' (or a full ISO datetime), the only textual dates ODK stores."""
    text = text.strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return datetime.date.fromisoformat(text)
        if _ISO_DATE.match(text) and text[10:11] == "T":
            return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return None


def _to_date(value: object) -> datetime.date | None:
    """Coerce for date(): dates pass, ISO text parses, numbers count days."""
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not _is_finite(value):
            return None
        try:
            return _EPOCH_DATE + datetime.timedelta(days=math.floor(value))
        except OverflowError:
            return None
    return _parse_iso(to_string(value))


def _date_days(value: object) -> int | float | None:
    """Days since the epoch for a date or ISO date text, else None."""
    if isinstance(value, datetime.date):
        return _to_number(value)
    if isinstance(value, (str, tuple)):
        parsed = _parse_iso(to_string(value))
        return None if parsed is None else _to_number(parsed)
    return None


def _items(value: object) -> tuple[str, ...]:
    """select_multiple answers, whether stored as a tuple or as "a b c"."""
    if isinstance(value, tuple):
        return tuple(to_string(item) for item in value)
    return tuple(to_string(value).split())


# --------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------


def _equal(left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return _to_bool(left) == _to_bool(right)
    if _is_number(left) or _is_number(right):
        return _to_number(left) == _to_number(right)
    if isinstance(left, datetime.date) or isinstance(right, datetime.date):
        left_days, right_days = _date_days(left), _date_days(right)
        return left_days is not None and left_days == right_days
    return to_string(left) == to_string(right)


def _ordering_keys(left: object, right: object) -> tuple[int | float, int | float]:
    if isinstance(left, datetime.date) or isinstance(right, datetime.date):
        left_days, right_days = _date_days(left), _date_days(right)
        if left_days is not None and right_days is not None:
            return left_days, right_days
    return _to_number(left), _to_number(right)


def _relational(compare: Callable[[object, object], bool]) -> Callable[[object, object], bool]:
    def apply(left: object, right: object) -> bool:
        return compare(*_ordering_keys(left, right))

    return apply


def _arithmetic(
    combine: Callable[[int | float, int | float], int | float],
) -> Callable[[object, object], int | float]:
    """Integers stay integers so counts and ages print without a decimal point."""

    def apply(left: object, right: object) -> int | float:
        a, b = _to_number(left), _to_number(right)
        if isinstance(a, int) and isinstance(b, int):
            return combine(a, b)
        return combine(_to_float(a), _to_float(b))

    return apply


def _modulo(a: int | float, b: int | float) -> int | float:
    """XPath ``mod`` truncates (the result takes the dividend's sign), unlike Python's %."""
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            return _NAN
        remainder = abs(a) % abs(b)
        return -remainder if a < 0 else remainder
    if b == 0 or math.isinf(a) or math.isnan(b):
        return _NAN
    return math.fmod(a, b)


def _divide(left: object, right: object) -> float:
    """XPath ``div`` is IEEE division: x div 0 is ±Infinity (or NaN), never an error."""
    a, b = _to_float(_to_number(left)), _to_float(_to_number(right))
    if b == 0:
        if a == 0 or math.isnan(a):
            return _NAN
        return math.copysign(math.inf, a) * math.copysign(1, b)
    return a / b


#: Operators whose result on two plain numbers is the Python operator's (see _compile_numeric).
_PLAIN_NUMBER_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}

_BINARY_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "=": _equal,
    "!=": lambda left, right: not _equal(left, right),
    "<": _relational(lambda a, b: a < b),
    "<=": _relational(lambda a, b: a <= b),
    ">": _relational(lambda a, b: a > b),
    ">=": _relational(lambda a, b: a >= b),
    "+": _arithmetic(lambda a, b: a + b),
    "-": _arithmetic(lambda a, b: a - b),
    "*": _arithmetic(lambda a, b: a * b),
    "mod": _arithmetic(_modulo),
    "div": _divide,
}
