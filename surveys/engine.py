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

import calendar
import datetime as dt
import enum
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from surveys.expected import example_candidates, missing_day, shown_example, typed_date
from surveys.expressions import NOT_APPLICABLE, Environment, Expression, ExpressionError, interpolate, to_string
from surveys.messages import UI_LANGUAGES, consent_words, say, ui_language
from surveys.model import Choice, Question, QuestionType, Questionnaire

CONSENT = "__consent__"  # the `question` of the consent prompt


class Status(enum.StrEnum):
    NEW = "new"
    CONSENT = "consent"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    REFUSED = "refused"


@dataclass(frozen=True)
class SessionState:
    form_id: str
    form_version: str
    language: str
    status: Status = Status.NEW
    #: Name of the question on screen (CONSENT on the consent screen), None when none is.
    current: str | None = None
    #: Sequence number of the prompt on screen.
    seq: int = 0
    #: Question name → value. Absent: not reached. None: left empty. NOT_APPLICABLE: skipped by relevance.
    answers: Mapping[str, Any] = field(default_factory=dict)
    #: Marks of a multi-select not yet submitted with Done.
    draft: tuple[str, ...] = ()
    #: Index of the furthest question reached, so notes are not shown twice after a back step.
    furthest: int = -1
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    at: dt.datetime


@dataclass(frozen=True)
class Reply:
    """Typed text for the prompt on screen (seq None: whatever is current)."""

    text: str
    at: dt.datetime
    seq: int | None = None


@dataclass(frozen=True)
class Choose:
    """A button pressed: a choice key, `yes`/`no` on the consent screen, `ok` for acknowledge."""

    key: str
    seq: int
    at: dt.datetime


@dataclass(frozen=True)
class Toggle:
    key: str
    seq: int
    at: dt.datetime
    #: The mark the press asks for (True ticked, False not); None flips it. A button that names
    #: its target makes a double tap, or a press repeated over a weak connection, change nothing.
    on: bool | None = None


@dataclass(frozen=True)
class Done:
    seq: int
    at: dt.datetime


@dataclass(frozen=True)
class Back:
    at: dt.datetime
    seq: int | None = None


@dataclass(frozen=True)
class SetLanguage:
    language: str
    at: dt.datetime


@dataclass(frozen=True)
class Stop:
    """Stop for now (PAUSED), or with refuse=True decline to go on (REFUSED).

    `seq`: the prompt a confirmation button was shown over; once the person answered on, the
    button is stale like any other (None: a typed command, always current)."""

    at: dt.datetime
    refuse: bool = False
    seq: int | None = None


@dataclass(frozen=True)
class Resume:
    at: dt.datetime


Event = Union[Start, Reply, Choose, Toggle, Done, Back, SetLanguage, Stop, Resume]

# -- what to say -----------------------------------------------------------------------------


class Tone(enum.StrEnum):
    NOTE = "note"  # a form's note
    INFO = "info"
    ERROR = "error"  # the answer was not accepted
    STALE = "stale"  # the event was for a prompt no longer on screen
    THANKS = "thanks"


class PromptKind(enum.StrEnum):
    CONSENT = "consent"
    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    ACKNOWLEDGE = "acknowledge"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    TEXT = "text"


@dataclass(frozen=True)
class Option:
    key: str  # stable short id, for button data
    number: int  # position as shown, for typed replies
    name: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class Say:
    text: str
    tone: Tone = Tone.INFO


@dataclass(frozen=True)
class Ask:
    seq: int
    kind: PromptKind
    question: str
    text: str
    hint: str = ""
    options: tuple[Option, ...] = ()
    progress: str = ""
    #: Group labels to show as a heading: set when this question opens a new section.
    section: str = ""
    required: bool = False
    can_go_back: bool = False
    #: The answer already given, shown when the respondent came back to change it.
    current_answer: str = ""
    #: True when this re-renders the prompt already on screen (same seq): edit it in place.
    update: bool = False
    #: What a valid answer looks like, shown with the question where the type needs it (a date's
    #: format with an example that satisfies the question's constraint); "" otherwise.
    expected: str = ""


