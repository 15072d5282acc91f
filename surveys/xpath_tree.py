"""The syntax tree of a parsed expression, and how each node is compiled into a closure.

Part of `surveys.expressions`: the parser (`surveys.xpath_parser`) builds these nodes; an
`Expression` compiles its root once and runs the closure per message. `surveys.phrasing` reads
the same tree to put conditions into words, and `surveys.xpath_functions` adds its own nodes.
"""

from __future__ import annotations

from collections.abc import Callable

from surveys.xpath_core_functions import _Function
from surveys.xpath_values import (
    _BINARY_OPERATORS,
    _PLAIN_NUMBER_OPERATORS,
    NOT_APPLICABLE,
    Environment,
    ExpressionError,
    _equal,
    _read,
    _to_bool,
    _to_number,
    to_string,
)



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
