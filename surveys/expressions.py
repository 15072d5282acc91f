"""Safe evaluator for the XLSForm/ODK XPath subset that real forms use.

Form authors write ``relevant``, ``constraint``, ``calculation``,
``choice_filter``, ``required`` and ``default`` cells in XPath, and labels pipe
answers in with ``${name}``.  Those cells come from spreadsheets we do not
control, so they are never handed to ``eval``: a hand-written tokenizer and
recursive-descent parser turn them into a small tree that can only do what the
functions below allow.  Parsing happens once per form (so typos are reported
when the form is loaded, with a character position), evaluation once per
message.

Coercions follow XPath 1.0 as ODK/JavaRosa applies them, because authors test
their forms in ODK tools and expect the same answers here.  Ordinary type
mismatches never raise; only genuine problems (such as ``today()`` with no
date supplied) raise :class:`ExpressionError`.
"""

from __future__ import annotations

import datetime
import functools
import math
import operator
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

__all__ = [
    "NOT_APPLICABLE",
    "Environment",
    "Expression",
    "ExpressionError",
    "interpolate",
    "parse",
    "references_in_text",
    "to_string",
]


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


# --------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------


_Compiled = Callable[[Environment], object]


class _Node:
    """A node of the tree; `compile()` turns it into a closure that does what `evaluate` does.

    Expressions are parsed once per form and evaluated many times per message, so each node
    is compiled once into a plain function of the environment (no per-node method dispatch,
    operators and functions looked up once). The closures are built from the tree only; no
    source text is ever handed to Python's compiler.
    """

    __slots__ = ("position",)

    def __init__(self, position: int) -> None:
        self.position = position

    def evaluate(self, env: Environment) -> object:
        raise NotImplementedError

    def compile(self) -> Callable[[Environment], object]:
        return self.evaluate


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, position: int, value: object) -> None:
        super().__init__(position)
        self.value = value

    def evaluate(self, env: Environment) -> object:
        return self.value

    def compile(self) -> Callable[[Environment], object]:
        value = self.value
        return lambda env: value


class _Reference(_Node):
    __slots__ = ("name",)

    def __init__(self, position: int, name: str) -> None:
        super().__init__(position)
        self.name = name

    def evaluate(self, env: Environment) -> object:
        return _read(env.values.get(self.name))

    def compile(self) -> Callable[[Environment], object]:
        name = self.name

        def read(env: Environment) -> object:
            value = env.values.get(name)
            if value is None or value is NOT_APPLICABLE:
                return ""
            if isinstance(value, list):
                return tuple(value)
            return value

        return read


class _Current(_Node):
    __slots__ = ()

    def evaluate(self, env: Environment) -> object:
        return _read(env.current)

    def compile(self) -> Callable[[Environment], object]:
        return lambda env: _read(env.current)


class _BareName(_Node):
    __slots__ = ("name",)

    def __init__(self, position: int, name: str) -> None:
        super().__init__(position)
        self.name = name

    def evaluate(self, env: Environment) -> object:
        if env.choice_row is None:
            raise ExpressionError(f"'{self.name}' can only be read while filtering choices", self.position)
        return _read(env.choice_row.get(self.name))


class _Negate(_Node):
    __slots__ = ("operand",)

    def __init__(self, position: int, operand: _Node) -> None:
        super().__init__(position)
        self.operand = operand

    def evaluate(self, env: Environment) -> object:
        return -_to_number(self.operand.evaluate(env))

    def compile(self) -> Callable[[Environment], object]:
        operand = self.operand.compile()
        return lambda env: -_to_number(operand(env))


