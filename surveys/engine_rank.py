"""The engine's ranking and shuffled choice lists: a mixin of `surveys.engine._Conversation`.

A `rank` question is asked as successive choices, one rule for every channel: "your choice
number 1?" among every choice, then number 2 among those left, and so on; the last one left
takes the last rank by itself. The picks so far are the session's `draft` (in rank order); each
pick is a new prompt (a new sequence number, so a button pressed on an earlier one is stale),
and *back* takes back the last pick before it leaves the question. Typed, the numbers are those
shown beside the choices, which keep their first numbers as choices are taken, so the whole
order can be typed at once ("3 1 2"). The answer is ODK's: the choice names in rank order (a
tuple here, space-separated in exports). An optional rank may stop early ("skip" or Done): the
ranks picked so far are its answer (none: left empty).

A `randomize`d list (`surveys.choice_order`) is shown in its shuffled order wherever choices are
shown, numbered in that order; answers are choice names as always. `or_other`'s "other" stays last.
"""

from __future__ import annotations

from typing import Any

from surveys.choice_order import seed_value, session_draw, shuffled
from surveys.expressions import NOT_APPLICABLE, ExpressionError
from surveys.messages import say
from surveys.model import Choice, Question
from surveys.session import Choose, Done, Event, InvalidAnswer, Option, Reply, Say, Status, Step, Tone, _evolve, \
    session_seed

#: The choice name pyxform gives `or_other`'s choice.
_OTHER = "other"


class _Ranking:
    # -- shuffled lists ----------------------------------------------------------------------

    def _shown_order(self, question: Question, choices: list[Choice]) -> list[Choice]:
        """`choices` in the order the question shows them (shuffled when it is `randomize`d)."""
        if not question.randomize or len(choices) < 2:
            return choices
        seed = None
        if question.randomize_seed is not None:
            try:
                seed = seed_value(question.randomize_seed.evaluate(self._environment()))
            except ExpressionError:
                seed = None  # a seed not known yet: the session's own draw, as if none were given
        if seed is None:
            seed = session_draw(session_seed(self.state), self._key(question))
        last = [c for c in choices if c.name == _OTHER] if "or_other" in question.source_type else []
        return shuffled([c for c in choices if c not in last], seed) + last

    # -- ranking -----------------------------------------------------------------------------

    def _rank(self, question: Question, event: Event) -> Step:
        shown = self._visible_choices(question)
        ranked = list(self.state.draft)
        try:
            if isinstance(event, Done) or (isinstance(event, Reply) and not event.text.strip()):
                return self._rank_stop(question, ranked)
            if isinstance(event, Choose):
                choice = self._choice_by_key(question, event.key)
                if choice is None or choice not in shown:
                    raise InvalidAnswer(say("unknown_choice", self.ui, text=event.key))
                if choice.name in ranked:  # a double tap, or a press repeated by the platform
                    return self._unchanged(Say(say("rank_already", self.ui, text=self._rank_label(choice)),
                                               Tone.STALE))
                picks = [choice]
            elif isinstance(event, Reply):
                picks = self._rank_typed(shown, ranked, event.text.strip())
            else:
                raise InvalidAnswer(say("invalid", self.ui))
        except InvalidAnswer as problem:
            return self._unchanged(Say(problem.message, Tone.ERROR), self.render(update=True))
        ranked += [c.name for c in picks]
        left = [c.name for c in shown if c.name not in ranked]
        if len(left) <= 1:  # the last one left takes the last rank
            return self._rank_answer(question, tuple(ranked + left))
        self.state = _evolve(self.state, draft=tuple(ranked), seq=self.state.seq + 1)
        self.out.append(self.render())
        return self._finish(self.state)

    def _rank_typed(self, shown: list[Choice], ranked: list[str], text: str) -> list[Choice]:
        """The next pick, or several in order ("3 1 2", "2, 1"): numbers as shown, or labels."""
        whole = self._match_choice(shown, text)
        picks = [whole] if whole is not None else self._match_choices(shown, text)
        for choice in picks:
            if choice.name in ranked:
                raise InvalidAnswer(say("rank_already", self.ui, text=self._rank_label(choice)))
        if len({c.name for c in picks}) != len(picks):
            raise InvalidAnswer(say("rank_twice", self.ui, example=self._rank_example(shown, ranked)))
        return picks

    def _rank_stop(self, question: Question, ranked: list[str]) -> Step:
        """Done or "skip": the ranks picked so far (an optional question), else the answer kept
        from before, else the default, else none."""
        if ranked:
            if self._required(question):
                raise InvalidAnswer(say("rank_all", self.ui))
            return self._rank_answer(question, tuple(ranked))
        kept = self.answers.get(self._key(question))
        if kept is not None and kept is not NOT_APPLICABLE:  # came back and kept the answer
            return self._rank_answer(question, self._only_visible(question, kept) or None)
        return self._rank_answer(question, self._default(question))

    def _rank_answer(self, question: Question, value: Any) -> Step:
        try:
            self._validate(question, value)
        except InvalidAnswer as problem:
            return self._unchanged(Say(problem.message, Tone.ERROR), self.render(update=True))
        return self._accept(question, value)

    def _rank_undo(self) -> Step:
        """Back on a rank question with picks: take back the last one."""
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        ranked = self.state.draft
        question = self._current_question()
        choice = question.choice_by_name(ranked[-1])
        label = self._rank_label(choice) if choice else ranked[-1]
        self.out.append(Say(say("rank_undone", self.ui, n=len(ranked), label=label)))
        self.state = _evolve(self.state, draft=ranked[:-1], seq=self.state.seq + 1)
        self.out.append(self.render())
        return self._finish(self.state)

    # -- rendering ---------------------------------------------------------------------------

    def _rank_options(self, question: Question) -> tuple[Option, ...]:
        """The choices not ranked yet, each with its number in the whole list as shown."""
        ranked = set(self.state.draft)
        return tuple(Option(c.key, number, c.name, self._rank_label(c))
                     for number, c in enumerate(self._visible_choices(question), start=1) if c.name not in ranked)

    def _rank_expected(self) -> str:
        ranked = self.state.draft
        question = self._current_question()
        asking = say("rank_next", self.ui, n=len(ranked) + 1)
        if not ranked:
            return asking
        labels = [self._choice_label(question.name, name) for name in ranked]
        so_far = say("rank_so_far", self.ui, ranking=", ".join(f"{n}. {label}" for n, label in enumerate(labels, 1)))
        return f"{so_far}; {asking}"

    def _rank_label(self, choice: Choice) -> str:
        return choice.label.get(self.lang, self.form.default_language)

    def _rank_example(self, shown: list[Choice], ranked: list[str]) -> str:
        numbers = [n for n, c in enumerate(shown, start=1) if c.name not in ranked]
        return " ".join(str(n) for n in numbers[-1:] + numbers[:-1])
