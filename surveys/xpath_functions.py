"""ODK functions beyond the XPath core: dates with times, node-set helpers, lookups, once/uuid/random.

Registered into `surveys.expressions` when it is imported (its `_FUNCTIONS`, `_SPECIAL_FORMS`
and `_BUILDERS`), so the parser knows them like any other function. The engine is sans-I/O, so
nothing here reads a clock, a file or a random source:

- `now()` is the event's time (`Environment.now`), as before;
- `random()` and `uuid()` are worked out from `Environment.seed` (stable for one session) and
  from where the call stands in its expression, so every step sees the same value and two calls
  in a form see different ones: what ODK gives with `once(random())`;
- `once(x)` keeps the value already stored for the calculation (`Environment.current`);
- `pulldata()` reads a CSV file shipped beside the form, loaded with the form and indexed when
  the expression is parsed; `instance('x')/root/item[key = v]/column` is rewritten into it.

A `${name}` outside any repeat is one node: `count()` counts it when it holds an answer, `sum()`
adds the answers given, `join()` joins them (a select_multiple's choices one by one). A question
inside a repeat read from outside its instance is a `NodeSet`, one node per instance: `count()`
counts the instances, `sum()`, `min()`, `max()` and `join()` take the answered ones.
`position(..)` is the number of the instance being evaluated (`Environment.position`), and
`indexed-repeat()` reads one instance's answer through `Environment.indexed`.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence

from surveys import expressions as _x

__all__ = ["RESPONDENT_INSTANCE", "respondent_attributes", "rewrite_paths"]


def _once(env: _x.Environment, value: object) -> object:
    kept = _x._read(env.current)
    return value if kept == "" else kept


def _items(values: Sequence[object]) -> list[object]:
    """Arguments as node-set members: a select_multiple gives its choices, empties are dropped."""
    found: list[object] = []
    for value in _x._nodes(values):
        if isinstance(value, (tuple, list)):
            found += [item for item in value if _x.to_string(item) != ""]
        elif _x.to_string(value) != "":
            found.append(value)
    return found


def _count(*values: object) -> int:
    return sum(len(value) if value.__class__ is _x.NodeSet else _x.to_string(value) != "" for value in values)


def _sum(*values: object) -> int | float:
    numbers = [_x._to_number(value) for value in _x._nodes(values) if _x.to_string(value) != ""]
    total: int | float = 0
    for number in numbers:
        total += number
    if isinstance(total, float) and total.is_integer() and all(
            isinstance(n, int) or float(n).is_integer() for n in numbers):
        return int(total)
    return total


def _join(separator: object, *values: object) -> str:
    return _x.to_string(separator).join(_x.to_string(item) for item in _items(values))


def _decimal_date_time(value: object) -> float:
    moment = _x._to_date(value)
    if moment is None:
        return math.nan
    return float(_x._to_number(moment))


def _date_time(value: object) -> datetime.datetime | str:
    """A datetime from days since 1970-01-01 (the inverse of decimal-date-time) or ISO text."""
    if _x._is_number(value) or (isinstance(value, str) and _x._NUMERIC.fullmatch(value)):
        days = _x._to_number(value)
        if not _x._is_finite(days) or abs(days) > 2_900_000:
            return ""
        return _x._EPOCH_NAIVE + datetime.timedelta(days=days)
    moment = _x._to_date(value)
    if moment is None:
        return ""
    if isinstance(moment, datetime.datetime):
        return moment
    return datetime.datetime.combine(moment, datetime.time())


def _boolean_from_string(value: object) -> bool:
    return _x.to_string(value).strip() in ("true", "1")


_x._FUNCTIONS.update({
    "once": _x._function(_once, 1, 1, needs_env=True),
    "count": _x._function(_count, 1, None),
    "count-non-empty": _x._function(lambda *values: len(_items(values)), 1, None),
    "sum": _x._function(_sum, 1, None),
    "join": _x._function(_join, 1, None),
    "format-date-time": _x._function(_x._format_date, 2, 2),
    "decimal-date-time": _x._function(_decimal_date_time, 1, 1),
    "date-time": _x._function(_date_time, 1, 1),
    "boolean-from-string": _x._function(_boolean_from_string, 1, 1),
    # `position(..)` is read as position(): the instance of the innermost repeat being evaluated.
    "position": _x._function(lambda env, *ignored: env.position, 0, 1, needs_env=True),
})


class _IndexedRepeat(_x._Node):
    """indexed-repeat(${name}, ${repeat}, n[, ${inner repeat}, m...]): one instance's answer."""

    __slots__ = ("name", "pairs")

    def __init__(self, position: int, name: str, pairs: list[tuple[str, _x._Node]]) -> None:
        super().__init__(position)
        self.name = name
        self.pairs = pairs

    def evaluate(self, env: _x.Environment) -> object:
        numbers = tuple((repeat, _x._to_number(number.evaluate(env))) for repeat, number in self.pairs)
        if env.indexed is None:  # no repeats in this form: every node is the first
            return _x._read(env.values.get(self.name)) if all(n == 1 for _, n in numbers) else ""
        return _x._read(env.indexed(self.name, numbers))