class _Binary(_Node):
    __slots__ = ("operator", "left", "right")

    def __init__(self, position: int, operator: str, left: _Node, right: _Node) -> None:
        super().__init__(position)
        self.operator = operator
        self.left = left
        self.right = right

    def evaluate(self, env: Environment) -> object:
        left = self.left.evaluate(env)
        if self.operator == "and":
            return _to_bool(left) and _to_bool(self.right.evaluate(env))
        if self.operator == "or":
            return _to_bool(left) or _to_bool(self.right.evaluate(env))
        return _BINARY_OPERATORS[self.operator](left, self.right.evaluate(env))

    def compile(self) -> Callable[[Environment], object]:
        left, right = self.left.compile(), self.right.compile()
        operator_ = self.operator
        if operator_ == "and":
            return lambda env: _to_bool(left(env)) and _to_bool(right(env))
        if operator_ == "or":
            return lambda env: _to_bool(left(env)) or _to_bool(right(env))
        if operator_ in ("=", "!="):
            fast = self._compile_text_equality(left, right)
            if fast is not None:
                return fast
        if operator_ in _PLAIN_NUMBER_OPERATORS:
            return self._compile_numeric(left, right, _PLAIN_NUMBER_OPERATORS[operator_])
        function = _BINARY_OPERATORS[operator_]
        return lambda env: function(left(env), right(env))

    def _compile_text_equality(self, left: _Compiled, right: _Compiled) -> _Compiled | None:
        """`${x} = 'text'` (either way round): a plain string answer compares as itself, anything
        else as _equal does (which is symmetric, so the side the literal is on does not matter)."""
        negate = self.operator == "!="
        if isinstance(self.right, _Literal) and self.right.value.__class__ is str:
            text, other = self.right.value, left
        elif isinstance(self.left, _Literal) and self.left.value.__class__ is str:
            text, other = self.left.value, right
        else:
            return None

        def equal(env: Environment) -> bool:
            value = other(env)
            same = value == text if value.__class__ is str else _equal(value, text)
            return not same if negate else same

        return equal

    def _compile_numeric(self, left: _Compiled, right: _Compiled,
                         plain: Callable[[object, object], object]) -> _Compiled:
        """Relational and +, -, * operators: plain numbers skip the coercions (same result)."""
        function = _BINARY_OPERATORS[self.operator]
        arithmetic = self.operator in ("+", "-", "*")
        kinds = (int,) if arithmetic else (int, float)

        def apply(env: Environment) -> object:
            a, b = left(env), right(env)
            if a.__class__ in kinds and b.__class__ in kinds:
                return plain(a, b)
            return function(a, b)

        return apply


class _Call(_Node):
    __slots__ = ("function", "arguments")

    def __init__(self, position: int, function: _Function, arguments: list[_Node]) -> None:
        super().__init__(position)
        self.function = function
        self.arguments = arguments

    def evaluate(self, env: Environment) -> object:
        values = [argument.evaluate(env) for argument in self.arguments]
        if not self.function.needs_env:
            return self.function.implementation(*values)
        try:
            return self.function.implementation(env, *values)
        except ExpressionError as error:
            raise ExpressionError(error.message, self.position) from None

    def compile(self) -> Callable[[Environment], object]:
        implementation = self.function.implementation
        arguments = [argument.compile() for argument in self.arguments]
        if self.function.needs_env:
            position = self.position

            def call_with_env(env: Environment) -> object:
                values = [argument(env) for argument in arguments]
                try:
                    return implementation(env, *values)
                except ExpressionError as error:
                    raise ExpressionError(error.message, position) from None

            return call_with_env
        if len(arguments) == 0:
            return lambda env: implementation()
        if len(arguments) == 1:
            (first,) = arguments
            return lambda env: implementation(first(env))
        if len(arguments) == 2:
            first, second = arguments
            return lambda env: implementation(first(env), second(env))
        if len(arguments) == 3:
            first, second, third = arguments
            return lambda env: implementation(first(env), second(env), third(env))
        return lambda env: implementation(*[argument(env) for argument in arguments])


class _If(_Node):
    """Lazy, so an unused branch (say, one calling today()) cannot fail."""

    __slots__ = ("condition", "then", "otherwise")

    def __init__(self, position: int, condition: _Node, then: _Node, otherwise: _Node) -> None:
        super().__init__(position)
        self.condition = condition
        self.then = then
        self.otherwise = otherwise

    def evaluate(self, env: Environment) -> object:
        branch = self.then if _to_bool(self.condition.evaluate(env)) else self.otherwise
        return branch.evaluate(env)

    def compile(self) -> Callable[[Environment], object]:
        condition, then, otherwise = self.condition.compile(), self.then.compile(), self.otherwise.compile()
        return lambda env: then(env) if _to_bool(condition(env)) else otherwise(env)


class _ChoiceName(_Node):
    __slots__ = ("value", "question")

    def __init__(self, position: int, value: _Node, question: str) -> None:
        super().__init__(position)
        self.value = value
        self.question = question

    def evaluate(self, env: Environment) -> object:
        choice = to_string(self.value.evaluate(env))
        if choice == "" or env.choice_label is None:
            return choice
        return env.choice_label(self.question, choice) or choice

    def compile(self) -> Callable[[Environment], object]:
        value, question = self.value.compile(), self.question

        def choice_name(env: Environment) -> object:
            choice = to_string(value(env))
            if choice == "" or env.choice_label is None:
                return choice
            return env.choice_label(question, choice) or choice

        return choice_name


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

