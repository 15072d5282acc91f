"""Tokenizer and recursive-descent parser: spreadsheet cell text to a syntax tree, checked at load.

Part of `surveys.expressions`. Cells are never handed to `eval`: this turns them into the nodes
of `surveys.xpath_tree`, checking what can be checked before a respondent sees the form (names,
known functions and their argument counts, `.` only where allowed, regular expressions that
compile), each problem with a character position.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from surveys.xpath_core_functions import _BUILDERS, _FUNCTIONS, _SPECIAL_FORMS, _compile
from surveys.xpath_tree import (
    _BareName,
    _Binary,
    _Call,
    _ChoiceName,
    _Current,
    _If,
    _Literal,
    _Negate,
    _Node,
    _Reference,
)
from surveys.xpath_values import ExpressionError


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