Output = Union[Say, Ask]


@dataclass(frozen=True)
class Step:
    state: SessionState
    say: tuple[Output, ...]
    #: Question name → new value, for every answer this step changed.
    changes: Mapping[str, Any] = field(default_factory=dict)
    #: False when the event changed nothing (stale, invalid, or not applicable now).
    accepted: bool = True


def new_session(form: Questionnaire, language: str | None = None) -> SessionState:
    return SessionState(form.form_id, form.version, language or form.default_language)


class InvalidAnswer(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- the engine ------------------------------------------------------------------------------


def step(form: Questionnaire, state: SessionState, event: Event) -> Step:
    """Apply one event. Never raises for anything a respondent can send."""
    return _Conversation(form, state, event).run()


def current_prompt(form: Questionnaire, state: SessionState) -> Ask | None:
    """The prompt on screen, rendered again (for channels that need its options)."""
    if state.current is None:
        return None
    return _Conversation(form, state, Resume(at=state.started_at or dt.datetime.min)).render(update=True)


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
        #: Every choice as an unselected Option, when no choice filter can hide some.
        self.options: tuple[Option, ...] | None = tuple(
            Option(c.key, number, c.name, c.label.get(language, form.default_language), False)
            for number, c in enumerate(question.choices, start=1)
        ) if question.type.is_select and question.choice_filter is None else None


def _plan(form: Questionnaire) -> _Plan:
    return form.derived(_Plan, _Plan)


class _Conversation:
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
        self._plain: tuple[dt.datetime | None, Environment] | None = None
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

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, event: Event) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        question = self.form.question(self.state.current)
        try:
            if isinstance(event, Toggle):
                return self._toggle(question, event.key, event.on)
            value = self._value_from(question, event)
            self._validate(question, value)
        except InvalidAnswer as problem:
            return self._unchanged(Say(self._explain(question, event, problem.message), Tone.ERROR),
                                   self.render(update=True))
        self._set(question.name, value)
        self.state = _evolve(self.state, draft=())
        return self._advance(self.form.index(question.name) + 1)

    def _explain(self, question: Question, event: Event, message: str) -> str:
        """An error as the respondent reads it: what was wrong, then an example that fits."""
        if question.type is QuestionType.DATE and isinstance(event, Reply):
            missing = missing_day(event.text)
            if missing is not None:
                day, month, year = missing
                message = say("no_such_day", self.ui, day=day, month=month, year=year,
                              month_name=calendar.month_name[month])
        example = self._example(question)
        return f"{message} {say('for_example', self.ui, example=example)}" if example else message

    def _toggle(self, question: Question, key: str, on: bool | None) -> Step:
        if question.type is not QuestionType.SELECT_MULTIPLE:
            return self._unchanged(Say(say("one_choice_only", self.ui), Tone.ERROR))
        choice = self._choice_by_key(question, key)
        if choice is None or not self._is_visible(question, choice):
            return self._unchanged(Say(say("unknown_choice", self.ui, text=key), Tone.ERROR))
        if on is not None and on == (choice.name in self.state.draft):
            return self._unchanged(Say(say("already_ticked" if on else "already_unticked", self.ui), Tone.STALE))
        marks = list(self.state.draft)
        marks.remove(choice.name) if choice.name in marks else marks.append(choice.name)
        order = [c.name for c in question.choices]
        self.state = _evolve(self.state, draft=tuple(sorted(marks, key=order.index)))
        self.out.append(self.render(update=True))
        return self._finish(self.state)

    def _value_from(self, question: Question, event: Event) -> Any:
        kind = question.type
        if isinstance(event, Done):
            if kind is not QuestionType.SELECT_MULTIPLE:
                raise InvalidAnswer(say("invalid", self.ui))
            return self._only_visible(question, self.state.draft) or None
        if isinstance(event, Choose):
            if kind is QuestionType.ACKNOWLEDGE and event.key == "ok":
                return "OK"
            choice = self._choice_by_key(question, event.key) if kind.is_select else None
            if choice is None or not self._is_visible(question, choice):
                raise InvalidAnswer(say("unknown_choice", self.ui, text=event.key))
            return (choice.name,) if kind is QuestionType.SELECT_MULTIPLE else choice.name
        text = event.text.strip()
        if text == "":
            if question.name in self.answers and self.answers[question.name] not in (None, NOT_APPLICABLE):
                kept = self.answers[question.name]  # came back and kept the answer
                return (self._only_visible(question, kept) or None) if kind.is_select else kept
            if kind is QuestionType.SELECT_MULTIPLE and self.state.draft:
                return self._only_visible(question, self.state.draft) or None
            default = self._default(question)
            if default is not None and not self._required(question) and not self._still_valid(question, default):
                return None  # "Skip" on an optional question whose constraint refuses its default: as
                # clearing the default in ODK Collect, it is left empty (else nothing could skip it)
            return default
        return self._parse(question, text)

    def _only_visible(self, question: Question, value: Any) -> Any:
        """Drop choices the choice filter now hides (a default, or an answer from before a change)."""
        visible = {c.name for c in self._visible_choices(question)}
        if isinstance(value, tuple):
            return tuple(name for name in value if name in visible)
        return value if value in visible else None

    def _default(self, question: Question) -> Any:
        if question.default is None:
            return None
        if question.type.is_select:
            # A default names choices (XLSForm), while a typed number is a position on screen.
            names = [c.name for c in self._visible_choices(question)]
            picked = tuple(n for n in question.default.split() if n in names)
            if question.type is QuestionType.SELECT_MULTIPLE:
                return picked or None
            return picked[0] if picked else None
        try:
            return self._parse(question, question.default)
        except InvalidAnswer:
            return None

    def _parse(self, question: Question, text: str) -> Any:
        kind = question.type
        if kind is QuestionType.TEXT:
            return text
        if kind is QuestionType.INTEGER:
            cleaned = _ungroup(text)
            if not re.fullmatch(r"[+-]?\d+", cleaned):
                raise InvalidAnswer(say("not_integer", self.ui))
            return int(cleaned)
        if kind is QuestionType.DECIMAL:
            return _parse_decimal(text, say("not_decimal", self.ui))
        if kind is QuestionType.DATE:
            return _parse_date(text, say("not_date", self.ui))
        if kind is QuestionType.ACKNOWLEDGE:
            if _yes_no(text) == "yes" or fold(text) in ("ok", "x"):
                return "OK"
            raise InvalidAnswer(say("acknowledge_hint", self.ui))
        visible = self._visible_choices(question)
        if kind is QuestionType.SELECT_ONE:
            choice = self._match_choice(visible, text)
            if choice is None:
                raise InvalidAnswer(say("unknown_choice", self.ui, text=text))
            return choice.name
        whole = self._match_choice(visible, text)
        picked = [whole] if whole is not None else self._match_choices(visible, text)
        order = [c.name for c in question.choices]
        return tuple(sorted(dict.fromkeys(c.name for c in picked), key=order.index))

    def _match_choices(self, visible: list[Choice], text: str) -> list[Choice]:
        """Several choices: numbers or options' words separated by commas, semicolons, "và"/"and"
        or (between numbers and single words) spaces."""
        picked: list[Choice] = []
        for part in _LIST_SEPARATOR.split(text):
            part = part.strip()
            if not part:
                continue
            choice = self._match_choice(visible, part)
            if choice is not None:
                picked.append(choice)
                continue
            for token in part.split():
                choice = self._match_choice(visible, token)
                if choice is None:
                    raise InvalidAnswer(say("unknown_choice", self.ui, text=part))
                picked.append(choice)
        return picked

    def _match_choice(self, visible: list[Choice], text: str) -> Choice | None:
        """One choice: by the number shown beside it ("4", "4." or "4)"), by its label (accents and
        case optional), by its name (what a script types), or by words found in one label only."""
        number = _POSITION.fullmatch(text)
        if number is not None:
            # `\d` is any decimal digit: full-width "３" counts, "²" (which int() cannot read) does not.
            position = int(number.group(1))
            return visible[position - 1] if 1 <= position <= len(visible) else None
        folded = fold(text)
        labels = [fold(choice.label.get(self.lang, self.form.default_language)) for choice in visible]
        for choice, label in zip(visible, labels):
            if label == folded:
                return choice
        for choice in visible:
            if choice.name == text.strip():
                return choice
        if len(folded.replace(" ", "")) < 3:
            return None
        # Words of one label only ("một cửa" for "Trực tiếp tại bộ phận một cửa"), and never a
        # label that a word left out negates: "hài lòng" is not "Không hài lòng".
        words = set(folded.split())
        containing = [choice for choice, label in zip(visible, labels)
                      if f" {folded} " in f" {label} " and not (_NEGATIONS & set(label.split())) - words]
        return containing[0] if len(containing) == 1 else None

    def _validate(self, question: Question, value: Any) -> None:
        if value is None or value == ():
            if self._required(question):
                raise InvalidAnswer(question.required_message.get(self.lang, self.form.default_language)
                                    or say("required", self.ui))
            return
        if question.constraint is not None and not self._true(question.constraint, current=value):
            raise InvalidAnswer(question.constraint_message.get(self.lang, self.form.default_language)
                                or say("invalid", self.ui))

    def _still_valid(self, question: Question, value: Any) -> bool:
        """Whether an answer given earlier still satisfies its choice filter, constraint and `required`."""
        if question.type.is_select and question.choice_filter is not None and value:
            visible = {c.name for c in self._visible_choices(question)}
            if not set(value if isinstance(value, tuple) else (value,)) <= visible:
                return False
        try:
            self._validate(question, value)
        except InvalidAnswer:
            return False
        return True

    def _example(self, question: Question) -> str:
        """An answer a person could type for a number or date question, one that satisfies its
        constraint (tried on likely values and on the bounds the constraint names); "" if none."""
        kind = question.type
        if kind not in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.DATE):
            return ""
        source = question.constraint.source if question.constraint is not None else ""
        year = (self.state.started_at or self.event.at).year
        for value in example_candidates(kind, source, year):
            if question.constraint is None or self._true(question.constraint, current=value):
                return shown_example(value, self.ui)
        return ""

    # -- moving ------------------------------------------------------------------------------

    def _advance(self, start: int) -> Step:
        """Walk forward from `start` to the next question to ask (unanswered, or an answer the
        answers as they now stand make invalid), or to the end."""
        self._recalculate()
        questions = self.form.questions
        conditional = self.plan.condition_ids
        forward_from = self.plan.forward_from
        if forward_from is not None:
            start = min(start, forward_from)
        closing: list[int] = []  # positions in self.out of the notes shown since the last question
        for index in range(start, len(questions)):
            question = questions[index]
            if conditional[index] and not self._relevant_at(index):
                self._set(question.name, NOT_APPLICABLE)
                continue
            kind = question.type
            if kind is QuestionType.CALCULATE:
                self._set(question.name, self._calculate(question))
            elif kind in (QuestionType.START, QuestionType.TODAY):
                if self.answers.get(question.name) in (None, NOT_APPLICABLE):
                    started = self.state.started_at or self.event.at
                    self._set(question.name, started if kind is QuestionType.START else started.date())
            elif kind in (QuestionType.EMPTY_METADATA, QuestionType.UNASKABLE):
                self._set(question.name, None)
            elif kind is QuestionType.END:
                pass  # filled at completion
            elif kind is QuestionType.NOTE:
                if index > self.state.furthest:
                    closing.append(len(self.out))
                    self.out.append(Say(self._label(question), Tone.NOTE))
            elif (value := self.answers.get(question.name, NOT_APPLICABLE)) is not NOT_APPLICABLE \
                    and self._still_valid(question, value):
                closing.clear()
            else:
                if value is not NOT_APPLICABLE:  # answered before a change that makes it invalid
                    self._set(question.name, NOT_APPLICABLE)
                    self.out.append(Say(say("answer_again", self.ui)))
                self.state = _evolve(self.state, current=question.name, seq=self.state.seq + 1,
                                     furthest=max(self.state.furthest, index),
                                     draft=self._initial_draft(question))
                self.out.append(self.render())
                return self._finish(self.state)
        for index in self.plan.ends:
            if self._relevant_at(index):
                self._set(questions[index].name, self.event.at)
        if closing:  # the form's own closing words are the thank-you: one message that also says it is done
            note = self.out[closing[-1]]
            self.out[closing[-1]] = Say(f"{note.text}\n{say('completed', self.ui)}", Tone.THANKS)
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
            if self._plain is None or self._plain[0] != self.state.started_at:
                self._plain = (self.state.started_at, Environment(
                    values=self.answers, today=(self.state.started_at or at).date(), now=at,
                    choice_label=self._choice_label, seed=str(self.state.started_at or "")))
            return self._plain[1]
        return Environment(
            values=self.answers,
            current=current,
            today=(self.state.started_at or at).date(),
            now=at,
            choice_label=self._choice_label,
            choice_row={"name": choice.name, **choice.columns} if choice else None,
            seed=str(self.state.started_at or ""),
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
            value = question.calculation.evaluate(self._environment(current=self.answers.get(question.name)))
        except ExpressionError:
            return None
        if isinstance(value, bool):
            return to_string(value)
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    def _visible_choices(self, question: Question) -> list[Choice]:
        if question.choice_filter is None:
            return list(question.choices)
        return [c for c in question.choices if self._true(question.choice_filter, choice=c)]

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

    # -- rendering ---------------------------------------------------------------------------

    def _choice_label(self, question_name: str, choice_name: str) -> str:
        if not self.form.has(question_name):
            return choice_name
        choice = self.form.question(question_name).choice_by_name(choice_name)
        return choice.label.get(self.lang, self.form.default_language) if choice else choice_name

    def _display(self, name: str, value: Any) -> str:
        """A value as a person reads it: choice labels rather than choice names."""
        if value is None or value is NOT_APPLICABLE:
            return ""
        if self.form.has(name):
            question = self.form.question(name)
            if question.type.is_select:
                names = value if isinstance(value, tuple) else (value,)
                return ", ".join(self._choice_label(name, n) for n in names)
            if question.type is QuestionType.DATE and isinstance(value, dt.date):
                return value.strftime("%d/%m/%Y")
        return to_string(value)

    def _label(self, question: Question) -> str:
        text = self.plan.view(self.form, self.form.index(question.name), self.lang).label
        return interpolate(text, self._environment(), self._display)

    def render(self, update: bool = False) -> Ask:
        state = self.state
        if state.current == CONSENT:
            options = (Option("yes", 1, "yes", say("consent_yes", self.ui)),
                       Option("no", 2, "no", say("consent_no", self.ui)))
            return Ask(state.seq, PromptKind.CONSENT, CONSENT,
                       say("consent", self.ui, title=self.form.title), options=options, update=update)
        question = self.form.question(state.current)
        view = self.plan.view(self.form, self.form.index(question.name), self.lang)
        if not question.type.is_select:
            options = ()
        elif view.options is not None:  # no choice filter: every choice, numbered in order
            options = view.options
            if state.draft:
                marks = set(state.draft)
                options = tuple(Option(o.key, o.number, o.name, o.label, True) if o.name in marks else o
                                for o in options)
        else:
            marks = set(state.draft)
            options = tuple(
                Option(c.key, number, c.name, c.label.get(self.lang, self.form.default_language), c.name in marks)
                for number, c in enumerate(self._visible_choices(question), start=1))
        required = self._required(question)
        hint = view.hint
        if hint:
            hint = interpolate(hint, self._environment(), self._display)
        value = self.answers.get(question.name)
        return Ask(
            seq=state.seq,
            kind=view.kind if view.kind is not None else PromptKind(question.type.value),
            question=question.name,
            text=interpolate(view.label, self._environment(), self._display),
            hint=hint,
            options=options,
            progress=self._progress(question),
            section="" if update else self._section(question),
            required=required,
            can_go_back=self._has_previous(question),
            current_answer=self._display(question.name, value),
            update=update,
            expected=self._expected(question),
        )

    def _expected(self, question: Question) -> str:
        if question.type is not QuestionType.DATE:
            return ""
        example = self._example(question)
        return say("date_expected", self.ui, example=example) if example else say("date_pattern", self.ui)

    def _progress(self, question: Question) -> str:
        return self.plan.progress(self.form.index(question.name), self.ui)

    def _section(self, question: Question) -> str:
        """The group heading, when this question is the first asked in its group."""
        if not question.groups:
            return ""
        here = self.form.index(question.name)
        questions = self.form.questions
        for index in range(here - 1, -1, -1):
            previous = questions[index]
            if previous.type.is_asked and self.answers.get(previous.name, NOT_APPLICABLE) is not NOT_APPLICABLE:
                if previous.groups == question.groups:
                    return ""
                break
        labels = [self.form.groups[g].label.get(self.lang, self.form.default_language) for g in question.groups]
        return " › ".join(label for label in labels if label)

    def _has_previous(self, question: Question) -> bool:
        questions, answers = self.form.questions, self.answers
        for index in range(self.form.index(question.name)):
            previous = questions[index]
            if previous.type.is_asked and answers.get(previous.name, NOT_APPLICABLE) is not NOT_APPLICABLE:
                return True
        return False


# -- parsing helpers -------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without Vietnamese accents, so `hai long` matches `Hài lòng`."""
    text = unicodedata.normalize("NFD", text.strip().casefold().replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", text)


# Besides these, the consent options' own labels in every language (what consent_unclear asks for).
_YES_WORDS = {"yes", "y", "co", "dong y", "ok", "agree", "1"} | {fold(say("consent_yes", ui)) for ui in UI_LANGUAGES}
_NO_WORDS = {"no", "n", "khong", "khong dong y", "decline", "2"} | {fold(say("consent_no", ui)) for ui in UI_LANGUAGES}


#: A number as typed on a phone: "4", "4." or "4)" (full-width digits too).
_POSITION = re.compile(r"\s*(\d+)\s*[.)]?\s*")
#: Words that turn a label into its opposite (folded).
_NEGATIONS = {"khong", "chua", "chang", "not", "no", "never"}
#: Between several choices: a comma, a semicolon, or the word "và"/"and".
_LIST_SEPARATOR = re.compile(r"[,;]+|\s(?:và|va|and)\s", re.IGNORECASE)


def _yes_no(text: str) -> str | None:
    folded = fold(text).rstrip(".!)")
    if folded in _YES_WORDS:
        return "yes"
    if folded in _NO_WORDS:
        return "no"
    return None


_GROUPED = re.compile(r"[+-]?\d{1,3}(?: \d{3})+(?:[.,]\d*)?")


def _ungroup(text: str) -> str:
    """`1 000` → `1000`; any other space stays, so `1 2` is refused rather than read as 12."""
    return text.replace(" ", "") if _GROUPED.fullmatch(text) else text


def _parse_decimal(text: str, message: str) -> float:
    cleaned = _ungroup(text)
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # Vietnamese writes 3,5
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", cleaned):
        raise InvalidAnswer(message)
    return float(cleaned)


def _parse_date(text: str, message: str) -> dt.date:
    parts = typed_date(text)
    try:
        if parts is not None:
            day, month, year = parts
            return dt.date(year, month, day)
    except ValueError:
        pass
    raise InvalidAnswer(message)


def _evolve(state: SessionState, **changes: Any) -> SessionState:
    """`dataclasses.replace` for SessionState, without its per-call field introspection.

    SessionState has no __post_init__ or validation, so copying the fields and overriding some
    is exactly what replace() does; the engine calls it several times per step.
    """
    evolved = object.__new__(SessionState)
    fields_ = evolved.__dict__
    fields_.update(state.__dict__)
    for name, value in changes.items():
        if name not in fields_:
            raise TypeError(f"SessionState has no field {name!r}")
        fields_[name] = value
    return evolved


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type; floats also of one sign (0.0 and -0.0 calculate differently)."""
    return type(a) is type(b) and a == b and (type(a) is not float or math.copysign(1, a) == math.copysign(1, b))
