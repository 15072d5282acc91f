"""Safe evaluator for the XLSForm/ODK XPath subset that real forms use.

Form authors write ``relevant``, ``constraint``, ``calculation``,
``choice_filter``, ``required`` and ``default`` cells in XPath, and labels pipe
answers in with ``${name}``.  Those cells come from spreadsheets we do not
control, so they are never handed to ``eval``: a hand-written tokenizer and
recursive-descent parser turn them into a small tree that can only do what the
function table allows.  Parsing happens once per form (so typos are reported
when the form is loaded, with a character position), evaluation once per
message.

Coercions follow XPath 1.0 as ODK/JavaRosa applies them, because authors test
their forms in ODK tools and expect the same answers here.  Ordinary type
mismatches never raise; only genuine problems (such as ``today()`` with no
date supplied) raise :class:`ExpressionError`.

The work is split by stage, each module saying why it exists: `surveys.xpath_values` (the value
model, coercions, operators), `surveys.xpath_core_functions` (the function table and arities),
`surveys.xpath_tree` (syntax tree nodes, compiled to closures), `surveys.xpath_parser`
(tokenizer and parser) and `surveys.xpath_functions` (ODK's functions beyond the XPath core).
This module is the public import point: it holds `Expression`, `parse()` and label piping, and
re-exports what callers import from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Internals re-exported for the modules that extend or read the parser through this one
# (`surveys.xpath_functions`, `surveys.phrasing`, `surveys.engine_repeats`).
from surveys.xpath_core_functions import (  # noqa: F401
    _BUILDERS,
    _FUNCTIONS,
    _SPECIAL_FORMS,
    _Arity,
    _format_date,
    _function,
    _Function,
    _nodes,
)
from surveys.xpath_parser import _REFERENCE_IN_TEXT, _is_name, _Parser
from surveys.xpath_tree import (  # noqa: F401
    _BareName,
    _Binary,
    _Call,
    _ChoiceName,
    _compiled,
    _Current,
    _If,
    _Literal,
    _Negate,
    _Node,
    _reads_answers_only,
    _Reference,
)
from surveys.xpath_values import (  # noqa: F401
    _EPOCH_NAIVE,
    _NUMERIC,
    NOT_APPLICABLE,
    Environment,
    ExpressionError,
    NodeSet,
    _is_finite,
    _is_number,
    _read,
    _to_bool,
    _to_date,
    _to_number,
    to_string,
)

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
