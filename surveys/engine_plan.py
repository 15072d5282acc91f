"""What the engine looks up at every step, worked out once per questionnaire (`_Plan`).

Everything here follows from the form alone; it is kept with the form
(`Questionnaire.derived`), so every session of that form shares it and nothing else does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from surveys.expressions import NOT_APPLICABLE, Environment, Expression, ExpressionError
from surveys.messages import say
from surveys.model import Choice, Question, QuestionType, Questionnaire
from surveys.session import Option, PromptKind


class _Plan:
    """What the engine looks up at every step, worked out once per questionnaire.

    Kept with the form (`Questionnaire.derived`), so it is shared by every session of that
    form and by nothing else. Everything in it follows from the form alone.
    """

    def __init__(self, form: Questionnaire):
        questions = form.questions
        #: Distinct relevance conditions (one per source text: the same text in the same
        #: environment has the same value), and for each question the ids of those that apply.
        self.conditions: list[Expression] = []
        ids: dict[str, int] = {}
        by_question: list[tuple[int, ...]] = []
        for question in questions:
            found = []
            for condition in form.conditions(question):
                if condition.source not in ids:
                    ids[condition.source] = len(self.conditions)
                    self.conditions.append(condition)
                found.append(ids[condition.source])
            by_question.append(tuple(found))
        self.condition_ids: tuple[tuple[int, ...], ...] = tuple(by_question)
        #: Answer name → ids of the conditions that read it: all a changed answer can affect.
        dependents: dict[str, list[int]] = {}
        for condition_id, condition in enumerate(self.conditions):
            for name in condition.references:
                dependents.setdefault(name, []).append(condition_id)
        self.dependents: dict[str, tuple[int, ...]] = {name: tuple(ids_) for name, ids_ in dependents.items()}
        #: Questions whose stored value may change when answers do, in form order: those with
        #: relevance conditions and calculations (every other question is always relevant).
        self.recalculated: tuple[int, ...] = tuple(
            index for index, question in enumerate(questions)
            if by_question[index] or question.type is QuestionType.CALCULATE)
        positions = {question.name: index for index, question in enumerate(questions)}
        #: The first asked question whose relevance reads a question asked after it: the flow
        #: must look back from there, as that later answer may make it apply (None: no such).
        self.forward_from: int | None = next(
            (index for index, question in enumerate(questions) if question.type.is_asked and any(
                positions.get(name, -1) > index and questions[positions[name]].type.is_asked
                for condition_id in by_question[index] for name in self.conditions[condition_id].references)),
            None)
        self.ends: tuple[int, ...] = tuple(
            index for index, question in enumerate(questions) if question.type is QuestionType.END)
        # Progress is the share of the asked questions that come before a question in form order
        # (see `_Conversation._progress`): it depends on the position alone.
        before, count = [], 0
        for question in questions:
            before.append(count)
            if question.type.is_asked:
                count += 1
        #: For each question index, the number of asked questions before it; and in all.
        self.asked_before: tuple[int, ...] = tuple(before)
        self.asked_total = count
        self._progress_texts: dict[tuple[int, str], str] = {}
        #: Choice key → choice, per question index (`Question.choice_by_key` without the scan).
        self.choice_keys: tuple[dict[str, Choice], ...] = tuple(
            {key: choice for key, choice in reversed([(c.key, c) for c in question.choices])}
            for question in questions)
        self._views: dict[tuple[int, str], _View] = {}
        #: For each condition id, and each question index with a calculation: the names of the
        #: answers it reads, sorted, when its value depends on nothing else (`answers_only`).
        self.condition_reads: tuple[tuple[str, ...] | None, ...] = tuple(
            _reads(condition) for condition in self.conditions)
        self.calculation_reads: tuple[tuple[str, ...] | None, ...] = tuple(
            _reads(question.calculation) if question.type is QuestionType.CALCULATE else None
            for question in questions)
        #: What `_Conversation._recalculate` looks at: for each answer name, the questions (of
        #: `recalculated`) whose relevance or calculation reads it; and those whose value may
        #: depend on more than the answers, looked at every time.
        readers: dict[str, set[int]] = {}
        always: list[int] = []
        for index in self.recalculated:
            reads = [self.condition_reads[condition_id] for condition_id in by_question[index]]
            if questions[index].type is QuestionType.CALCULATE:
                reads.append(self.calculation_reads[index])
            if any(names is None for names in reads):
                always.append(index)
            for names in reads:
                for name in names or ():
                    readers.setdefault(name, set()).add(index)
        self.readers: dict[str, tuple[int, ...]] = {name: tuple(sorted(ids)) for name, ids in readers.items()}
        self.always_recalculated: tuple[int, ...] = tuple(always)
        #: Calculations kept up to date before the flow reaches them: those a relevance or a
        #: calculation placed before them reads (and what those read). The others are worked out
        #: when reached, as nothing before them needs their value (a form's scores at its end).
        calculations = {index for index in self.recalculated if questions[index].type is QuestionType.CALCULATE}
        eager = {index for name, ids in readers.items() if positions.get(name) in calculations
                 for index in [positions[name]] if any(reader < index for reader in ids)}
        while True:
            more = {positions[name] for index in eager for name in (self.calculation_reads[index] or ())
                    if positions.get(name) in calculations} - eager
            if not more:
                break
            eager |= more
        self.eager_calculations: tuple[int, ...] = tuple(sorted(eager))
        #: Results of those conditions and calculations by the exact answers they read (see
        #: `_Conversation._memo_key`), shared by the sessions of this form. Most steps ask the
        #: same questions of unchanged answers again: relevance for progress, calculations after
        #: every answer. Bounded: emptied when full (it only saves work).
        self.memo: dict[tuple, Any] = {}
        #: `required` of each question when it reads nothing (`yes` is true()): its value, else None.
        self.required: tuple[bool | None, ...] = tuple(
            _constant_truth(question.required) for question in questions)

    def remember(self, key: tuple, value: Any) -> None:
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = value

    def progress(self, index: int, ui: str) -> str:
        """The progress shown with the question at `index`, in the interface language `ui`."""
        key = (index, ui)
        text = self._progress_texts.get(key)
        if text is None:
            share = self.asked_before[index] * 100 // max(self.asked_total, 1)  # < 100 while one is left
            filled = share // 10
            text = self._progress_texts[key] = say(
                "progress", ui, percent=share, bar="▓" * filled + "░" * (_PROGRESS_CELLS - filled))
        return text

    def view(self, form: Questionnaire, index: int, language: str) -> "_View":
        """The texts of the question at `index` in `language`, looked up once."""
        key = (index, language)
        view = self._views.get(key)
        if view is None:
            if len(self._views) > 100_000:  # only languages a form or the UI has: never in practice
                self._views.clear()
            view = self._views[key] = _View(form, form.questions[index], language)
        return view


_PROMPT_KINDS = {kind.value: kind for kind in PromptKind}
_MEMO_LIMIT = 20_000
_PROGRESS_CELLS = 10
_MISSING = object()
_UNCACHEABLE = object()


def _constant_truth(expression: Expression | None) -> bool | None:
    """The truth of an expression that reads nothing at all, as `_Conversation._true` finds it."""
    if expression is None or not expression.answers_only or expression.references:
        return None
    try:
        return expression.evaluate_bool(Environment())
    except ExpressionError:
        return False


def _reads(expression: Expression | None) -> tuple[str, ...] | None:
    if expression is None or not expression.answers_only:
        return None
    return tuple(sorted(expression.references))


def _strict(value: Any) -> Any:
    """A key for a non-str answer that is equal only for answers no expression can tell apart.

    `==` is not enough: 1 == 1.0 == True, 0.0 == -0.0, and aware datetimes at the same instant
    are equal whatever their offsets, yet each reads differently. Answers of unusual types
    are not remembered at all (_UNCACHEABLE).
    """
    kind = value.__class__
    if value is None or value is NOT_APPLICABLE:
        return value
    if kind is int or kind is bool or kind is dt.date:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))
    if kind is tuple:  # select_multiple: choice names
        for item in value:
            if item.__class__ is not str:
                return _UNCACHEABLE
        return (kind, value)
    if kind is dt.datetime and (value.tzinfo is None or value.tzinfo.__class__ is dt.timezone):
        return (kind, repr(value))
    return _UNCACHEABLE


class _View:
    """A question's texts in one language, as render() shows them (immutable once built)."""

    __slots__ = ("label", "hint", "kind", "options")

    def __init__(self, form: Questionnaire, question: Question, language: str):
        self.label = question.label.get(language, form.default_language)
        self.hint = question.hint.get(language, form.default_language)
        self.kind: PromptKind | None = _PROMPT_KINDS.get(question.type.value)
        #: Every choice as an unselected Option, when no choice filter can hide some (nor a
        #: shuffle or ranking reorder them).
        self.options: tuple[Option, ...] | None = tuple(
            Option(c.key, number, c.name, c.label.get(language, form.default_language), False)
            for number, c in enumerate(question.choices, start=1)
        ) if (question.type.is_select and question.choice_filter is None and not question.randomize
              and question.type is not QuestionType.RANK) else None


def _plan(form: Questionnaire) -> _Plan:
    return form.derived(_Plan, _Plan)

