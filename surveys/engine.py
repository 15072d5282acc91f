"""The conversation engine: questionnaire + session state + event → new state + what to say.

Sans-I/O on purpose (see h11, goflow): no chat platform, database or clock in here. Every event
carries its own time, so replaying an event log reproduces a session exactly, and channels
(Telegram, Zalo, the console) stay thin translators.

Flow rules, decided once here for every channel:
- A consent screen comes before the first question; declining is a refusal.
- Questions are asked one at a time in form order. Non-relevant questions are recorded as
  NOT_APPLICABLE; calculations are recomputed after every answer.
- Calculations are kept up to date with the answers; one that a relevance placed before it
  reads is worked out before the flow reaches it, so that relevance sees its value.
- Going back re-asks the previous answered question with its current answer shown. After an
  answer, every later answer is checked again against the answers as they now stand: one that
  no longer applies becomes NOT_APPLICABLE, and one that no longer satisfies its constraint,
  its choice filter or `required` is dropped (set to NOT_APPLICABLE, so storage records the
  change and keeps the old value in its history) and asked again with a word saying why. The
  flow continues at the first question still unanswered or dropped.
- A form's closing notes (notes after the last question asked) are the thank-you: the last of
  them is said with a line saying the survey is completed, and the software's own thanks only
  when a form has none, so completion says thank you once.
- Every question prompt carries a sequence number; an event naming an older number changes
  nothing (stale buttons, double taps).
- Repeat groups (instances, "add another?", answers per instance) are walked by
  `surveys.engine_repeats`, used only for forms that have them.

Progress (`Ask.progress`) is the share of the way through the form: the asked questions that
come before the one on screen, in form order, over all the form's asked questions, whether they
apply or not (a question skipped by relevance counts as passed). It depends on the position
alone, so it never goes back on a forward answer (the next question is always further on) and
never jumps back when answers make more questions apply; it shows no total that could grow, and
stays below 100% while a question is on screen. Going back shows the earlier position's share.
(Exception: a form whose relevance reads a question asked *later* may send the flow back to an
earlier question once that later answer makes it apply.) The bundled reminder texts say how many
questions were answered, without a total over the form, so they never contradict this share.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from surveys.engine_answers import _Answering, _yes_no, fold
from surveys.engine_flow import _Flow
from surveys.engine_plan import _Plan, _plan
from surveys.engine_rank import _Ranking
from surveys.engine_repeats import _RepeatFlow
from surveys.engine_render import _Rendering
from surveys.expressions import NOT_APPLICABLE, Environment
from surveys.messages import UI_LANGUAGES, consent_words, say, ui_language
from surveys.model import Question, Questionnaire, QuestionType
from surveys.session import (  # the engine's public types, re-exported (see __all__)
    CONSENT,
    Ask,
    Attach,
    Back,
    Choose,
    Done,
    Event,
    InvalidAnswer,
    Locate,
    Option,
    Output,
    PromptKind,
    Reply,
    Resume,
    Say,
    SessionState,
    SetLanguage,
    Start,
    Status,
    Step,
    Stop,
    Toggle,
    Tone,
    _evolve,
    _same,
    new_session,
)


__all__ = [
    "CONSENT", "NOT_APPLICABLE", "Ask", "Attach", "Back", "Choose", "Done", "Event", "InvalidAnswer", "Locate", "Option", "Output",
    "PromptKind", "Reply", "Resume", "Say", "SessionState", "SetLanguage", "Start", "Status", "Step", "Stop",
    "Toggle", "Tone", "current_prompt", "fold", "new_session", "step", "_Plan", "_plan",
]

# -- the engine ------------------------------------------------------------------------------


def step(form: Questionnaire, state: SessionState, event: Event) -> Step:
    """Apply one event. Never raises for anything a respondent can send."""
    return _conversation(form, state, event).run()


def current_prompt(form: Questionnaire, state: SessionState) -> Ask | None:
    """The prompt on screen, rendered again (for channels that need its options)."""
    if state.current is None:
        return None
    return _conversation(form, state, Resume(at=state.started_at or dt.datetime.min)).render(update=True)


def _conversation(form: Questionnaire, state: SessionState, event: Event) -> "_Conversation":
    return _RepeatConversation(form, state, event) if form.has_repeats else _Conversation(form, state, event)


class _Conversation(_Answering, _Flow, _Rendering, _Ranking):
    def __init__(self, form: Questionnaire, state: SessionState, event: Event):
        self.form = form
        self.plan = _plan(form)
        self.original = state
        self.state = state
        self.event = event
        self.answers: dict[str, Any] = dict(state.answers)
        #: Names `_set` changed at least once (a superset of the step's changes).
        self.touched: set[str] = set()
        self.out: list[Output] = []
        # Value of each relevance condition (by plan id) under the current answers; a changed
        # answer forgets only the conditions that read it. Progress and section headings ask
        # the relevance of every question for every prompt.
        self._condition_values: dict[int, bool] = {}
        self._plain: tuple[tuple, Environment] | None = None
        #: How many times `_set` changed a value: `_recalculate` repeats until a pass changes none.
        self._sets = 0

    def _set(self, name: str, value: Any) -> None:
        answers = self.answers
        if name not in answers or not _same(answers[name], value):
            answers[name] = value
            self._sets += 1
            self.touched.add(name)
            dependents = self.plan.dependents.get(name)
            if dependents:
                known = self._condition_values
                for condition_id in dependents:
                    known.pop(condition_id, None)

    def _key(self, question: Question) -> str:
        """The key of the question's answer (its name; per instance in a form with repeats)."""
        return question.name

    def _current_question(self) -> Question:
        return self.form.question(self.state.current)

    @property
    def lang(self) -> str:
        return self.state.language

    @property
    def ui(self) -> str:
        return ui_language(self.state.language)

    # -- dispatch ----------------------------------------------------------------------------

    def run(self) -> Step:
        event = self.event
        seq = getattr(event, "seq", None)
        if seq is not None and seq != self.state.seq:
            return self._unchanged(Say(say("stale", self.ui), Tone.STALE))
        if isinstance(event, SetLanguage):
            return self._set_language(event.language)
        if isinstance(event, Stop):
            return self._stop(event.refuse)
        status = self.state.status
        if isinstance(event, (Start, Resume)):
            return self._start_or_resume(isinstance(event, Resume))
        if status is Status.NEW:
            return self._unchanged(Say(say("not_started", self.ui)))
        if status is Status.COMPLETED:
            return self._unchanged(Say(say("already_completed", self.ui)))
        if status is Status.REFUSED:
            return self._unchanged(Say(say("refused_state", self.ui)))
        if status is Status.CONSENT or self.state.current == CONSENT:
            return self._consent(event)
        if isinstance(event, Back):
            if self.state.draft and self._current_question().type is QuestionType.RANK:
                return self._rank_undo()  # back takes back the last pick first
            return self._back()
        return self._answer(event)

    def _unchanged(self, *messages: Output) -> Step:
        return Step(self.original, tuple(messages), {}, accepted=False)

    def _finish(self, state: SessionState) -> Step:
        before, touched = self.original.answers, self.touched
        changes = {name: value for name, value in self.answers.items()
                   if name in touched and (name not in before or not _same(before[name], value))} if touched else {}
        return Step(_evolve(state, answers=self.answers), tuple(self.out), changes)

    # -- lifecycle ---------------------------------------------------------------------------

    def _start_or_resume(self, resuming: bool) -> Step:
        status = self.state.status
        if status is Status.COMPLETED:
            return self._unchanged(Say(say("already_completed", self.ui)))
        if status is Status.NEW or self.state.current == CONSENT or self.state.started_at is None:
            return self._ask_consent()
        if resuming or status in (Status.PAUSED, Status.REFUSED):
            self.out.append(Say(say("resumed", self.ui)))
        state = _evolve(self.state, status=Status.ACTIVE, seq=self.state.seq + 1)
        self.state = state
        self.out.append(self.render())
        return self._finish(state)

    def _ask_consent(self) -> Step:
        seed = getattr(self.event, "seed", None)
        if seed and not self.state.seed and self.state.started_at is None:
            # Only before any value was drawn (random() needs a start): a later Start keeps them.
            self.state = _evolve(self.state, seed=str(seed))
        self.state = _evolve(self.state, status=Status.CONSENT, current=CONSENT, seq=self.state.seq + 1)
        self.out.append(self.render())
        return self._finish(self.state)

    def _consent(self, event: Event) -> Step:
        if isinstance(event, Choose):
            answer = event.key
        elif isinstance(event, Reply):
            answer = _yes_no(event.text)
        else:
            answer = None
        if answer == "no":
            self.out.append(Say(say("declined", self.ui), Tone.THANKS))
            return self._finish(_evolve(self.state, status=Status.REFUSED, current=None))
        if answer != "yes":
            unclear = Say(say("consent_unclear", self.ui, **consent_words(self.ui)), Tone.ERROR)
            return self._unchanged(unclear, self.render(update=True))
        self.state = _evolve(self.state, status=Status.ACTIVE, started_at=self.event.at)
        return self._advance(0)

    def _stop(self, refuse: bool) -> Step:
        if self.state.status is Status.REFUSED:
            # Already declined: stopping changes nothing (and must not turn it into a pause).
            return self._unchanged(Say(say("refused_state", self.ui)))
        if self.state.status in (Status.COMPLETED, Status.NEW):
            return self._unchanged(Say(say("already_completed" if self.state.status is Status.COMPLETED
                                           else "not_started", self.ui)))
        if refuse:
            self.out.append(Say(say("declined", self.ui), Tone.THANKS))
            return self._finish(_evolve(self.state, status=Status.REFUSED))
        self.out.append(Say(say("paused", self.ui)))
        return self._finish(_evolve(self.state, status=Status.PAUSED))

    def _set_language(self, language: str) -> Step:
        available = tuple(dict.fromkeys(self.form.language_codes + UI_LANGUAGES))
        if language not in available:
            # `language` is say()'s own parameter name: format the placeholders here.
            text = say("unknown_language", self.ui).format(language=language, languages=", ".join(available))
            return self._unchanged(Say(text, Tone.ERROR))
        self.state = _evolve(self.state, language=language)
        self.out.append(Say(say("language_set", self.ui)))
        if self.state.current is not None and self.state.status in (Status.ACTIVE, Status.CONSENT):
            self.state = _evolve(self.state, seq=self.state.seq + 1)
            self.out.append(self.render())
        return self._finish(self.state)


class _RepeatConversation(_RepeatFlow, _Conversation):
    """A conversation over a form with repeats (`surveys.engine_repeats`)."""

    def __init__(self, form: Questionnaire, state: SessionState, event: Event):
        super().__init__(form, state, event)
        self._init_repeats()
