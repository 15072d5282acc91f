"""Runs the engine over stored sessions: the one place where engine meets storage.

Every channel (console, Telegram, Zalo) calls `Conversations.handle` with an event and a key
that identifies it on that channel; the key makes a re-delivered event a no-op.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence

from storage import AnswerChange, ConsentRecord, OutgoingMessage, SessionRecord, StaleRevision, Storage
from storage.answers_read import EVENT_KEY_CHANNELS
from surveys import codec, engine
from surveys.messages import say, ui_language
from surveys.model import Questionnaire
from surveys.xlsform import load_questionnaire_bytes

_RETRIES_ON_RACE = 5

#: The respondent's disposition that a session status implies (AAPOR-style; see storage).
DISPOSITION_OF_STATUS = {
    engine.Status.NEW: "contacted",
    engine.Status.CONSENT: "contacted",
    engine.Status.ACTIVE: "started",
    engine.Status.PAUSED: "started",
    engine.Status.COMPLETED: "completed",
    engine.Status.REFUSED: "refused",
}

Replies = Callable[[engine.Step, SessionRecord], Sequence[OutgoingMessage]]
#: The consent a step accepts (the step and the session before it), stored with the step.
Consents = Callable[[engine.Step, SessionRecord], Sequence[ConsentRecord]]


class Quotas(Protocol):
    """Completion quotas (``fieldwork/quotas.py``): asked before a step is stored, told after."""

    async def admit(self, record: SessionRecord, step: engine.Step, at: dt.datetime) -> bool: ...

    async def settle(self, session: SessionRecord, at: dt.datetime) -> None: ...


@dataclass(frozen=True)
class Handled:
    session: SessionRecord
    step: engine.Step
    #: False when the event key had been handled before: nothing was written or decided.
    applied: bool


class DecodedStates:
    """The states the engine last left each session in, so its next step need not decode them.

    A state is used again only for the very text it was stored as, so a session another process
    moved on, or one stored before this process started, is decoded as always; and what is kept
    is the state as decoding that text would give it (``codec.as_decoded``: the same answers in
    the same order, times with the same offsets), so a step decides the same whether its state
    was kept or decoded. The newest ``size`` sessions are kept: people answering now.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._states: OrderedDict[int, tuple[str, engine.SessionState]] = OrderedDict()

    def decode(self, session_id: int, text: str) -> engine.SessionState:
        kept = self._states.get(session_id)
        if kept is not None and kept[0] == text:
            return kept[1]
        return codec.decode_state(text)

    def keep(self, session_id: int, text: str, state: engine.SessionState) -> None:
        decoded = codec.as_decoded(state)
        if decoded is None:
            self._states.pop(session_id, None)
            return
        self._states[session_id] = (text, decoded)
        self._states.move_to_end(session_id)
        if len(self._states) > self.size:
            self._states.popitem(last=False)


