"""The repositories' SQL, written once in the dialect SQLite and PostgreSQL share, as PostgreSQL
runs it: translated once per statement text (and kinds of parameter values), then cached.

What is translated, mechanically, so that no statement is written twice:

* parameters: ``?`` and ``:name`` (a name used twice is one parameter) become ``$n`` with the
  type of the value given, ``$n::bigint`` for an int (and a bool, stored as 0/1 as SQLite
  does), ``::float8``, ``::text``, ``::bytea``; a None is written into the statement as
  ``NULL``. Why typed: PostgreSQL infers a parameter's type from where it stands, and where
  SQLite's SQL leaves it nothing to infer from (``VALUES (?, ?)`` joined to a table, ``? IS
  NULL``) it refuses or guesses text; SQLite's values carry their type, and so do these. Why
  NULL inline: a None has no type to give, and ``NULL`` takes the one its place needs.
* ``rowid`` (SQLite's implicit row id, used only as a tie-breaker in "the latest row") →
  ``ctid``, PostgreSQL's physical row address: the same order for rows never updated.
* ``json_each(x)`` (a JSON array given as one parameter) → ``json_array_elements_text(x::json)``,
  whose column is also named ``value``.
* ``/*postgresql: …*/``, a comment to SQLite, is SQL here: what only PostgreSQL needs said, such
  as ``FOR UPDATE … SKIP LOCKED`` where SQLite's one writer already keeps two processes apart.
* ``SELECT changes()`` is answered by the connection itself (storage/pg_hops.py): the rows the
  previous statement changed.

SQLite's functions the statements call and PostgreSQL lacks (``julianday``, ``json_valid``,
``json_extract`` with a ``$.key`` path, ``strftime`` of a julian day, ``date`` with a minutes
modifier) are created by the migration runner (storage/pg_migrations.py). Everything else the
repositories write is SQL both databases understand (``IS DISTINCT FROM``, ``ON CONFLICT``,
``RETURNING``, row values, CTEs); a new statement should be, too.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from collections.abc import Sequence
from typing import Any

from .errors import StorageError
from .pg_migrations import outside_quotes

_PARAMETER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)")
_ROWID = re.compile(r"\browid\b", re.I)
_JSON_EACH = re.compile(r"\bjson_each\(([^()]*)\)", re.I)
_ONLY_HERE = re.compile(r"/\*postgresql:(.*?)\*/", re.S)
#: A parameter's place in a parsed statement (a character SQL never contains).
_SLOT = "\x00"

#: Python type → how its value is written as a parameter: the cast, and how to convert it.
_CASTS: dict[type, str] = {int: "::bigint", bool: "::bigint", float: "::float8", str: "::text",
                           bytes: "::bytea"}


@functools.lru_cache(maxsize=2048)
def _parsed(sql: str) -> tuple[tuple[str, ...], tuple[str | None, ...], tuple[int, ...]]:
    """``sql`` cut at its parameters (the parts between them), each parameter's name (None for a
    ``?``) and which of the distinct parameters each place is."""
    names: list[str | None] = []
    places: list[int] = []

    def slot(match: re.Match) -> str:
        if match[0] == "?":
            names.append(None)
            places.append(len(names) - 1)
        else:
            if match[1] not in names:
                names.append(match[1])
            places.append(names.index(match[1]))
        return _SLOT

    def rewrite(part: str) -> str:
        part = _PARAMETER.sub(slot, part)
        part = _ONLY_HERE.sub(r"\1", part)
        part = _ROWID.sub("ctid", part)
        return _JSON_EACH.sub(r"json_array_elements_text(CAST(\1 AS json))", part)

    text = outside_quotes(sql, rewrite)
    return tuple(text.split(_SLOT)), tuple(names), tuple(places)


@functools.lru_cache(maxsize=4096)
def _rendered(sql: str, kinds: tuple[type, ...]) -> tuple[str, tuple[int, ...]]:
    """The statement for parameters of these Python types, and which values it is given."""
    parts, _, places = _parsed(sql)
    numbers: dict[int, int] = {}
    given: list[int] = []
    out = [parts[0]]
    for place, part in zip(places, parts[1:]):
        kind = kinds[place]
        if kind is type(None):
            out.append("NULL")
        else:
            if place not in numbers:
                given.append(place)
                numbers[place] = len(given)
            out.append(f"${numbers[place]}{_CASTS.get(kind, '')}")
        out.append(part)
    return "".join(out), tuple(given)


def postgresql_query(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[str, list[Any]]:
    """A statement with ``?`` or ``:name`` parameters as PostgreSQL runs it: ($n SQL, arguments)."""
    _, names, _ = _parsed(sql)
    if isinstance(params, dict):
        values = [params[name] for name in names]
    else:
        if len(params) != len(names):
            raise StorageError(f"{len(names)} parameters in the statement, {len(params)} given: {sql}")
        values = params
    query, given = _rendered(sql, tuple([type(value) for value in values]))
    return query, [int(values[i]) if type(values[i]) is bool else values[i] for i in given]


def as_sqlite_number(text: str) -> int | float:
    """A numeric (what sum() and avg() of integers give on PostgreSQL) as SQLite gives it: an int
    when whole, else a float; the connections decode ``numeric`` with it."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)
