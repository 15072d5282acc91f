"""A respondent's privacy in chat, for every channel: the survey's own consent text (recorded
with the exact version shown), ``/privacy`` (what is held about the person), and the request
to withdraw consent and delete their data (Law 91/2025/QH15, Decree 356/2025/NĐ-CP).

The chat core calls ``intercept`` before its own commands, ``renderer`` before the engine
speaks and ``consents`` for the step it drives (the consent accepted is stored in the step's own
transaction: a crash or a failed write between the two could leave a person answering with no
record of what they accepted, and a re-delivered update would never write it); ``watch`` runs
beside each bot: it tells people whose request was fulfilled (then forgets their chat) and makes
the retention pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence
from zoneinfo import ZoneInfo

from bot.chat.events import Blocked, Command, Incoming, Notice, Outgoing, Renderer, Text, typed
from bot.chat.surveys import Chat, ChatSurveys
from fieldwork.conversations import Consents
from fieldwork.privacy import retention_pass, unreferenced_media_pass
from storage import ConsentRecord, NotFound, Respondent, SessionRecord
from surveys import engine
from surveys.engine import fold
from surveys.messages import say, ui_language
from surveys.privacy import PrivacyNotice, deadlines, notice_of, purge_date
from surveys.project import SurveyProject

if TYPE_CHECKING:
    from bot.chat.core import ChatCore, Turn

log = logging.getLogger(__name__)

#: Commands that ask for withdrawal and deletion (Telegram commands are Latin letters only).
RIGHTS_COMMANDS = {"xoa", "delete", "withdraw", "erase"}
#: The withdrawal as a channel's buttons send it: the command, then the command with its yes.
WITHDRAW = "xoa"
WITHDRAW_YES = "có"
#: Plain words that ask the same (accents folded), in a short message of their own.
RIGHTS_PHRASES = ("xoa du lieu", "rut lai dong y", "rut lai su dong y", "huy dong y", "delete my data",
                  "erase my data", "remove my data", "withdraw consent", "withdraw my consent")
_YES = {"co", "yes", "dong y", "y"}
_CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "web": "web"}
_TTL_SECONDS = 60.0
_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def asks_erasure(text: str) -> bool:
    folded = fold(text)
    return len(folded) <= 80 and any(phrase in folded for phrase in RIGHTS_PHRASES)


def local(at: str | dt.datetime, zone: ZoneInfo = _ZONE) -> str:
    moment = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    return f"{moment.astimezone(zone):%d/%m/%Y %H:%M}"


def day(iso: str) -> str:
    return f"{dt.date.fromisoformat(iso):%d/%m/%Y}"


@dataclass
class ConsentTexts:
    """A channel's renderer that shows the survey's own consent text on the consent screen."""

    inner: Renderer
    notice: PrivacyNotice
    channel: str

    @property
    def capabilities(self):
        return self.inner.capabilities

    def render(self, outputs: Sequence[Outgoing], chat_id: str, language: str, **options: Any):
        shown = [dataclasses.replace(o, text=self.notice.consent(ui_language(language), self.channel).text)
                 if isinstance(o, engine.Ask) and o.kind is engine.PromptKind.CONSENT else o for o in outputs]
        return self.inner.render(shown, chat_id, language, **options)


class ChatPrivacy:
    def __init__(self, surveys: ChatSurveys, clock: Callable[[], dt.datetime], monotonic=time.monotonic):
        self.surveys = surveys
        self.storage = surveys.storage
        self.clock = clock
        self.monotonic = monotonic
        self._projects: dict[str, SurveyProject] = {}
        self._read_at: float | None = None

    # -- the survey's texts ------------------------------------------------------------------------

    async def project_of(self, respondent: Respondent | None) -> SurveyProject | None:
        if self._read_at is None or self.monotonic() - self._read_at > _TTL_SECONDS:
            projects: dict[str, SurveyProject] = {}
            for stored in await self.storage.list_surveys():
                project = SurveyProject.from_json(stored.project)
                for group in project.groups.values():
                    if group.form_id not in projects or projects[group.form_id].closes < project.closes:
                        projects[group.form_id] = project
            self._projects, self._read_at = projects, self.monotonic()
        form_id = (respondent.form_id if respondent else None) or self.surveys.default_form or ""
        return self._projects.get(form_id)

    async def notice(self, respondent: Respondent | None) -> PrivacyNotice:
        form = self.surveys.form_of(respondent) if respondent else None
        return notice_of(await self.project_of(respondent), form.title if form else "")

    async def renderer(self, renderer: Renderer, channel: str, respondent: Respondent) -> Renderer:
        if isinstance(renderer, ConsentTexts):
            return renderer
        return ConsentTexts(renderer, await self.notice(respondent), channel)

    async def consents(self, turn: Turn, respondent: Respondent) -> Consents:
        """What the step of this turn stores with itself when it accepts the consent screen: the
        exact text the person was shown. Decided on the session the step is decided on (after a
        lost race, the session read again), so only the step leaving the consent screen has one."""
        # The notice the consent screen was rendered with (``renderer``), so the text stored is
        # the text shown.
        notice = turn.renderer.notice if isinstance(turn.renderer, ConsentTexts) else await self.notice(respondent)
        channel, key = turn.chat.channel, f"consent:{turn.key}"

        def accepted(step: engine.Step, before: SessionRecord) -> list[ConsentRecord]:
            if before.status != engine.Status.CONSENT.value or step.state.started_at is None:
                return []
            shown = notice.consent(ui_language(step.state.language), channel)
            return [ConsentRecord(respondent.id, version=shown.version, sha256=shown.sha256, language=shown.language,
                                  channel=shown.channel, text=shown.text, at=self.clock().isoformat(), key=key)]
        return accepted

    async def silenced(self, respondent: Respondent) -> bool:
        """The person withdrew: nothing is sent to them but the state of their request."""
        return respondent.disposition == "refused" and await self.storage.active_rights_request(respondent.id) is not None

    # -- the person's rights -----------------------------------------------------------------------

    async def intercept(self, core: ChatCore, turn: Turn, incoming: Incoming, respondent: Respondent | None,
                        language: str) -> tuple[bool, str | None]:
        """(handled, button notice): /privacy, a withdrawal, or anything from a person who withdrew."""
        if isinstance(incoming, Text) and incoming.text.lstrip().startswith("/"):
            as_typed = typed(incoming.text)  # a command typed where text is taken (the web's answer box)
            if isinstance(as_typed, Command) and as_typed.name in RIGHTS_COMMANDS:
                incoming = as_typed
        command = incoming.name.lower() if isinstance(incoming, Command) else None
        rid = respondent.id if respondent else None
        if command == "privacy":
            held = Notice(await self.held(turn.chat, respondent, language), rights="held") if respondent \
                else Notice(say("privacy", language))
            return True, await core._send(turn, [held], language, rid)
        if respondent is None and (command in RIGHTS_COMMANDS or (isinstance(incoming, Text)
                                                                 and asks_erasure(incoming.text))):
            return True, await core._send(turn, [Notice(say("rights_nothing_held", language))], language)
        if respondent is None or isinstance(incoming, Blocked):
            return False, None
        state = await self.request_state(respondent, language)
        if state is not None:
            return True, await core._send(turn, [state], language, rid, "rights")
        if not (command in RIGHTS_COMMANDS or (isinstance(incoming, Text) and asks_erasure(incoming.text))):
            return False, None
        if command is None or fold(incoming.argument).rstrip(".!") not in _YES:
            return True, await core._send(turn, [Notice(say("rights_confirm", language), rights="confirm")],
                                          language, rid, "rights")
        at = self.clock()
        project = await self.project_of(respondent)
        due = deadlines(at.astimezone(_ZONE).date(), project.privacy.holiday_dates() if project else ())
        request, new = await self.storage.open_rights_request(
            respondent.id, kind="withdraw_delete", channel=turn.chat.channel, bot=turn.chat.bot, language=language,
            at=at.isoformat(), acknowledge_by=due.acknowledge_by.isoformat(), handle_by=due.handle_by.isoformat())
        if new:
            await self._tell_coordinators(core, turn, request.id, respondent.pseudonym, due)
        text = say("rights_opened", language, id=request.id, at=local(request.opened_at),
                   handle_by=day(request.handle_by))
        return True, await core._send(turn, [Notice(text, rights="state")], language, rid, "rights")

    async def request_state(self, respondent: Respondent, language: str) -> Notice | None:
        """The state of the person's open request, all that is said to them while it is open."""
        # A withdrawal made the person "refused": only then can a request be open (one read saved
        # on every other message).
        if respondent.disposition != "refused":
            return None
        active = await self.storage.active_rights_request(respondent.id)
        if active is None:
            return None
        return Notice(say("rights_pending", language, id=active.id, handle_by=day(active.handle_by)), rights="state")

    async def _tell_coordinators(self, core: ChatCore, turn: Turn, request_id: int, pseudonym: str, due) -> None:
        """The bot's coordinators hear of a new request and its deadlines at once (pseudonym only),
        those who opened a chat with the bot (it cannot write first)."""
        text = say("rights_request_coordinator", "vi", id=request_id, pseudonym=pseudonym,
                   acknowledge_by=f"{due.acknowledge_by:%d/%m/%Y}", handle_by=f"{due.handle_by:%d/%m/%Y}")
        for coordinator in sorted(core.coordinators):
            if not await self.storage.chat_reached(turn.chat.channel, turn.chat.bot, coordinator):
                continue
            calls, _ = turn.renderer.render([Notice(text)], coordinator, "vi")
            await self.surveys.send(Chat(turn.chat.channel, turn.chat.bot, coordinator, coordinator), calls,
                                    f"rights-coordinator:{request_id}:{coordinator}", self.clock())

    async def held(self, chat: Chat, respondent: Respondent, language: str) -> str:
        """What is held about the person: which fields, never the secrets themselves."""
        notice = await self.notice(respondent)
        try:
            personal = await self.storage.personal(respondent.id)
        except NotFound:
            personal = None
        stored, missing = say("privacy_stored", language), say("privacy_not_stored", language)
        phone = personal.phone if personal else None
        chats = sorted({_CHANNEL_NAMES.get(c[0], c[0]) for c in await self.storage.chats_of(respondent.id)})
        answered = 0
        form = self.surveys.form_of(respondent)
        session = await self.storage.latest_session(respondent.id, form.form_id) if form else None
        if session is not None:
            asked = {question.name for question in form.asked}  # not metadata such as `start`
            answered = sum(a.status == "answered" and name in asked
                           for name, a in (await self.storage.answers(session.id)).items())
        lines = [say("privacy_held_title", language, controller=notice.controller(language)),
                 say("privacy_field_name", language, value=stored if personal and personal.name else missing),
                 say("privacy_field_phone", language, value=f"•••{phone[-3:]}" if phone else missing),
                 say("privacy_field_chats", language, value=", ".join(chats) or missing),
                 say("privacy_field_answers", language, count=answered, pseudonym=respondent.pseudonym)]
        consents = await self.storage.consents_of(respondent.id)
        if consents:
            last = consents[-1]
            lines.append(say("privacy_field_consent", language, version=last.version, at=local(last.at),
                             channel=_CHANNEL_NAMES.get(last.channel, last.channel)))
        else:
            lines.append(say("privacy_no_consent", language))
        project = await self.project_of(respondent)
        if project is not None:
            lines.append(say("privacy_field_retention", language,
                             date=f"{purge_date(project.closes, notice.retention_days):%d/%m/%Y}"))
        return "\n".join(lines) + "\n" + say("privacy_rights", language)

    # -- beside the bot ----------------------------------------------------------------------------

    async def notify_fulfilled(self, channel: str, bot: str, renderer: Renderer) -> int:
        """Tell each person whose request was fulfilled, on this bot, then forget their chat."""
        told = 0
        for request, chat_id in await self.storage.requests_to_notify(channel, bot):
            text = say("rights_done", request.language, id=request.id)
            calls, _ = renderer.render([Notice(text)], chat_id, request.language)
            await self.surveys.send(Chat(channel, bot, chat_id, chat_id), calls, f"rights-done:{request.id}",
                                    self.clock(), request.respondent_id)
            told += await self.storage.close_rights_request(request.id, self.clock().isoformat())
        return told

    async def watch(self, channel: str, bot: str, renderer: Renderer, stop: asyncio.Event, *,
                    notify_every: float = 2.0, retention_every: float = 3600.0) -> None:
        """Until ``stop``: tell people their request is done (every few seconds: a coordinator may
        fulfil it in another process) and make the retention pass (hourly; idempotent)."""
        retention_at = None
        while not stop.is_set():
            try:
                await self.notify_fulfilled(channel, bot, renderer)
                if retention_at is None or self.monotonic() - retention_at >= retention_every:
                    retention_at = self.monotonic()
                    for outcome in await retention_pass(self.storage, self.clock(), dry_run=False):
                        if any(outcome.counts.values()):
                            log.info("retention: survey %s: purged %s", outcome.survey_id, outcome.counts)
                    if unreferenced := await unreferenced_media_pass(self.storage, self.clock(), dry_run=False):
                        log.info("retention: deleted %d media file(s) no answer refers to", unreferenced)
            except Exception:  # a failed pass must not stop the bot; the next one tries again
                log.exception("%s/%s: privacy pass failed", channel, bot)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), notify_every)