class Conversations:
    """``quotas``: with hard quotas, a step that lets a person into the questions (or completes
    them) is stored only if ``quotas.admit`` gives them a slot. When it does not, the step is
    replaced by a polite ``quota_full`` message stored under the same event key (the session
    state is unchanged, so the acceptance is never stored and a re-delivered update changes
    nothing) and the respondent gets the disposition ``quota_full``."""

    def __init__(self, storage: Storage, *, quotas: Quotas | None = None):
        self.storage = storage
        self.quotas = quotas
        self._forms: dict[tuple[str, str], Questionnaire] = {}
        self.states = DecodedStates()

    async def register(self, form: Questionnaire, source: bytes, source_name: str, at: dt.datetime) -> None:
        """Keep the form's source and the CSV files it reads in the database, so sessions always find
        the exact version they answer, lookups included."""
        await self.storage.save_questionnaire(form.form_id, form.version, source_name, source, at.isoformat(),
                                              form.attachments)
        self._forms[(form.form_id, form.version)] = form

    async def questionnaire(self, form_id: str, version: str) -> Questionnaire:
        key = (form_id, version)
        if key not in self._forms:
            stored = await self.storage.get_questionnaire(form_id, version)
            self._forms[key] = load_questionnaire_bytes(stored.source, stored.source_name, stored.attachments)
        return self._forms[key]

    async def open(self, external_id: str, form: Questionnaire, channel: str, language: str | None,
                   at: dt.datetime, preloads: Mapping[str, str] | None = None) -> tuple[SessionRecord, bool]:
        """The respondent's open session for this form, or a new one: (session, created).

        `preloads`: the sampled person's attributes a new session starts with (see fieldwork.preloads)."""
        respondent = await self.storage.ensure_respondent(external_id, at.isoformat())
        return await self.open_for(respondent.id, form, channel, language, at, preloads)

    async def open_for(self, respondent_id: int, form: Questionnaire, channel: str, language: str | None,
                       at: dt.datetime, preloads: Mapping[str, str] | None = None) -> tuple[SessionRecord, bool]:
        state = engine.new_session(form, language, preloads)
        return await self.storage.open_session(respondent_id, form.form_id, form.version, channel,
                                               state.status.value, codec.encode_state(state), at.isoformat())

    async def handle(self, session: int | SessionRecord, event: engine.Event, event_key: str,
                     replies: Replies | None = None, consents: Consents | None = None) -> Handled:
        """Apply one event; `replies` renders what to send, queued in the same transaction, and
        `consents` gives the consent the step accepts, stored in it too (a re-delivered event,
        whose step is not applied again, stores nothing more).

        `session` is the session's id, or its record as just loaded (saves reading it again);
        if another event lands first (StaleRevision) the session is read again and the event
        decided again on its new state.
        """
        record = session if isinstance(session, SessionRecord) else None
        session_id = session.id if isinstance(session, SessionRecord) else session
        for _ in range(_RETRIES_ON_RACE):
            if record is None:
                record = await self.storage.get_session(session_id)
            form = await self.questionnaire(record.form_id, record.form_version)
            state = self.states.decode(record.id, record.state)
            result = engine.step(form, state, event)
            blocked = (self.quotas is not None and result.accepted
                       and not await self.quotas.admit(record, result, event.at))
            if blocked:
                text = say("quota_full", ui_language(state.language))
                result = engine.Step(state, (engine.Say(text, engine.Tone.THANKS),), {}, accepted=True)
            changes = [AnswerChange(name, codec.encode_value(value), codec.answer_status(value))
                       for name, value in result.changes.items()]
            encoded = codec.encode_state(result.state)
            try:
                outcome = await self.storage.apply_step(
                    session_id,
                    event_key=event_key,
                    event=codec.encode_event(event),
                    expected_revision=record.revision,
                    status=result.state.status.value,
                    state=encoded,
                    changes=changes,
                    at=event.at.isoformat(),
                    outgoing=replies(result, record) if replies else (),
                    consents=consents(result, record) if consents else (),
                )
            except StaleRevision:
                record = None  # another event for this session landed first: decide again on its state
                continue
            current = outcome.session or await self.storage.get_session(session_id)
            if not outcome.applied:
                await self._disposition(current, event, event_key)  # in case a crash came between the two
                await self._settle(current, event)
                return Handled(current, engine.Step(self.states.decode(current.id, current.state), (), {},
                                                    accepted=False), applied=False)
            self.states.keep(session_id, encoded, result.state)
            if blocked:
                await self.storage.set_disposition(current.respondent_id, "quota_full", event.at.isoformat(),
                                                   reason=f"session {current.id}: stratum full",
                                                   key=f"{event_key}:disposition")
                return Handled(current, result, applied=True)
            if DISPOSITION_OF_STATUS[engine.Status(record.status)] != DISPOSITION_OF_STATUS[result.state.status]:
                await self._disposition(current, event, event_key)
            if record.status != current.status:
                await self._settle(current, event)
            return Handled(current, result, applied=True)
        raise StaleRevision(f"session {session_id} kept changing under event {event_key}")

    async def _disposition(self, session: SessionRecord, event: engine.Event, event_key: str) -> None:
        """Keep the respondent's disposition in step with the session (idempotent by the event key)."""
        status = DISPOSITION_OF_STATUS[engine.Status(session.status)]
        # The mode the change came through (telegram, zalo, web, paper…), so a final disposition says how.
        mode = EVENT_KEY_CHANNELS.get(event_key.split(":", 1)[0], session.channel)
        await self.storage.set_disposition(session.respondent_id, status, event.at.isoformat(),
                                           reason=f"session {session.id} {session.status} ({mode})",
                                           key=f"{event_key}:disposition")

    async def _settle(self, session: SessionRecord, event: engine.Event) -> None:
        """Completion marks the quota slot completed, refusal releases it (idempotent)."""
        if self.quotas is not None and session.status in (engine.Status.COMPLETED.value, engine.Status.REFUSED.value):
            await self.quotas.settle(session, event.at)

    async def state(self, session_id: int) -> tuple[Questionnaire, engine.SessionState]:
        record = await self.storage.get_session(session_id)
        return await self.questionnaire(record.form_id, record.form_version), codec.decode_state(record.state)
