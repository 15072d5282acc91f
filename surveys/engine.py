"""The conversation engine: questionnaire + session state + event → new state + what to say.

Sans-I/O on purpose (see h11, goflow): no chat platform, database or clock in here. Every event
carries its own time, so replaying an event log reproduces a session exactly, and channels
(Telegram, Zalo, the console) stay thin translators.

Flow rules, decided once here for every channel:
- A consent screen comes before the first question; declining is a refusal.
- Questions are asked one at a time in form order. Non-relevant questions are recorded as
  NOT_APPLICABLE; calculations are recomputed after every answer.
- Going back re-asks the previous answered question with its current answer shown; after a
  change, the flow continues at the first question still unanswered, and every later answer
  whose relevance changed is re-evaluated.
- Every question prompt carries a sequence number; an event naming an older number changes
  nothing (stale buttons, double taps).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Union

from surveys.expressions import NOT_APPLICABLE, Environment, ExpressionError, interpolate, to_string
from surveys.messages import UI_LANGUAGES, say, ui_language
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
    """Stop for now (PAUSED), or with refuse=True decline to go on (REFUSED)."""

    at: dt.datetime
    refuse: bool = False


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


class _Conversation:
    def __init__(self, form: Questionnaire, state: SessionState, event: Event):
        self.form = form
        self.original = state
        self.state = state
        self.event = event
        self.answers: dict[str, Any] = dict(state.answers)
        self.out: list[Output] = []
        # Relevance of each question under the current answers, forgotten whenever one changes:
        # progress and section headings ask it of every question for every prompt.
        self._relevance: dict[str, bool] = {}
        self._plain: tuple[dt.datetime | None, Environment] | None = None

    def _set(self, name: str, value: Any) -> None:
        if name not in self.answers or not _same(self.answers[name], value):
            self.answers[name] = value
            self._relevance.clear()

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
        changes = {name: value for name, value in self.answers.items()
                   if name not in self.state.answers or not _same(self.state.answers[name], value)}
        return Step(replace(state, answers=self.answers), tuple(self.out), changes)

    # -- lifecycle ---------------------------------------------------------------------------

    def _start_or_resume(self, resuming: bool) -> Step:
        status = self.state.status
        if status is Status.COMPLETED:
            return self._unchanged(Say(say("already_completed", self.ui)))
        if status is Status.NEW or self.state.current == CONSENT or self.state.started_at is None:
            return self._ask_consent()
        if resuming or status in (Status.PAUSED, Status.REFUSED):
            self.out.append(Say(say("resumed", self.ui)))
        state = replace(self.state, status=Status.ACTIVE, seq=self.state.seq + 1)
        self.state = state
        self.out.append(self.render())
        return self._finish(state)

    def _ask_consent(self) -> Step:
        self.state = replace(self.state, status=Status.CONSENT, current=CONSENT, seq=self.state.seq + 1)
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
            return self._finish(replace(self.state, status=Status.REFUSED, current=None))
        if answer != "yes":
            return self._unchanged(Say(say("consent_unclear", self.ui), Tone.ERROR), self.render(update=True))
        self.state = replace(self.state, status=Status.ACTIVE, started_at=self.event.at)
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
            return self._finish(replace(self.state, status=Status.REFUSED))
        self.out.append(Say(say("paused", self.ui)))
        return self._finish(replace(self.state, status=Status.PAUSED))

    def _set_language(self, language: str) -> Step:
        available = tuple(dict.fromkeys(self.form.language_codes + UI_LANGUAGES))
        if language not in available:
            # `language` is say()'s own parameter name: format the placeholders here.
            text = say("unknown_language", self.ui).format(language=language, languages=", ".join(available))
            return self._unchanged(Say(text, Tone.ERROR))
        self.state = replace(self.state, language=language)
        self.out.append(Say(say("language_set", self.ui)))
        if self.state.current is not None and self.state.status in (Status.ACTIVE, Status.CONSENT):
            self.state = replace(self.state, seq=self.state.seq + 1)
            self.out.append(self.render())
        return self._finish(self.state)

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, event: Event) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = replace(self.state, status=Status.ACTIVE)
        question = self.form.question(self.state.current)
        try:
            if isinstance(event, Toggle):
                return self._toggle(question, event.key)
            value = self._value_from(question, event)
            self._validate(question, value)
        except InvalidAnswer as problem:
            return self._unchanged(Say(problem.message, Tone.ERROR), self.render(update=True))
        self._set(question.name, value)
        self.state = replace(self.state, draft=())
        self._recalculate()
        return self._advance(self.form.index(question.name) + 1)

    def _toggle(self, question: Question, key: str) -> Step:
        if question.type is not QuestionType.SELECT_MULTIPLE:
            return self._unchanged(Say(say("one_choice_only", self.ui), Tone.ERROR))
        choice = question.choice_by_key(key)
        if choice is None or choice not in self._visible_choices(question):
            return self._unchanged(Say(say("unknown_choice", self.ui, text=key), Tone.ERROR))
        marks = list(self.state.draft)
        marks.remove(choice.name) if choice.name in marks else marks.append(choice.name)
        order = [c.name for c in question.choices]
        self.state = replace(self.state, draft=tuple(sorted(marks, key=order.index)))
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
            choice = question.choice_by_key(event.key) if kind.is_select else None
            if choice is None or choice not in self._visible_choices(question):
                raise InvalidAnswer(say("unknown_choice", self.ui, text=event.key))
            return (choice.name,) if kind is QuestionType.SELECT_MULTIPLE else choice.name
        text = event.text.strip()
        if text == "":
            if question.name in self.answers and self.answers[question.name] not in (None, NOT_APPLICABLE):
                kept = self.answers[question.name]  # came back and kept the answer
                return (self._only_visible(question, kept) or None) if kind.is_select else kept
            if kind is QuestionType.SELECT_MULTIPLE and self.state.draft:
                return self._only_visible(question, self.state.draft) or None
            return self._default(question)
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
        whole = self._match_choice(visible, text, by_number=False)
        if whole is not None:
            return (whole.name,)
        picked: list[str] = []
        for token in re.split(r"[\s,;]+", text):
            if not token:
                continue
            choice = self._match_choice(visible, token)
            if choice is None:
                raise InvalidAnswer(say("unknown_choice", self.ui, text=token))
            if choice.name not in picked:
                picked.append(choice.name)
        order = [c.name for c in question.choices]
        return tuple(sorted(picked, key=order.index))

    def _match_choice(self, visible: list[Choice], text: str, by_number: bool = True) -> Choice | None:
        """A choice by its name, its label (accents and case optional), or its shown number."""
        for choice in visible:
            if choice.name == text:
                return choice
        folded = fold(text)
        for choice in visible:
            if fold(choice.label.get(self.lang, self.form.default_language)) == folded:
                return choice
        if by_number and text.isdigit() and 1 <= int(text) <= len(visible):
            return visible[int(text) - 1]
        return None

    def _validate(self, question: Question, value: Any) -> None:
        if value is None or value == ():
            if question.required is not None and self._true(question.required):
                raise InvalidAnswer(question.required_message.get(self.lang, self.form.default_language)
                                    or say("required", self.ui))
            return
        if question.constraint is not None and not self._true(question.constraint, current=value):
            raise InvalidAnswer(question.constraint_message.get(self.lang, self.form.default_language)
                                or say("invalid", self.ui))

    # -- moving ------------------------------------------------------------------------------

    def _advance(self, start: int) -> Step:
        """Walk forward from `start` to the next question to ask, or to the end."""
        questions = self.form.questions
        for index in range(start, len(questions)):
            question = questions[index]
            if not self._relevant(question):
                self._set(question.name, NOT_APPLICABLE)
                continue
            kind = question.type
            if kind is QuestionType.CALCULATE:
                self._set(question.name, self._calculate(question))
            elif kind in (QuestionType.START, QuestionType.TODAY):
                if self.answers.get(question.name) in (None, NOT_APPLICABLE):
                    started = self.state.started_at or self.event.at
                    self._set(question.name, started if kind is QuestionType.START else started.date())
            elif kind is QuestionType.EMPTY_METADATA:
                self._set(question.name, None)
            elif kind is QuestionType.END:
                pass  # filled at completion
            elif kind is QuestionType.NOTE:
                if index > self.state.furthest:
                    self.out.append(Say(self._label(question), Tone.NOTE))
            elif self.answers.get(question.name, NOT_APPLICABLE) is NOT_APPLICABLE:
                self.state = replace(self.state, current=question.name, seq=self.state.seq + 1,
                                     furthest=max(self.state.furthest, index),
                                     draft=self._initial_draft(question))
                self.out.append(self.render())
                return self._finish(self.state)
        for question in questions:
            if question.type is QuestionType.END and self._relevant(question):
                self._set(question.name, self.event.at)
        self.out.append(Say(say("thanks", self.ui), Tone.THANKS))
        return self._finish(replace(self.state, status=Status.COMPLETED, current=None,
                                    furthest=len(questions), completed_at=self.event.at, draft=()))

    def _back(self) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = replace(self.state, status=Status.ACTIVE)
        here = self.form.index(self.state.current)
        for index in range(here - 1, -1, -1):
            question = self.form.questions[index]
            value = self.answers.get(question.name, NOT_APPLICABLE)
            if question.type.is_asked and value is not NOT_APPLICABLE and self._relevant(question):
                self.state = replace(self.state, current=question.name, seq=self.state.seq + 1,
                                     draft=value if question.type is QuestionType.SELECT_MULTIPLE and value else ())
                self.out.append(self.render())
                return self._finish(self.state)
        return self._unchanged(Say(say("cannot_go_back", self.ui), Tone.ERROR), self.render(update=True))

    def _recalculate(self) -> None:
        """Bring every reached calculation and relevance up to date with the answers."""
        for question in self.form.questions:
            if question.name not in self.answers:
                continue
            if not self._relevant(question):
                self._set(question.name, NOT_APPLICABLE)
            elif question.type is QuestionType.CALCULATE:
                self._set(question.name, self._calculate(question))

    # -- evaluation --------------------------------------------------------------------------

    def _environment(self, current: Any = None, choice: Choice | None = None) -> Environment:
        at = self.event.at
        if current is None and choice is None:
            # The answers dict is shared, so one environment serves until the start time changes.
            if self._plain is None or self._plain[0] != self.state.started_at:
                self._plain = (self.state.started_at, Environment(
                    values=self.answers, today=(self.state.started_at or at).date(), now=at,
                    choice_label=self._choice_label))
            return self._plain[1]
        return Environment(
            values=self.answers,
            current=current,
            today=(self.state.started_at or at).date(),
            now=at,
            choice_label=self._choice_label,
            choice_row={"name": choice.name, **choice.columns} if choice else None,
        )

    def _true(self, expression, current: Any = None, choice: Choice | None = None) -> bool:
        try:
            return expression.evaluate_bool(self._environment(current, choice))
        except ExpressionError:
            # A form can only fail here on missing run-time data (checked at load otherwise);
            # treating it as false keeps the respondent moving instead of stuck.
            return False

    def _relevant(self, question: Question) -> bool:
        known = self._relevance.get(question.name)
        if known is None:
            known = self._relevance[question.name] = all(
                self._true(condition) for condition in self.form.conditions(question))
        return known

    def _calculate(self, question: Question) -> Any:
        try:
            value = question.calculation.evaluate(self._environment())
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
        text = question.label.get(self.lang, self.form.default_language)
        return interpolate(text, self._environment(), self._display)

    def render(self, update: bool = False) -> Ask:
        state = self.state
        if state.current == CONSENT:
            options = (Option("yes", 1, "yes", say("consent_yes", self.ui)),
                       Option("no", 2, "no", say("consent_no", self.ui)))
            return Ask(state.seq, PromptKind.CONSENT, CONSENT,
                       say("consent", self.ui, title=self.form.title), options=options, update=update)
        question = self.form.question(state.current)
        marks = set(state.draft)
        options = tuple(
            Option(c.key, number, c.name, c.label.get(self.lang, self.form.default_language), c.name in marks)
            for number, c in enumerate(self._visible_choices(question), start=1)
        ) if question.type.is_select else ()
        required = question.required is not None and self._true(question.required)
        hint = question.hint.get(self.lang, self.form.default_language)
        if hint:
            hint = interpolate(hint, self._environment(), self._display)
        value = self.answers.get(question.name)
        return Ask(
            seq=state.seq,
            kind=PromptKind(question.type.value),
            question=question.name,
            text=self._label(question),
            hint=hint,
            options=options,
            progress=self._progress(question),
            section="" if update else self._section(question),
            required=required,
            can_go_back=self._has_previous(question),
            current_answer=self._display(question.name, value),
            update=update,
        )

    def _progress(self, question: Question) -> str:
        here = self.form.index(question.name)
        relevant = [self.form.index(q.name) for q in self.form.asked if self._relevant(q)]
        position = 1 + sum(1 for index in relevant if index < here)
        return say("progress", self.ui, position=position, total=max(len(relevant), position))

    def _section(self, question: Question) -> str:
        """The group heading, when this question is the first asked in its group."""
        if not question.groups:
            return ""
        here = self.form.index(question.name)
        for previous in reversed(self.form.questions[:here]):
            if previous.type.is_asked and self.answers.get(previous.name, NOT_APPLICABLE) is not NOT_APPLICABLE:
                if previous.groups == question.groups:
                    return ""
                break
        labels = [self.form.groups[g].label.get(self.lang, self.form.default_language) for g in question.groups]
        return " › ".join(label for label in labels if label)

    def _has_previous(self, question: Question) -> bool:
        here = self.form.index(question.name)
        return any(q.type.is_asked and self.answers.get(q.name, NOT_APPLICABLE) is not NOT_APPLICABLE
                   for q in self.form.questions[:here])


# -- parsing helpers -------------------------------------------------------------------------

_YES_WORDS = {"yes", "y", "co", "dong y", "ok", "agree", "1"}
_NO_WORDS = {"no", "n", "khong", "khong dong y", "decline", "2"}


def fold(text: str) -> str:
    """Lower case without Vietnamese accents, so `hai long` matches `Hài lòng`."""
    text = unicodedata.normalize("NFD", text.strip().casefold().replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", text)


def _yes_no(text: str) -> str | None:
    folded = fold(text)
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
    cleaned = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", cleaned):
            year, month, day = (int(p) for p in cleaned.split("-"))
            return dt.date(year, month, day)
        match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", cleaned)
        if match:
            day, month, year = (int(p) for p in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        pass
    raise InvalidAnswer(message)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