def _build_indexed_repeat(parser, name, argument_tokens, arguments) -> _x._Node:
    if len(arguments) % 2 == 0:
        raise parser.error("indexed-repeat() takes a ${question}, then pairs of ${repeat} and a number",
                           name.position)
    references = [arguments[0]] + arguments[1::2]
    for token, argument in zip([argument_tokens[0]] + argument_tokens[1::2], references):
        if not isinstance(argument, _x._Reference):
            raise parser.error("indexed-repeat() needs ${names} for its question and repeats", token.position)
    return _IndexedRepeat(name.position, references[0].name,
                          [(reference.name, number) for reference, number in zip(references[1:], arguments[2::2])])


# -- seeded values -----------------------------------------------------------------------------


_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyz"


class _Seeded(_x._Node):
    """random() or uuid(): a value drawn from the session's seed and the call's place.

    `uuid(n)` is, as in ODK, a random string of n letters and digits.
    """

    __slots__ = ("salt", "make", "length")

    def __init__(self, position: int, salt: str, make: str, length: _x._Node | None = None) -> None:
        super().__init__(position)
        self.salt = salt
        self.make = make
        self.length = length

    def evaluate(self, env: _x.Environment) -> object:
        if not env.seed:
            raise _x.ExpressionError(f"{self.make}() needs a session to draw from", self.position)
        digest = hashlib.sha256(f"{env.seed}\x1f{self.salt}\x1f{self.position}".encode()).digest()
        if self.make == "random":
            return int.from_bytes(digest[:7], "big") / float(1 << 56)
        if self.length is None:
            return str(uuid.UUID(bytes=digest[:16], version=4))
        length = _x._to_number(self.length.evaluate(env))
        if not _x._is_finite(length) or not 0 < length <= 1000:
            return ""
        stream = hashlib.shake_256(digest).digest(int(length))
        return "".join(_ALPHANUMERIC[byte % len(_ALPHANUMERIC)] for byte in stream)


def _seeded(make: str):
    def build(parser, name, argument_tokens, arguments) -> _x._Node:
        return _Seeded(name.position, parser.source, make, arguments[0] if arguments else None)
    return build


# -- lookups in CSV files beside the form --------------------------------------------------------


class _Lookup(_x._Node):
    """pulldata(table, column, key column, key): the first row whose key column equals the key."""

    __slots__ = ("index", "key")

    def __init__(self, position: int, index: Mapping[str, str], key: _x._Node) -> None:
        super().__init__(position)
        self.index = index
        self.key = key

    def evaluate(self, env: _x.Environment) -> object:
        return self.index.get(_x.to_string(self.key.evaluate(env)).strip(), "")


def _literal_text(parser, token, argument, what: str) -> str:
    if not isinstance(argument, _x._Literal) or not isinstance(argument.value, str):
        raise parser.error(f"pulldata() needs the {what} as a quoted name", token.position)
    return argument.value.strip()