_NUMBER, _STRING, _REFERENCE, _DOT, _NAME, _OPERATOR, _LPAREN, _RPAREN, _COMMA, _END = (
    "number", "string", "reference", "dot", "name", "operator", "(", ")", ",", "end",
)
_KEYWORD_OPERATORS = ("and", "or", "div", "mod")
# After one of these an operand is complete, so XPath reads and/or/div/mod as operators.
_OPERAND_ENDS = frozenset({_NUMBER, _STRING, _REFERENCE, _DOT, _NAME, _RPAREN})
_REFERENCE_IN_TEXT = re.compile(r"\$\{([^{}]*)\}")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int

    def describe(self) -> str:
        if self.kind == _END:
            return "end of expression"
        if self.kind in (_NUMBER, _STRING, _NAME):
            return f"{self.kind} {self.text if self.kind == _STRING else repr(self.text)}"
        return f"'{self.text}'"


def _is_ascii_digit(char: str) -> bool:
    return "0" <= char <= "9" and len(char) == 1


def _is_name_start(char: str) -> bool:
    return char.isalpha() or char == "_"


def _is_name_char(char: str) -> bool:
    """XML NameChar, including combining marks (question names typed in NFD Vietnamese)."""
    return _is_name_start(char) or char in "-.\u00b7" or unicodedata.category(char) in ("Nd", "Mn", "Mc")


def _is_name(text: str) -> bool:
    return bool(text) and _is_name_start(text[0]) and all(_is_name_char(char) for char in text[1:])


def _scan_name(source: str, start: int) -> int:
    """End of a (possibly prefixed, as in jr:choice-name) name starting at ``start``."""
    end = start + 1
    while end < len(source) and _is_name_char(source[end]):
        end += 1
    if end + 1 < len(source) and source[end] == ":" and _is_name_start(source[end + 1]):
        end += 2
        while end < len(source) and _is_name_char(source[end]):
            end += 1
    return end


def _operator_keyword(word: str) -> str | None:
    """The operator a name-like word spells in operator position; "div-1" is "div" then "-1"."""
    for keyword in _KEYWORD_OPERATORS:
        if word == keyword or word.startswith(keyword + "-"):
            return keyword
    return None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    length = len(source)

    def emit(kind: str, end: int) -> None:
        tokens.append(_Token(kind, source[index:end], index))

    while index < length:
        char = source[index]
        following = source[index + 1] if index + 1 < length else ""
        if char.isspace():
            index += 1
            continue
        operator_position = bool(tokens) and tokens[-1].kind in _OPERAND_ENDS
        if char == "$":
            if following != "{":
                raise ExpressionError("unexpected character '$' (references look like ${name})", index, source)
            close = source.find("}", index)
            if close < 0:
                raise ExpressionError("unclosed '${'", index, source)
            name = source[index + 2 : close]
            if name == "":
                raise ExpressionError("empty reference '${}'", index, source)
            if not _is_name(name):
                raise ExpressionError(f"invalid question name '{name}' in reference", index, source)
            end = close + 1
            emit(_REFERENCE, end)
        elif _is_ascii_digit(char) or (char == "." and _is_ascii_digit(following)):
            end = index
            while end < length and _is_ascii_digit(source[end]):
                end += 1
            if end < length and source[end] == ".":
                end += 1
                while end < length and _is_ascii_digit(source[end]):
                    end += 1
            emit(_NUMBER, end)
        elif char == ".":
            if following == ".":
                raise ExpressionError("'..' (parent) is not supported; use ${name}", index, source)
            end = index + 1
            emit(_DOT, end)
        elif char in "'\"":
            close = source.find(char, index + 1)
            if close < 0:
                raise ExpressionError("unterminated string", index, source)
            end = close + 1
            emit(_STRING, end)
        elif _is_name_start(char):
            end = _scan_name(source, index)
            word = source[index:end]
            keyword = _operator_keyword(word) if operator_position else None
            if keyword is not None:
                end = index + len(keyword)
                emit(_OPERATOR, end)
            else:
                emit(_NAME, end)
        elif char in "<>!" and following == "=":
            end = index + 2
            emit(_OPERATOR, end)
        elif char == "=" and following == "=":
            raise ExpressionError("use '=' to compare, not '=='", index, source)
        elif char in "=<>+-*":
            end = index + 1
            emit(_OPERATOR, end)
        elif char in "(),":
            end = index + 1
            emit(char, end)
        else:
            raise ExpressionError(f"unexpected character {char!r}", index, source)
        index = end
    tokens.append(_Token(_END, "", length))
    return tokens


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------

