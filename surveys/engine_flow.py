"""The engine's moving and evaluation: walking the form forward and back, relevance and calculations.

A mixin of `surveys.engine._Conversation`; see that module's docstring for the flow rules.
"""

from __future__ import annotations

import math
from typing import Any

from surveys.engine_plan import _MISSING, _UNCACHEABLE, _strict
from surveys.expressions import NOT_APPLICABLE, Environment, ExpressionError, to_string
from surveys.messages import say
from surveys.model import Choice, Question, QuestionType
from surveys.session import Say, Status, Step, Tone, _evolve, session_seed


class _Flow:
    # -- moving ------------------------------------------------------------------------------

    def _advance(self, start: int) -> Step:
        """Walk forward from `start` to the next question to ask (unanswered, or an answer the
        answers as they now stand make invalid), or to the end."""
        self._recalculate()
        forward_from = self.plan.forward_from
        if forward_from is not None:
            start = min(start, forward_from)
        closing: list[int] = []  # positions in self.out of the notes shown since the last question
        for index in range(start, len(self.form.questions)):
            asked = self._visit(index, index, closing)
            if asked is not None:
                return asked
        return self._complete(closing)

    def _visit(self, index: int, ordinal: int, closing: list[int]) -> Step | None:
        """The flow reaches the question at `index` (the `ordinal`-th place of the walk): record what
        it does not ask, show a note, pass an answer still valid, or ask it (the step is returned)."""
        question = self.form.questions[index]
        key = self._key(question)
        if self.plan.condition_ids[index] and not self._relevant_at(index):
            self._set(key, NOT_APPLICABLE)
            return None
        kind = question.type
        if kind is QuestionType.CALCULATE:
            self._set(key, self._calculate(question))
        elif kind in (QuestionType.START, QuestionType.TODAY):
            if self.answers.get(key) in (None, NOT_APPLICABLE):
                started = self.state.started_at or self.event.at
                self._set(key, started if kind is QuestionType.START else started.date())
        elif kind in (QuestionType.EMPTY_METADATA, QuestionType.UNASKABLE):
            self._set(key, None)
        elif kind is QuestionType.END:
            pass  # filled at completion
        elif kind is QuestionType.NOTE:
            if ordinal > self.state.furthest:
                closing.append(len(self.out))
                self.out.append(Say(self._label(question), Tone.NOTE, self._media(question)))
        elif (value := self.answers.get(key, NOT_APPLICABLE)) is not NOT_APPLICABLE \
                and self._still_valid(question, value):
            closing.clear()
        else:
            if value is not NOT_APPLICABLE:  # answered before a change that makes it invalid
                self._set(key, NOT_APPLICABLE)
                self.out.append(Say(say("answer_again", self.ui)))
            self.state = _evolve(self.state, current=key, seq=self.state.seq + 1,
                                 furthest=max(self.state.furthest, ordinal),
                                 draft=self._initial_draft(question))
            self.out.append(self.render())
            return self._finish(self.state)
        return None

    def _complete(self, closing: list[int]) -> Step:
        """Nothing is left to ask: the session is completed, with the form's closing notes as thanks."""
        questions = self.form.questions
        for index in self.plan.ends:
            if self._relevant_at(index):
                self._set(questions[index].name, self.event.at)
        if closing:  # the form's own closing words are the thank-you: one message that also says it is done
            note = self.out[closing[-1]]
            self.out[closing[-1]] = Say(f"{note.text}\n{say('completed', self.ui)}", Tone.THANKS, note.media)
        else:
            self.out.append(Say(say("thanks", self.ui), Tone.THANKS))
        return self._finish(_evolve(self.state, status=Status.COMPLETED, current=None,
                                    furthest=len(questions), completed_at=self.event.at, draft=()))

    def _back(self) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        here = self.form.index(self.state.current)
        for index in range(here - 1, -1, -1):
            question = self.form.questions[index]
            value = self.answers.get(question.name, NOT_APPLICABLE)
            if question.type.is_asked and value is not NOT_APPLICABLE and self._relevant(question):
                self.state = _evolve(self.state, current=question.name, seq=self.state.seq + 1,
                                     draft=value if question.type is QuestionType.SELECT_MULTIPLE and value else ())
                self.out.append(self.render())
                return self._finish(self.state)
        return self._unchanged(Say(say("cannot_go_back", self.ui), Tone.ERROR), self.render(update=True))

    def _recalculate(self) -> None:
        """Bring every reached calculation and relevance up to date with the answers, and every
        calculation something placed before it reads (a relevance may read a later calculation).

        Every step ends with them up to date, so only what reads an answer changed in this step
        (and, in turn, what reads those) is looked at again, in form order, until nothing changes;
        plus calculations never worked out yet and what reads more than answers.
        """
        plan, questions, answers = self.plan, self.form.questions, self.answers
        pending = set(plan.always_recalculated)
        pending.update(index for index in plan.eager_calculations if questions[index].name not in answers)
        eager = plan.eager_calculations
        for name in self.touched:
            pending.update(plan.readers.get(name, ()))
        budget = 4 * len(plan.recalculated) + 4  # a form whose calculations read each other in a circle
        while pending and budget:
            budget -= 1
            index = min(pending)
            pending.discard(index)
            question = questions[index]
            calculation = question.type is QuestionType.CALCULATE
            if question.name not in answers and not (calculation and index in eager):
                continue  # not reached: judged when the flow gets there
            before = self._sets
            if not self._relevant_at(index):
                self._set(question.name, NOT_APPLICABLE)
            elif calculation:
                self._set(question.name, self._calculate(question))
            if self._sets != before:
                pending.update(plan.readers.get(question.name, ()))

    # -- evaluation --------------------------------------------------------------------------

    def _environment(self, current: Any = None, choice: Choice | None = None) -> Environment:
        at = self.event.at
        if current is None and choice is None:
            # The answers dict is shared, so one environment serves until the start time changes.
            key = (self.state.started_at, self.state.seed)
            if self._plain is None or self._plain[0] != key:
                self._plain = (key, Environment(
                    values=self.answers, today=(self.state.started_at or at).date(), now=at,
                    choice_label=self._choice_label, seed=session_seed(self.state),
                    preloads=self.state.preloads))
            return self._plain[1]
        return Environment(
            values=self.answers,
            current=current,
            today=(self.state.started_at or at).date(),
            now=at,
            choice_label=self._choice_label,
            choice_row={"name": choice.name, **choice.columns} if choice else None,
            seed=session_seed(self.state),
            preloads=self.state.preloads,
        )

    def _true(self, expression, current: Any = None, choice: Choice | None = None) -> bool:
        try:
            return expression.evaluate_bool(self._environment(current, choice))
        except ExpressionError:
            # A form can only fail here on missing run-time data (checked at load otherwise);
            # treating it as false keeps the respondent moving instead of stuck.
            return False

    def _required(self, question: Question) -> bool:
        if question.required is None:
            return False
        constant = self.plan.required[self.form.index(question.name)]
        return constant if constant is not None else self._true(question.required)

    def _relevant(self, question: Question) -> bool:
        return self._relevant_at(self.form.index(question.name))

    def _relevant_at(self, index: int) -> bool:
        """Whether every relevance condition of the question at `index` holds (no conditions: yes)."""
        known = self._condition_values
        for condition_id in self.plan.condition_ids[index]:
            value = known.get(condition_id)
            if value is None:
                value = known[condition_id] = self._condition(condition_id)
            if not value:
                return False
        return True

    def _condition(self, condition_id: int) -> bool:
        plan = self.plan
        reads = plan.condition_reads[condition_id]
        key = self._memo_key(condition_id, reads) if reads is not None else None
        if key is None:
            return self._true(plan.conditions[condition_id])
        value = plan.memo.get(key, _MISSING)
        if value is _MISSING:
            value = self._true(plan.conditions[condition_id])
            plan.remember(key, value)
        return value

    def _memo_key(self, owner: Any, reads: tuple[str, ...]) -> tuple | None:
        """`owner` and the exact values of the answers `reads` names; None if one can't be keyed."""
        answers = self.answers
        key: list[Any] = [owner]
        for name in reads:
            value = answers.get(name)
            if value is not None and value.__class__ is not str:
                value = _strict(value)
                if value is _UNCACHEABLE:
                    return None
            key.append(value)
        return tuple(key)

    def _calculate(self, question: Question) -> Any:
        plan = self.plan
        index = self.form.index(question.name)
        reads = plan.calculation_reads[index]
        # Calculations are keyed apart from conditions (ids from 0 up) by negative owners.
        key = self._memo_key(-1 - index, reads) if reads is not None else None
        if key is None:
            return self._evaluate_calculation(question)
        value = plan.memo.get(key, _MISSING)
        if value is _MISSING:
            value = self._evaluate_calculation(question)
            plan.remember(key, value)
        return value

    def _evaluate_calculation(self, question: Question) -> Any:
        try:
            # The value already stored is `.` to the calculation: once() keeps it.
            value = question.calculation.evaluate(self._environment(current=self.answers.get(self._key(question))))
        except ExpressionError:
            return None
        if isinstance(value, bool):
            return to_string(value)
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    def _visible_choices(self, question: Question) -> list[Choice]:
        """The choices shown now, in the order shown (`randomize`: `_shown_order`)."""
        if question.choice_filter is None:
            choices = list(question.choices)
        else:
            choices = [c for c in question.choices if self._true(question.choice_filter, choice=c)]
        return self._shown_order(question, choices) if question.randomize else choices

    def _is_visible(self, question: Question, choice: Choice) -> bool:
        """Whether `choice`, one of the question's own, is shown now."""
        return question.choice_filter is None or choice in self._visible_choices(question)

    def _choice_by_key(self, question: Question, key: str) -> Choice | None:
        return self.plan.choice_keys[self.form.index(question.name)].get(key)

    def _initial_draft(self, question: Question) -> tuple[str, ...]:
        if question.type is not QuestionType.SELECT_MULTIPLE or not question.default:
            return ()
        names = {c.name for c in question.choices}
        return tuple(n for n in question.default.split() if n in names)
