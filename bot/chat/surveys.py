"""The chat core's storage side: bind a chat to a sampled person (code, phone), open-mode
respondents from a public QR code, and drive their session through the engine.

The chat core (``bot/chat/core.py``) decides when; every write is keyed by the platform's
update id, so a re-delivered update changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import orjson

from bot.chat.events import Call
from bot.invitations import code_hash
from bot.outbox import ERROR_REPLY, REPLY
from fieldwork.conversations import Consents, Conversations, Handled
from fieldwork.preloads import frame_row_preloads
from storage import (
    AmbiguousPhone,
    InvitationUsed,
    LinkConflict,
    NotFound,
    OutgoingMessage,
    Respondent,
    SessionRecord,
    Storage,
)
from surveys import codec, engine
from surveys.model import Questionnaire
from surveys.project import stored_project


@dataclass(frozen=True)
class Chat:
    channel: str
    bot: str
    chat_id: str
    user_id: str
    #: False for a group, supergroup or channel: surveys happen in private chats only.
    private: bool = True


class ChatLocks:
    """One ``asyncio.Lock`` per chat: a chat's updates are handled one at a time, in order.

    A lock lives only while an update of its chat holds or awaits it (the dictionary's values
    are weak), so a bot that has served a million chats does not keep a million locks.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __getitem__(self, chat_id: str) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    def __len__(self) -> int:
        return len(self._locks)

class Link(enum.StrEnum):
    LINKED = "linked"
    ALREADY = "already_linked"
    INVALID = "wrong_code"
    USED_ELSEWHERE = "code_reused"
    CHAT_TAKEN = "chat_linked_other"
    TOO_MANY = "too_many_attempts"
    #: Not checked: the bot-wide limit on wrong codes tripped, and this chat had entered one.
    THROTTLED = "throttled"
    NOT_FOUND = "phone_not_found"
    AMBIGUOUS = "phone_ambiguous"


_FAILED = (Link.INVALID, Link.USED_ELSEWHERE)

#: What the person is told for each outcome (keys of surveys.messages).
LINK_MESSAGES = {
    Link.LINKED: "linked",
    Link.INVALID: "code_invalid",
    Link.USED_ELSEWHERE: "code_used_elsewhere",
    Link.CHAT_TAKEN: "chat_linked_other",
    Link.TOO_MANY: "too_many_attempts",
    Link.THROTTLED: "code_busy",
    Link.NOT_FOUND: "phone_not_found",
    Link.AMBIGUOUS: "phone_ambiguous",
}


@dataclass(frozen=True)
class OpenCode:
    form_id: str
    stratum: str | None = None