def _build_lookup(parser, name, argument_tokens, arguments) -> _x._Node:
    table, column, key_column = (_literal_text(parser, token, argument, what) for token, argument, what in zip(
        argument_tokens, arguments, ("CSV file's name", "column to read", "column to match")))
    table = table[:-4] if table.lower().endswith(".csv") else table
    rows = parser.tables.get(table)
    if rows is None:
        raise parser.error(f"pulldata() reads '{table}.csv', which is not shipped beside the form",
                           argument_tokens[0].position)
    index: dict[str, str] = {}
    for row in rows:
        if key_column not in row or column not in row:
            raise parser.error(f"'{table}.csv' has no column '{key_column if key_column not in row else column}'",
                               argument_tokens[1].position)
        index.setdefault(str(row[key_column]).strip(), str(row[column]))
    return _Lookup(name.position, index, arguments[3])


# -- preloads from the sample frame -------------------------------------------------------------

#: The secondary instance that holds the sampled person's frame row: `instance('respondent')/root/item/unit`.
RESPONDENT_INSTANCE = "respondent"
#: What `instance('respondent')/root/item/x` is read as; not an ODK function, so no form spells it.
_PRELOAD_FUNCTION = "khaosat-respondent"


class _Preload(_x._Node):
    """One attribute of the sampled person (unit, group, stratum, a frame column); "" when absent."""

    __slots__ = ("attribute",)

    def __init__(self, position: int, attribute: str) -> None:
        super().__init__(position)
        self.attribute = attribute

    def evaluate(self, env: _x.Environment) -> object:
        return env.preloads.get(self.attribute, "")


def _build_preload(parser, name, argument_tokens, arguments) -> _x._Node:
    return _Preload(name.position, _literal_text(parser, argument_tokens[0], arguments[0], "attribute"))


_x._SPECIAL_FORMS.update({"random": _x._Arity(0, 0), "uuid": _x._Arity(0, 1), "pulldata": _x._Arity(4, 4),
                         "indexed-repeat": _x._Arity(3, None), _PRELOAD_FUNCTION: _x._Arity(1, 1)})
_x._BUILDERS.update({"random": _seeded("random"), "uuid": _seeded("uuid"), "pulldata": _build_lookup,
                     "indexed-repeat": _build_indexed_repeat, _PRELOAD_FUNCTION: _build_preload})


# -- ODK paths the parser does not read ---------------------------------------------------------

# instance('list')/root/item[key = value]/column — ODK's lookup in a CSV (or choice list) by key.
_INSTANCE_LOOKUP = re.compile(
    r"instance\(\s*(['\"])(?P<table>[^'\"]+)\1\s*\)\s*/\s*root\s*/\s*item\s*"
    r"\[\s*(?P<key>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>[^\]]+?)\s*\]\s*/\s*(?P<column>[A-Za-z_][\w.-]*)")
_PARENT_POSITION = re.compile(r"position\(\s*\.\.\s*\)")
# instance('respondent')/root/item/unit — the one row of the sampled person, no key to match.
_RESPONDENT_PATH = re.compile(
    r"instance\(\s*(['\"])" + RESPONDENT_INSTANCE + r"\1\s*\)\s*/\s*root\s*/\s*item\s*/\s*(?P<attribute>[A-Za-z_][\w.-]*)")


def respondent_attributes(source: str) -> set[str]:
    """The sampled person's attributes an expression reads through `instance('respondent')`."""
    return {match["attribute"] for match in _RESPONDENT_PATH.finditer(source)}


def rewrite_paths(source: str) -> str:
    """Spell the ODK paths a chat form can use in the functions the parser knows.

    `instance('x')/root/item[name = ${v}]/label` becomes `pulldata('x', 'label', 'name', ${v})`
    and `position(..)` becomes `position()`; `instance('respondent')/root/item/unit` reads the
    sampled person's frame row given to the session. Anything else is left for the parser to judge.
    """
    source = _RESPONDENT_PATH.sub(lambda m: f"{_PRELOAD_FUNCTION}('{m['attribute']}')", source)
    source = _INSTANCE_LOOKUP.sub(
        lambda m: f"pulldata('{m['table']}', '{m['column']}', '{m['key']}', {m['value']})", source)
    return _PARENT_POSITION.sub("position()", source)
