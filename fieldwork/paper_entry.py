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

Repeat groups: a field in a block is keyed as a chat session keys the answer, ``member[2]/age``;
"add another?" is answered yes while the next block has something typed; a block with nothing in
it is no instance, and blocks typed that disagree with a count worked out from answers (or a block
typed after an empty one) are an error naming the block (``fieldwork.paper_repeats``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping

from fieldwork.paper_repeats import (blocks_beyond, empty_counted_block, filled_blocks, is_more, more_answer,
                                     question_at, typed_fields)
from surveys import engine
from surveys.expressions import NOT_APPLICABLE
from surveys.messages import say, ui_language
from surveys.model import Question, QuestionType, Questionnaire
from surveys.phrasing import Phraser, choice_codes
from surveys.repeats import instance_prefix, repeat_plan, split_key

_MULTI_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Checked:
    """What the engine made of one set of typed values."""

    #: Field key (a question's name, ``member[2]/age`` in a repeat's block, ``member[4]`` for a whole
    #: block) → "ok", "empty" (left blank), "skip" (not asked: its relevance is false), "error"
    #: (refused: ``errors`` says why), "pending" (not reached: an earlier error stops the check) or
    #: "unused" (in a block left empty, which is no instance).
    status: Mapping[str, str]
    errors: Mapping[str, str] = field(default_factory=dict)
    #: Questions skipped by the form's logic that nevertheless have a typed value (it is not stored).
    ignored: tuple[str, ...] = ()
    complete: bool = False
    #: The session's number of instances per repeat path (``member``, ``member[2]/visit``).
    instances: Mapping[str, int] = field(default_factory=dict)

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
    if question.type is QuestionType.RANK:  # the order is the answer: kept
        codes = set(choice_codes(question).values())
        return " ".join(c.upper() if c.upper() in codes else c for c in _MULTI_SEPARATORS.split(text) if c)
    if question.type is QuestionType.DATE:
        parsed = _date(text)
        return parsed.strftime("%d/%m/%Y") if parsed else text
    return " ".join(text.split()) if question.type is not QuestionType.TEXT else text


def differences(form: Questionnaire, first: Mapping[str, str], second: Mapping[str, str]) -> list[str]:
    """Keys of the fields whose two entries differ (after ``normalise``), in form order (a field in a
    repeat's block is keyed by its instance, ``member[2]/age``)."""
    return [key for key, q in typed_fields(form, first, second)
            if normalise(q, first.get(key)) != normalise(q, second.get(key))]


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
    if is_more(state.current):  # "add another?": yes while the next block has something typed
        answer = more_answer(state.current, typed)
        return engine.Choose(answer, state.seq, at), f"more-{answer}"
    question = question_at(form, state.current)
    text = (typed.get(state.current) or "").strip()
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
    if kind is QuestionType.RANK and text:
        # One pick at a time, as the chat asks it: the codes in the order written.
        wanted = []
        for code in (c for c in _MULTI_SEPARATORS.split(text) if c):
            key = _keys(question).get(code.upper()) or _keys(question).get(code)
            if key is None:
                return _Unknown(code, at), "unknown"
            wanted.append(question.choice_by_key(key))
        ranked = list(state.draft)
        if ranked != [c.name for c in wanted[:len(ranked)]]:
            return engine.Back(at, state.seq), "unrank"
        if len(ranked) < len(wanted):
            return engine.Choose(wanted[len(ranked)].key, state.seq, at), f"rank{len(ranked)}"
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
    for _ in range(replay_budget(form, typed)):
        planned = events(form, state, {k: v for k, v in typed.items() if k not in blanked}, at)
        if planned is None:
            break
        event, _kind = planned
        question = state.current
        if form.has_repeats and question and question != engine.CONSENT:
            empty = empty_counted_block(form, question, typed)
            if empty is not None:  # the count says this block is an instance, but nothing is typed in it
                path, repeat, number = empty
                repeats, numbers, _ = split_key(path + "/")
                have = state.instances.get(instance_prefix(repeats[:-1], numbers[:-1]) + repeat, number)
                errors[path] = _block_words(form, "paper_block_missing", language, path, have=have)
                break
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
    if form.has_repeats and state.status is engine.Status.COMPLETED and not errors:
        for path, repeat, number, have in blocks_beyond(state.instances, typed):
            open_repeat = form.groups[repeat].repeat_count is None
            key = "paper_block_beyond" if not open_repeat else "paper_block_gap" if have else "paper_block_skipped"
            errors[path] = _block_words(form, key, language, path, have=have)
    return _verdict(form, state, typed, errors)


def _block_words(form: Questionnaire, key: str, language: str, path: str, **values) -> str:
    """A message naming a repeat's block as printed, in its parents: “Thành viên 2 › Lần khám 4”."""
    ui = ui_language(language)
    repeats, numbers, _ = split_key(path + "/")
    labels = [form.groups[r].label.get(language, form.default_language) or r for r in repeats]
    names = [f"{label} {number}" for label, number in zip(labels, numbers)]
    group = form.groups[repeats[-1]]
    count = Phraser(form, ui).readable(group.repeat_count.source) if group.repeat_count is not None else ""
    return say(key, ui, block=" › ".join(names), label=labels[-1], count=count,
               previous=" › ".join(names[:-1] + [f"{labels[-1]} {numbers[-1] - 1}"]), **values)


def replay_budget(form: Questionnaire, typed: Mapping[str, str]) -> int:
    """Enough events to replay ``typed``: every question (a multi-select's marks one by one) and the
    consent, once outside repeats and once more per block typed (and its "add another?")."""
    blocks = len(filled_blocks(typed)) + len(repeat_plan(form).repeat_names) if form.has_repeats else 0
    return _step_budget(form) * (1 + blocks) + 2 * blocks


def _verdict(form: Questionnaire, state: engine.SessionState, typed: Mapping[str, str],
             errors: dict[str, str]) -> Checked:
    status: dict[str, str] = {path: "error" for path in errors if not form.has(path) and "[" in path}
    ignored = []
    answers = state.answers
    for name, _question in typed_fields(form, typed):
        if name in errors:
            status[name] = "error"
        elif name not in answers:
            # A block's field the finished replay never reached is in a block that is no instance.
            status[name] = "unused" if state.status is engine.Status.COMPLETED else "pending"
        elif answers[name] is NOT_APPLICABLE:
            status[name] = "skip"
            if (typed.get(name) or "").strip():
                ignored.append(name)
        elif answers[name] is None or answers[name] == ():
            status[name] = "empty"
        else:
            status[name] = "ok"
    return Checked(status, errors, tuple(ignored), complete=state.status is engine.Status.COMPLETED and not errors,
                   instances=dict(state.instances))


def _step_budget(form: Questionnaire) -> int:
    """Enough events for every question (a multi-select's marks one by one) and the consent."""
    return 8 + sum(len(q.choices) + 2 if q.type is QuestionType.SELECT_MULTIPLE
                   else 2 * len(q.choices) + 2 if q.type is QuestionType.RANK else 2 for q in form.questions)


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