class ChatSurveys:
    def __init__(self, storage: Storage, conversations: Conversations, forms: Sequence[Questionnaire], *,
                 open_codes: dict[str, OpenCode] | None = None, open_stratum_question: str | None = None,
                 code_attempts_per_hour: int = 5, code_failures_per_minute: int = 30,
                 on_enqueued: Callable[[], None] = lambda: None):
        self.storage = storage
        self.conversations = conversations
        self.forms = {form.form_id: form for form in forms}
        self.default_form = forms[0].form_id if forms else None
        self.open_codes = open_codes or {}
        self.open_stratum_question = open_stratum_question
        self.code_attempts_per_hour = code_attempts_per_hour
        self.code_failures_per_minute = code_failures_per_minute
        self.on_enqueued = on_enqueued
        self._new_states: dict[tuple[str, str], tuple[str, str]] = {}

    # -- who is this chat --------------------------------------------------------------------------

    async def respondent(self, chat: Chat) -> Respondent | None:
        return await self.storage.linked_respondent(chat.channel, chat.bot, chat.chat_id)

    async def linked(self, chat: Chat) -> tuple[Respondent | None, SessionRecord | None]:
        """The chat's respondent and their latest session in one read (for `drive(session=...)`)."""
        return await self.storage.linked_session(chat.channel, chat.bot, chat.chat_id, self.default_form)

    async def code_flood(self, chat: Chat, at: dt.datetime) -> int | None:
        """The bot's wrong codes of the last minute, from every chat, when they reach the bot-wide
        limit (a brute force from many chats); None below it."""
        since = (at - dt.timedelta(minutes=1)).isoformat()
        failures = await self.storage.count_bot_link_attempts(chat.channel, chat.bot, [o.value for o in _FAILED],
                                                              since)
        return failures if failures >= self.code_failures_per_minute else None

    async def link_code(self, chat: Chat, code: str, kind: str, key: str, at: dt.datetime, *,
                        code_is_key: bool = False, flood: bool = False) -> tuple[Link, Respondent | None]:
        """Bind the chat to the person whose invitation carries `code` (first use wins, except
        `code_is_key`: the channel's chats are the person's devices, and the code is their key).

        ``flood``: the bot-wide limit tripped (``code_flood``). Then only a chat with no wrong code
        in the last hour has its code checked: an honest person, who types their code right the
        first time, still gets in, while each chat of a brute force gets one guess, not
        ``code_attempts_per_hour``, until the wrong codes fall back under the limit."""
        since = (at - dt.timedelta(hours=1)).isoformat()
        failures = sum([await self.storage.count_link_attempts(chat.channel, chat.bot, chat.chat_id, outcome.value, since)
                        for outcome in _FAILED])
        if failures >= self.code_attempts_per_hour:
            await self._log(chat, Link.TOO_MANY, key, at)
            return Link.TOO_MANY, None
        if flood and failures:
            await self._log(chat, Link.THROTTLED, key, at)
            return Link.THROTTLED, None
        # "/start Nữ" typed by hand is no code (codes are ASCII), and must not break the hash.
        invitation = await self.storage.find_invitation(code_hash(code)) if code.isascii() else None
        if invitation is None or invitation.revoked_at is not None:
            await self._log(chat, Link.INVALID, key, at)
            return Link.INVALID, None
        if invitation.used_at is not None and (invitation.used_channel != chat.channel or code_is_key):
            # The same person moving to another messenger: one chat per channel, one session.
            return await self._link(chat, invitation.respondent_id, key, at)
        try:
            await self.storage.use_invitation(invitation.id, chat.channel, chat.bot, chat.chat_id, at.isoformat())
        except InvitationUsed:
            await self._log(chat, Link.USED_ELSEWHERE, key, at, detail=f"invitation {invitation.id}")
            return Link.USED_ELSEWHERE, None
        return await self._link(chat, invitation.respondent_id, key, at)

    async def link_phone(self, chat: Chat, phone: str, key: str, at: dt.datetime) -> tuple[Link, Respondent | None]:
        try:
            respondent = await self.storage.respondent_by_phone(phone)
        except AmbiguousPhone:
            await self._log(chat, Link.AMBIGUOUS, key, at)
            return Link.AMBIGUOUS, None
        if respondent is None:
            await self._log(chat, Link.NOT_FOUND, key, at)
            return Link.NOT_FOUND, None
        return await self._link(chat, respondent.id, key, at)

    async def _link(self, chat: Chat, respondent_id: int, key: str, at: dt.datetime) -> tuple[Link, Respondent | None]:
        current = await self.respondent(chat)
        if current is not None and current.id == respondent_id:
            return Link.ALREADY, current
        try:
            await self.storage.link_chat(chat.channel, chat.bot, chat.chat_id, respondent_id, at.isoformat())
        except LinkConflict:
            await self._log(chat, Link.CHAT_TAKEN, key, at, detail=f"respondent {respondent_id}")
            return Link.CHAT_TAKEN, None
        await self._log(chat, Link.LINKED, key, at)
        await self.storage.set_disposition(respondent_id, "contacted", at.isoformat(),
                                           reason=f"{chat.channel} chat linked", key=f"{key}:contacted")
        return Link.LINKED, await self.storage.get_respondent(respondent_id)

    async def _log(self, chat: Chat, outcome: Link, key: str, at: dt.datetime, detail: str | None = None) -> None:
        await self.storage.log_link_attempt(chat.channel, chat.bot, chat.chat_id, outcome.value, at.isoformat(),
                                            key=key, detail=detail)

    async def open_respondent(self, chat: Chat, payload: str, key: str, at: dt.datetime) -> Respondent | None:
        """Open mode: whoever scans the public code answers once per platform account."""
        code = self.open_codes.get(payload)
        if code is None:
            return None
        external_id = f"{chat.channel}:{chat.bot}:user:{chat.user_id}"
        respondent = await self.storage.add_respondent(external_id, form_id=code.form_id, stratum=code.stratum,
                                                       at=at.isoformat())
        await self._link(chat, respondent.id, key, at)
        return respondent

    async def already_answered(self, respondent: Respondent) -> bool:
        form_id = respondent.form_id or self.default_form
        latest = await self.storage.latest_session(respondent.id, form_id) if form_id else None
        return latest is not None and latest.status == engine.Status.COMPLETED.value

    # -- sessions --------------------------------------------------------------------------------

    def form_of(self, respondent: Respondent) -> Questionnaire | None:
        return self.forms.get(respondent.form_id or self.default_form or "")

    async def session(self, chat: Chat, respondent: Respondent, at: dt.datetime) -> SessionRecord | None:
        form = self.form_of(respondent)
        if form is None:
            return None
        # One response per person: a finished session is the session (the engine says so politely);
        # a refused one can be resumed by the person who refused. One storage call, and no write
        # unless a session has to be created.
        status, state = await self._respondent_new_state(form, respondent) if form.preloads else self._new_state(form)
        record, _ = await self.storage.current_session(respondent.id, form.form_id, form.version, chat.channel,
                                                       status, state, at.isoformat())
        return record

    def _new_state(self, form: Questionnaire) -> tuple[str, str]:
        """A new session's status and encoded state (the same for every session of a form version)."""
        key = (form.form_id, form.version)
        if key not in self._new_states:
            state = engine.new_session(form, None)
            self._new_states[key] = (state.status.value, codec.encode_state(state))
        return self._new_states[key]

    async def _respondent_new_state(self, form: Questionnaire, respondent: Respondent) -> tuple[str, str]:
        """A new session of a form that reads the sampled person's frame row, with that row preloaded."""
        found = await self.storage.respondent_frame_row(respondent.id)
        if found is None:  # an open-code respondent: only the stratum is known
            preloads = {"stratum": respondent.stratum or ""}
        else:
            survey_id, row = found
            try:
                project = await stored_project(self.storage, survey_id)
            except NotFound:
                project = None
            preloads = frame_row_preloads(row, project)
        state = engine.new_session(form, None, preloads)
        return state.status.value, codec.encode_state(state)

    async def drive(self, chat: Chat, respondent: Respondent, event: engine.Event, key: str,
                    render: Callable[[engine.Step], list[Call]], session: SessionRecord | None = None,
                    consents: Consents | None = None) -> Handled | None:
        """Apply `event` to the respondent's session; the rendered replies are queued with it, and
        the consent it accepts (`consents`, see ``Conversations.handle``) is stored with it.

        `session`: the latest session as just read by `linked` (saves a read). If it has moved
        on meanwhile, the step's revision check notices and the event is decided again.
        """
        form = self.form_of(respondent)
        if form is None:
            return None
        record = session if session is not None and session.form_id == form.form_id else \
            await self.session(chat, respondent, event.at)
        if record is None:
            return None

        def replies(step: engine.Step, _record: SessionRecord) -> list[OutgoingMessage]:
            # An answer the engine could not take gets an error reply: coalesced, behind real replies.
            return self._outgoing(chat, render(step), key, respondent.id, error=not step.accepted)

        handled = await self.conversations.handle(record, event, key, replies, consents)
        if handled.applied:
            self.on_enqueued()
            await self._assign_open_stratum(respondent, handled.step.state, event.at)
        return handled

    async def state(self, chat: Chat, respondent: Respondent, at: dt.datetime) -> engine.SessionState | None:
        record = await self.session(chat, respondent, at)
        return None if record is None else codec.decode_state(record.state)

    async def _assign_open_stratum(self, respondent: Respondent, state: engine.SessionState, at: dt.datetime) -> None:
        """Open mode: the screener's answer places the person in a stratum."""
        question = self.open_stratum_question
        if respondent.stratum is not None or not question or question not in state.answers:
            return
        value = state.answers[question]
        if isinstance(value, str) and value:
            await self.storage.set_respondent_form(respondent.id, respondent.form_id or state.form_id, value,
                                                   at.isoformat())

    # -- sending -----------------------------------------------------------------------------------

    async def send(self, chat: Chat, calls: list[Call], key: str, at: dt.datetime,
                   respondent_id: int | None = None, *, error: bool = False) -> None:
        """Queue messages that answer an update outside any session (help, linking); ``error``: a
        reply to something that could not be used (``ERROR_REPLY``: coalesced per chat)."""
        if not calls:
            return  # a channel that answers in its HTTP response (the web) queues nothing
        await self.storage.enqueue(self._outgoing(chat, calls, key, respondent_id, error=error), at.isoformat())
        self.on_enqueued()

    def _outgoing(self, chat: Chat, calls: list[Call], key: str, respondent_id: int | None, *,
                  error: bool = False) -> list[OutgoingMessage]:
        return [OutgoingMessage(channel=chat.channel, bot=chat.bot, chat_id=chat.chat_id, method=call.method,
                                payload=orjson.dumps(call.payload).decode(), priority=ERROR_REPLY if error else REPLY,
                                dedupe_key=f"{key}#{index}", respondent_id=respondent_id, coalesce=error)
                for index, call in enumerate(calls)]