# Binary precedence levels, loosest first; each level is left-associative.
_PRECEDENCE: tuple[frozenset[str], ...] = (
    frozenset({"or"}),
    frozenset({"and"}),
    frozenset({"=", "!="}),
    frozenset({"<", "<=", ">", ">="}),
    frozenset({"+", "-"}),
    frozenset({"*", "div", "mod"}),
)


class _Parser:
    def __init__(self, source: str, allow_current: bool, allow_bare_names: bool,
                 tables: Mapping[str, object] | None = None) -> None:
        self.source = source
        #: Data shipped beside the form (CSV files by name), read by pulldata() and instance().
        self.tables = tables or {}
        self.tokens = _tokenize(source)
        self.index = 0
        self.allow_current = allow_current
        self.allow_bare_names = allow_bare_names
        self.references: set[str] = set()
        self.bare_names: set[str] = set()
        self.uses_current = False

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position, self.source)

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> _Node:
        if self.token.kind == _END:
            raise self.error("empty expression", 0)
        try:
            root = self.binary(0)
        except RecursionError:
            raise self.error("expression is nested too deeply", self.token.position) from None
        if self.token.kind != _END:
            raise self.error(f"unexpected {self.token.describe()}", self.token.position)
        return root

    def binary(self, level: int) -> _Node:
        if level == len(_PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while self.token.kind == _OPERATOR and self.token.text in _PRECEDENCE[level]:
            operator = self.advance()
            right = self.binary(level + 1)
            left = _Binary(operator.position, operator.text, left, right)
        return left

    def unary(self) -> _Node:
        if self.token.kind == _OPERATOR and self.token.text == "-":
            minus = self.advance()
            return _Negate(minus.position, self.unary())
        return self.primary()

    def primary(self) -> _Node:
        token = self.token
        if token.kind == _NUMBER:
            self.advance()
            return _Literal(token.position, float(token.text) if "." in token.text else int(token.text))
        if token.kind == _STRING:
            self.advance()
            return _Literal(token.position, token.text[1:-1])
        if token.kind == _REFERENCE:
            self.advance()
            name = token.text[2:-1]
            self.references.add(name)
            return _Reference(token.position, name)
        if token.kind == _DOT:
            self.advance()
            return self.current(token.position)
        if token.kind == _LPAREN:
            self.advance()
            inner = self.binary(0)
            self.expect_close(token)
            return inner
        if token.kind == _NAME:
            if self.tokens[self.index + 1].kind == _LPAREN:
                return self.call()
            self.advance()
            return self.bare_name(token)
        if token.kind == _END:
            raise self.error("expression ends where a value was expected", token.position)
        raise self.error(f"unexpected {token.describe()}", token.position)

    def current(self, position: int) -> _Node:
        if not self.allow_current:
            raise self.error("'.' (the answer being checked) is only allowed in constraints", position)
        self.uses_current = True
        return _Current(position)

    def bare_name(self, token: _Token) -> _Node:
        if not self.allow_bare_names:
            raise self.error(f"unknown name '{token.text}' (did you mean ${{{token.text}}}?)", token.position)
        self.bare_names.add(token.text)
        return _BareName(token.position, token.text)

    def expect_close(self, opening: _Token) -> None:
        if self.token.kind == _RPAREN:
            self.advance()
            return
        if self.token.kind == _END:
            raise self.error("unclosed '('", opening.position)
        raise self.error(f"expected ')' but found {self.token.describe()}", self.token.position)

    def call(self) -> _Node:
        name = self.advance()
        opening = self.advance()
        function = _FUNCTIONS.get(name.text)
        arity = function.arity if function is not None else _SPECIAL_FORMS.get(name.text)
        if arity is None:
            raise self.error(f"unknown function '{name.text}'", name.position)
        arguments: list[_Node] = []
        argument_tokens: list[_Token] = []
        if self.token.kind == _RPAREN:
            self.advance()
        else:
            while True:
                argument_tokens.append(self.token)
                arguments.append(self.binary(0))
                if self.token.kind == _COMMA:
                    self.advance()
                    continue
                if self.token.kind == _END:
                    raise self.error("unclosed '('", opening.position)
                if self.token.kind != _RPAREN:
                    raise self.error(f"expected ',' or ')' but found {self.token.describe()}", self.token.position)
                self.advance()
                break
        if not arity.accepts(len(arguments)):
            raise self.error(f"{name.text}() takes {arity}, not {len(arguments)}", name.position)
        if name.text == "if":
            return _If(name.position, *arguments)
        if name.text in _BUILDERS:
            return _BUILDERS[name.text](self, name, argument_tokens, arguments)
        if name.text == "jr:choice-name":
            return _ChoiceName(name.position, arguments[0], self.choice_question(argument_tokens[1], arguments[1]))
        if name.text == "regex":
            self.check_pattern(argument_tokens[1], arguments[1])
        if name.text == "string-length" and not arguments:
            # XPath's string-length() measures the context node, i.e. ".".
            arguments.append(self.current(name.position))
        return _Call(name.position, function, arguments)

    def choice_question(self, token: _Token, argument: _Node) -> str:
        """jr:choice-name names its question inside a string, e.g. '${district}'."""
        names = []
        if isinstance(argument, _Literal) and token.kind == _STRING:
            names = [name for name in _REFERENCE_IN_TEXT.findall(argument.value) if _is_name(name)]
        if len(names) != 1:
            raise self.error("jr:choice-name() needs a quoted '${question}' as its second argument", token.position)
        self.references.add(names[0])
        return names[0]

    def check_pattern(self, token: _Token, argument: _Node) -> None:
        if isinstance(argument, _Literal) and token.kind == _STRING:
            try:
                _compile(argument.value)
            except re.error as problem:
                raise self.error(f"invalid regular expression ({problem})", token.position) from None


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression, reusable across evaluations and safe to share."""

    source: str
    references: frozenset[str]
    uses_current: bool
    bare_names: frozenset[str]
    _root: _Node = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_run", _compiled(self._root))
        object.__setattr__(self, "_answers_only", _reads_answers_only(self._root))

    @property
    def answers_only(self) -> bool:
        """True when the value depends on nothing but the answers in ``references``.

        No ``.``, no choice columns, no ``today()``/``now()`` and no choice labels (which
        depend on the language): the same referenced answers always give the same value, so
        callers may remember results by those answers.
        """
        return self._answers_only  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, object]:
        return {key: value for key, value in self.__dict__.items() if key != "_run"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "_run", _compiled(self._root))

    def evaluate(self, env: Environment) -> object:
        try:
            return self._run(env)  # type: ignore[attr-defined]
        except ExpressionError as error:
            raise ExpressionError(error.message, error.position, self.source) from None
        except RecursionError:
            raise ExpressionError("expression is nested too deeply", None, self.source) from None

    def evaluate_bool(self, env: Environment) -> bool:
        return _to_bool(self.evaluate(env))


def _reads_answers_only(root: _Node) -> bool:
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, (_Literal, _Reference)):
            continue
        if isinstance(node, _Negate):
            pending.append(node.operand)
        elif isinstance(node, _Binary):
            pending += (node.left, node.right)
        elif isinstance(node, _If):
            pending += (node.condition, node.then, node.otherwise)
        elif isinstance(node, _Call) and not node.function.needs_env:
            pending += node.arguments
        else:  # ".", a choice column, today()/now(), a choice label, or anything unforeseen
            return False
    return True


def _compiled(root: _Node) -> Callable[[Environment], object]:
    try:
        return root.compile()
    except RecursionError:  # deeper than closures can nest: walk the tree instead
        return root.evaluate


def parse(source: str, *, allow_current: bool = True, allow_bare_names: bool = False,
          tables: Mapping[str, object] | None = None) -> Expression:
    """Parse once when a form is loaded so authors hear about typos before respondents do.

    ``allow_current`` is for constraints (where "." is the answer being
    checked); ``allow_bare_names`` is for choice_filter, where a bare name
    reads a column of the choice being filtered; ``tables`` are the CSV files
    shipped beside the form (name → rows), for pulldata().
    """
    parser = _Parser(source, allow_current, allow_bare_names, tables)
    root = parser.parse()
    return Expression(
        source=source,
        references=frozenset(parser.references),
        uses_current=parser.uses_current,
        bare_names=frozenset(parser.bare_names),
        _root=root,
    )


def references_in_text(text: str) -> frozenset[str]:
    """Question names piped into a label, so the engine knows what a label depends on."""
    return frozenset(name for name in _REFERENCE_IN_TEXT.findall(text) if _is_name(name))


def interpolate(text: str, env: Environment, render: Callable[[str, object], str] | None = None) -> str:
    """Pipe answers into a label.

    ``render`` lets the caller show a choice's label instead of its name; it
    receives the answer as expressions see it (empty answers as "").  Anything
    that is not a well-formed ``${name}`` is left untouched, since labels are
    free text.
    """

    if "${" not in text:  # nothing to pipe in (most labels)
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _is_name(name):
            return match.group(0)
        value = _read(env.values.get(name))
        return render(name, value) if render is not None else to_string(value)

    return _REFERENCE_IN_TEXT.sub(replace, text)


# More ODK functions live in their own module, which registers them here.
from surveys import xpath_functions as _xpath_functions  # noqa: E402,F401
