"""Conditions in words, for people reading a printed questionnaire.

A paper form cannot evaluate `relevant`, so the reader is told in words when to answer a
question: "Nếu câu 3 = 1 (Có), trả lời câu 4–5; nếu không, chuyển sang câu 6". The words are
worked out from the parsed expression (`surveys.expressions`' syntax tree), for the shapes forms
use for skips: comparisons of an answer with a value, `selected()`, `not()`, `and`/`or`,
"answered" / "left empty", `count-selected()`. Anything else is shown as the condition itself made
readable (question numbers for `${name}`, ≠ ≤ ≥, và/hoặc), never left out.

Choice codes: the code printed beside each choice is its name when every name of the list is a
whole number (the code analysts see, "1".."5"), else its position in the list (1, 2, …), which is
what a person types on the data-entry screen (`choice_codes`).
"""

from __future__ import annotations

import re
from surveys import expressions as _x
from surveys.model import Question, Questionnaire

_INTEGER = re.compile(r"^[+-]?\d+$")

_WORDS = {
    "vi": {"and": " và ", "or": " hoặc ", "question": "câu {n}", "includes": "{q} có chọn {c}",
           "excludes": "{q} không chọn {c}", "answered": "{q} có trả lời", "empty": "{q} để trống",
           "not": "không phải ({x})", "count": "số phương án chọn ở {q}",
           "=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"},
    "en": {"and": " and ", "or": " or ", "question": "Q{n}", "includes": "{q} includes {c}",
           "excludes": "{q} does not include {c}", "answered": "{q} is answered", "empty": "{q} is left empty",
           "not": "not ({x})", "count": "the number of choices in {q}",
           "=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"},
}
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_RAW_OPERATORS = ((re.compile(r"!="), "≠"), (re.compile(r">="), "≥"), (re.compile(r"<="), "≤"))


def choice_codes(question: Question) -> dict[str, str]:
    """Choice name → the code printed beside it (and typed at data entry)."""
    names = [c.name for c in question.choices]
    if names and all(_INTEGER.match(name) for name in names):
        return {name: name for name in names}
    return {c.name: c.key for c in question.choices}


def numbering(form: Questionnaire) -> dict[str, int]:
    """Question name → its printed number: every question a person answers on paper, in order."""
    return {q.name: number for number, q in enumerate(
        (q for q in form.questions if q.type.is_asked), start=1)}


class Phraser:
    """Conditions of one form in one language (``vi`` or ``en``)."""

    def __init__(self, form: Questionnaire, language: str):
        self.form = form
        self.language = language if language in _WORDS else "en"
        self.words = _WORDS[self.language]
        self.numbers = numbering(form)

    def question(self, name: str) -> str | None:
        number = self.numbers.get(name)
        return self.words["question"].format(n=number) if number is not None else None

    def condition(self, expression: _x.Expression) -> str:
        """The condition in words, or, when it has a shape not phrased here, made readable."""
        words = self._phrase(expression._root)
        return words if words is not None else self.readable(expression.source)

    def readable(self, source: str) -> str:
        """The expression as written, with question numbers for ``${name}`` and ≠ ≤ ≥ for !=, <=, >=."""
        text = re.sub(r"\$\{([^{}]*)\}", lambda m: self.question(m.group(1)) or m.group(1), source)
        for pattern, symbol in _RAW_OPERATORS:
            text = pattern.sub(symbol, text)
        text = re.sub(r"\band\b", self.words["and"].strip(), text)
        return re.sub(r"\bor\b", self.words["or"].strip(), text)

    # -- the tree ------------------------------------------------------------------------------

    def _phrase(self, node) -> str | None:
        if isinstance(node, _x._Binary):
            if node.operator in ("and", "or"):
                parts = [self._phrase_part(side, node.operator) for side in (node.left, node.right)]
                return None if None in parts else self.words[node.operator].join(parts)
            if node.operator in _COMPARISONS:
                return self._comparison(node)
            return None
        if isinstance(node, _x._Call):
            return self._call(node)
        return None

    def _phrase_part(self, node, operator: str) -> str | None:
        """One side of and/or: a different connective inside is put in brackets."""
        words = self._phrase(node)
        if words is not None and isinstance(node, _x._Binary) and node.operator in ("and", "or") \
                and node.operator != operator:
            return f"({words})"
        return words

    def _call(self, node) -> str | None:
        function, arguments = node.function, node.arguments
        if function is _x._FUNCTIONS["selected"] and isinstance(arguments[0], _x._Reference):
            return self._selected(arguments[0].name, arguments[1], "includes")
        if function is _x._FUNCTIONS["not"]:
            inner = arguments[0]
            if isinstance(inner, _x._Call) and inner.function is _x._FUNCTIONS["selected"] \
                    and isinstance(inner.arguments[0], _x._Reference):
                return self._selected(inner.arguments[0].name, inner.arguments[1], "excludes")
            words = self._phrase(inner)
            return self.words["not"].format(x=words) if words is not None else None
        return None

    def _selected(self, name: str, value, key: str) -> str | None:
        question = self.question(name)
        if question is None or not isinstance(value, _x._Literal):
            return None
        return self.words[key].format(q=question, c=self._value(name, value.value))

    def _comparison(self, node) -> str | None:
        left, right, operator = node.left, node.right, node.operator
        if isinstance(right, _x._Reference) and not isinstance(left, _x._Reference):
            left, right = right, left
            operator = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(operator, operator)
        subject = None
        if isinstance(left, _x._Reference):
            subject = self.question(left.name)
        elif isinstance(left, _x._Call) and left.function is _x._FUNCTIONS["count-selected"] \
                and isinstance(left.arguments[0], _x._Reference):
            question = self.question(left.arguments[0].name)
            subject = self.words["count"].format(q=question) if question else None
            left = None
        if subject is None or not isinstance(right, _x._Literal):
            return None
        if right.value == "" and operator in ("=", "!="):
            return self.words["empty" if operator == "=" else "answered"].format(q=subject)
        value = self._value(left.name, right.value) if isinstance(left, _x._Reference) else _x.to_string(right.value)
        return f"{subject} {self.words[operator]} {value}"

    def _value(self, name: str, value: object) -> str:
        """A value as printed: a choice's code with its label, else the value itself."""
        text = _x.to_string(value)
        if not self.form.has(name):
            return text
        question = self.form.question(name)
        if not question.type.is_select:
            return text
        choice = question.choice_by_name(text)
        if choice is None:
            return f"“{text}”"
        label = choice.label.get(self.language, self.form.default_language)
        return f"{choice_codes(question)[choice.name]} ({label})" if label else choice_codes(question)[choice.name]


