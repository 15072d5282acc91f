"""Typing a returned paper form: what was typed, checked by the conversation engine itself.

A data-entry clerk types, per question, what the respondent wrote: a choice's printed code (several
for a multi-select), a number, a date, a text. ``check`` replays those values through
``surveys.engine`` exactly as a chat session would receive them (consent, then each question the
engine asks, in its order), so the form's constraints, `required`, choice filters and skips are
applied by the same code as in chat: a value the engine refuses is an error with the engine's own
message; a question the engine never asks is skipped (its relevance is false), and a value typed
for it is pointed out. ``events`` is that replay as events, which ``fieldwork.paper`` applies to
the respondent's stored session through the same step path as chat answers.

Choice codes are those printed on the form (``surveys.phrasing.choice_codes``); a multi-select's
codes are separated by spaces, commas or semicolons. Dates are typed as on paper, ``dd/mm/yyyy``
(or ``yyyy-mm-dd``). An empty field is an unanswered question.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping

from surveys import engine
from surveys.expressions import NOT_APPLICABLE
from surveys.messages import say, ui_language
from surveys.model import Question, QuestionType, Questionnaire
from surveys.phrasing import choice_codes

_MULTI_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Checked:
    """What the engine made of one set of typed values."""

    #: Question name → "ok", "empty" (left blank), "skip" (not asked: its relevance is false),
    #: "error" (refused: ``errors`` says why) or "pending" (not reached: an earlier error stops the check).
    status: Mapping[str, str]
    errors: Mapping[str, str] = field(default_factory=dict)
    #: Questions skipped by the form's logic that nevertheless have a typed value (it is not stored).
    ignored: tuple[str, ...] = ()
    complete: bool = False

    @property
    def ok(self) -> bool:
        return self.complete and not self.errors


def answerable(form: Questionnaire) -> tuple[Question, ...]:
    """The questions printed with a number and typed at data entry, in form order."""
    return form.asked


def normalise(question: Question, text: str | None) -> str:
    """A typed value in one spelling, so that two entries of the same paper compare equal."""
    text = unicodedata.normalize("NFC", (text or "").strip())
    if question.type is QuestionType.SELECT_MULTIPLE:
        codes = [c for c in _MULTI_SEPARATORS.split(text) if c]
        order = list(choice_codes(question).values())
        return " ".join(sorted(dict.fromkeys(c.upper() if c.upper() in order else c for c in codes),
                               key=lambda c: order.index(c) if c in order else len(order)))
    if question.type is QuestionType.SELECT_ONE:
        return text.upper() if text.upper() in choice_codes(question).values() else text
    if question.type is QuestionType.DATE:
        parsed = _date(text)
        return parsed.strftime("%d/%m/%Y") if parsed else text
    return " ".join(text.split()) if question.type is not QuestionType.TEXT else text


def differences(form: Questionnaire, first: Mapping[str, str], second: Mapping[str, str]) -> list[str]:
    """Names of the questions whose two entries differ (after ``normalise``), in form order."""
    return [q.name for q in answerable(form)
            if normalise(q, first.get(q.name)) != normalise(q, second.get(q.name))]


def events(form: Questionnaire, state: engine.SessionState, typed: Mapping[str, str],
           at: dt.datetime) -> tuple[engine.Event, str] | None:
    """The next event that gives the engine, in ``state``, the paper's answer to what it asks, with a
    short name for its idempotency key; None when the session is finished (or cannot go on)."""
    status = state.status
    if status is engine.Status.COMPLETED:
        return None
    if status is engine.Status.NEW:
        return engine.Start(at=at), "start"
    if status is engine.Status.REFUSED:
        return engine.Resume(at=at), "resume"
    if state.current == engine.CONSENT:
        return engine.Choose("yes", state.seq, at), "consent"
    if state.current is None:
        return engine.Resume(at=at), "resume"
    question = form.question(state.current)
    text = (typed.get(question.name) or "").strip()
    kind = question.type
    if kind is QuestionType.SELECT_ONE and text:
        key = _keys(question).get(text.upper()) or _keys(question).get(text)
        return (engine.Choose(key, state.seq, at), "choose") if key else (_Unknown(text, at), "unknown")
    if kind is QuestionType.SELECT_MULTIPLE:
        wanted = []
        for code in (c for c in _MULTI_SEPARATORS.split(text) if c):
            key = _keys(question).get(code.upper()) or _keys(question).get(code)
            if key is None:
                return _Unknown(code, at), "unknown"
            wanted.append(question.choice_by_key(key).name)
        marks = set(state.draft)
        for choice in question.choices:
            if (choice.name in wanted) != (choice.name in marks):
                return engine.Toggle(choice.key, state.seq, at, on=choice.name in wanted), f"toggle{choice.key}"
        return engine.Done(state.seq, at), "done"
    if kind.is_media:  # not on paper (fieldwork.paper_form): whatever was typed, left empty
        return engine.Reply("", at, state.seq), "blank"
    if kind is QuestionType.ACKNOWLEDGE:
        return (engine.Choose("ok", state.seq, at), "ok") if text else (engine.Reply("", at, state.seq), "blank")
    if kind is QuestionType.DATE and text:
        parsed = _date(text)
        text = parsed.isoformat() if parsed else text
    return engine.Reply(text, at, state.seq), "reply"


@dataclass(frozen=True)
class _Unknown:
    """A code that is not one of the question's: refused here, with the engine's own words."""

    code: str
    at: dt.datetime


def unknown_code(code: str, language: str) -> str:
    return say("unknown_choice", ui_language(language), text=code)


def check(form: Questionnaire, typed: Mapping[str, str], at: dt.datetime, language: str | None = None) -> Checked:
    """Replay ``typed`` through the engine (nothing is stored) and say, per question, what came of it."""
    from fieldwork.paper_form import refuse_unprintable

    refuse_unprintable(form)
    language = language or form.default_language
    state = engine.new_session(form, language)
    errors: dict[str, str] = {}
    blanked: set[str] = set()
    for _ in range(_step_budget(form)):
        planned = events(form, state, {k: v for k, v in typed.items() if k not in blanked}, at)
        if planned is None:
            break
        event, _kind = planned
        question = state.current
        if isinstance(event, _Unknown):
            message, accepted, result = unknown_code(event.code, language), False, None
        else:
            result = engine.step(form, state, event)
            accepted = result.accepted
            message = next((s.text for s in result.say if getattr(s, "tone", None) is engine.Tone.ERROR), "")
        if accepted:
            state = result.state
            continue
        # Refused: remember why, then go on as if the field were blank so the rest is still checked.
        if question in blanked or question is None or question == engine.CONSENT:
            break
        errors[question] = message or say("invalid", ui_language(language))
        blanked.add(question)
    return _verdict(form, state, typed, errors)


def _verdict(form: Questionnaire, state: engine.SessionState, typed: Mapping[str, str],
             errors: dict[str, str]) -> Checked:
    status: dict[str, str] = {}
    ignored = []
    answers = state.answers
    for question in answerable(form):
        name = question.name
        if name in errors:
            status[name] = "error"
        elif name not in answers:
            status[name] = "pending"
        elif answers[name] is NOT_APPLICABLE:
            status[name] = "skip"
            if (typed.get(name) or "").strip():
                ignored.append(name)
        elif answers[name] is None or answers[name] == ():
            status[name] = "empty"
        else:
            status[name] = "ok"
    return Checked(status, errors, tuple(ignored), complete=state.status is engine.Status.COMPLETED and not errors)


def _step_budget(form: Questionnaire) -> int:
    """Enough events for every question (a multi-select's marks one by one) and the consent."""
    return 8 + sum(len(q.choices) + 2 if q.type is QuestionType.SELECT_MULTIPLE else 2 for q in form.questions)


def _keys(question: Question) -> dict[str, str]:
    """Printed code (upper case for letters) → the choice's key, which the engine's Choose takes."""
    codes = choice_codes(question)
    return {codes[c.name].upper(): c.key for c in question.choices} | {codes[c.name]: c.key for c in question.choices}


_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%d%m%Y")


def _date(text: str) -> dt.date | None:
    for pattern in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    return None