def constraint_words(question: Question, language: str) -> str:
    """What a valid answer is, for the paper: the form's own constraint message, else the constraint
    in words ("Từ 1920 đến 2008" for ``. >= 1920 and . <= 2008``), else made readable."""
    if question.constraint is None:
        return ""
    message = question.constraint_message.get(language, "")
    if message:
        return message
    bounds = _bounds(question.constraint._root)
    if bounds is not None:
        low, high = bounds
        return f"Từ {low} đến {high}" if language == "vi" else f"From {low} to {high}"
    return _readable_constraint(question.constraint.source, language)


def _readable_constraint(source: str, language: str) -> str:
    for pattern, symbol in _RAW_OPERATORS:
        source = pattern.sub(symbol, source)
    words = _WORDS.get(language, _WORDS["en"])
    source = re.sub(r"\band\b", words["and"].strip(), source)
    return re.sub(r"\bor\b", words["or"].strip(), source)


def _bounds(node) -> tuple[str, str] | None:
    """``. >= a and . <= b`` (either order, < or >) → (a, b)."""
    low, high = bounds(node)
    return (low, high) if low is not None and high is not None else None


def bounds(node) -> tuple[str | None, str | None]:
    """The number bounds a constraint sets, as written: ``. >= a and . <= b`` (either order) →
    (a, b); ``. >= a`` → (a, None); ``. <= b`` → (None, b); (None, None) for anything else."""
    sides = (node.left, node.right) if isinstance(node, _x._Binary) and node.operator == "and" else (node,)
    low = high = None
    for side in sides:
        if not (isinstance(side, _x._Binary) and isinstance(side.left, _x._Current)
                and isinstance(side.right, _x._Literal) and isinstance(side.right.value, (int, float))):
            return None, None
        if side.operator in (">", ">="):
            low = _x.to_string(side.right.value)
        elif side.operator in ("<", "<="):
            high = _x.to_string(side.right.value)
        else:
            return None, None
    return low, high


def bounds_message(question: Question, language: str) -> str:
    """A number question's refusal in words when its constraint is plain bounds and the form gives
    no message ("Xin trả lời một số từ 0 đến 120."); "" otherwise."""
    from surveys.messages import say, ui_language

    if question.constraint is None:
        return ""
    low, high = bounds(question.constraint._root)
    ui = ui_language(language)
    if low is not None and high is not None:
        return say("invalid_between", ui, low=low, high=high)
    if low is not None:
        return say("invalid_at_least", ui, low=low)
    if high is not None:
        return say("invalid_at_most", ui, high=high)
    return ""
