"""The chat rules every channel shares: commands, linking, survey dates, which texts to say.

A channel parses its platform's input into an `Incoming` event and calls `ChatCore.handle`; the
core decides, drives the engine through `ChatSurveys`, and hands what to say to the channel's
renderer. Updates of one chat are handled one at a time, in order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bot.chat.coordination import CoordinatorDesk
from bot.chat.events import (
    BACK, CHOOSE, CONFIRM_STOP, DONE, SKIP, TICK, TOGGLE, UNSUPPORTED, UNTICK,
    AskPhone, Blocked, Command, ConfirmStop, Contact, Incoming, Joined, Leave, Location, Media, Notice, NotText,
    Outgoing,
    Press,
    Renderer, Text,
)
from bot.chat.failures import TurnFailures, answer_failed, rendered_mark, tried_twice_if_transient
from bot.chat.fieldwork import Fieldwork, Phase
from bot.chat.media import DEFAULT_MEDIA_LIMIT, media_prompt, receive
from bot.chat.privacy import ChatPrivacy
from bot.chat.surveys import LINK_MESSAGES, Chat, ChatLocks, ChatSurveys, Link
from bot.invitations import PhoneError, is_link_code, is_typed_code, normalise_phone, normalise_typed_code
from bot.outbox import REPLY
from storage import Respondent, SessionRecord
from storage.deliveries import Deliveries
from surveys import engine
from surveys.engine import fold
from surveys.messages import say, ui_language

log = logging.getLogger(__name__)

#: Group chats whose updates were logged as ignored, remembered up to this many (then forgotten
#: all at once: a chat may be logged a second time, the log never grows without bound).
_GROUPS_REMEMBERED = 10_000

#: The coordinators hear of a brute force on codes at most this often.
_FLOOD_ALERT_EVERY = dt.timedelta(minutes=15)

#: Typed words that go back or skip, on every channel and every question type (never a bare
#: number: 0 is an answer to "how many times?").
BACK_WORDS = {"<", "quay lai", "back", "/back"}
SKIP_WORDS = {"bo qua", "skip"}
#: "/stop có" confirms at once where there are no buttons.
_YES = {"co", "yes", "dong y", "y"}
#: The disposition of a person whose (hard-quota) stratum filled before they could finish.
QUOTA_FULL = "quota_full"
#: Where people already answering may go on: they had said yes, and were not done.
_IN_PROGRESS = (engine.Status.ACTIVE, engine.Status.PAUSED)


@dataclass
class Turn:
    """One incoming event being handled: where replies go and how they are rendered."""

    chat: Chat
    key: str
    renderer: Renderer
    pressed: Any = None
    #: Set once the engine accepted a step: a new prompt (or the end) is on its way.
    prompted: bool = False
    #: The language of a chat nobody is linked to yet, as its channel knows it (a web page's
    #: switch before any code); a linked chat speaks its session's.
    language: str = "vi"
    #: The language the turn speaks, once known (a linked chat's session's): a failed turn's apology's.
    spoken: str | None = None

    @property
    def typed(self) -> bool:
        return not self.renderer.capabilities.buttons


class ChatCore:
    def __init__(self, surveys: ChatSurveys, clock: Callable[[], dt.datetime], *,
                 coordinators: Sequence[str] = (), desk: CoordinatorDesk | None = None,
                 fieldwork: Fieldwork | None = None, deliveries: Deliveries | None = None,
                 privacy: ChatPrivacy | None = None, locks: Any = None, media_limit: int = DEFAULT_MEDIA_LIMIT):
        self.surveys = surveys
        self.clock = clock
        self.coordinators = {str(c) for c in coordinators}
        self.desk = desk
        self.fieldwork = fieldwork
        self.deliveries = deliveries
        self.privacy = privacy
        #: The largest file a media question takes, in bytes (`bot/chat/media.py`).
        self.media_limit = media_limit
        # One turn per chat: in this process (ChatLocks), or across processes (bot.processes).
        self.locks = locks if locks is not None else ChatLocks()
        self._groups_logged: set[str] = set()
        self._flood_alerted_at: dt.datetime | None = None
        self.failures = TurnFailures()

    async def handle(self, chat: Chat, key: str, incoming: Incoming, renderer: Renderer,
                     pressed: Any = None, *, language: str = "vi") -> str | None:
        """Handle one event; returns the short notice to show on a pressed button, if any.
        ``language``: what to speak while nobody is linked to the chat.

        Never raises for a turn that failed inside khaosat (bot/chat/failures.py): it is tried once
        more if the database was only busy, else logged and answered with a polite line."""
        turn = Turn(chat, key, renderer, pressed, language=ui_language(language))
        mark = rendered_mark(renderer)
        try:
            if not chat.private:
                return await self._not_private(turn, incoming)
            async with self.locks[chat.chat_id]:
                async def attempt() -> str | None:
                    nonlocal turn
                    # A fresh turn each try: nothing left over from a failed one.
                    turn = Turn(chat, key, renderer, pressed, language=ui_language(language))
                    return await self._handle(turn, incoming)
                return await tried_twice_if_transient(turn, attempt)
        except Exception as error:  # noqa: BLE001 - one failed turn must not reach the person as a traceback
            # The channel's own renderer: the turn may have wrapped it (bot/chat/privacy.py).
            return await answer_failed(self, dataclasses.replace(turn, renderer=renderer), error, mark)

    async def _not_private(self, turn: Turn, incoming: Incoming) -> None:
        """Surveys happen in private chats only: a group's, supergroup's or channel's updates bind
        nobody and get no reply (a code sent there would open that person's survey for the whole
        group); the bot leaves a group it is added to. Logged once per chat."""
        chat = turn.chat
        first = chat.chat_id not in self._groups_logged
        if first:
            if len(self._groups_logged) >= _GROUPS_REMEMBERED:
                self._groups_logged.clear()
            self._groups_logged.add(chat.chat_id)
            log.info("%s/%s: updates from group chat %s are ignored (surveys happen in private chats only)",
                     chat.channel, chat.bot, chat.chat_id)
        if first or isinstance(incoming, Joined):  # also a group the bot was in before it left groups
            await self._send(turn, [Leave()], "vi", suffix="leave")
        return None

    # -- dispatch ------------------------------------------------------------------------------

    async def _handle(self, turn: Turn, incoming: Incoming) -> str | None:
        if isinstance(incoming, Blocked):
            await self._blocked(turn)
            return None
        if isinstance(incoming, Joined):  # a person unblocked the bot: nothing to say until they write
            return None
        respondent, session = await self.surveys.linked(turn.chat)
        # The state the engine last left the session in, kept by Conversations: no decoding on
        # the answering path, where only its language, status and question are read.
        state = self.surveys.conversations.states.decode(session.id, session.state) if session is not None else None
        language = ui_language(state.language) if state else turn.language
        turn.spoken = language
        if self.privacy is not None:  # /privacy, a withdrawal, anything from a person who withdrew
            handled, notice = await self.privacy.intercept(self, turn, incoming, respondent, language)
            if handled:
                return notice
        if isinstance(incoming, Command):
            name = incoming.name.lower()
            if self.desk is not None and name in self.desk.commands and turn.chat.user_id in self.coordinators:
                return await self._send(turn, await self.desk.run(name, turn.key, turn.renderer.capabilities),
                                        language)
            if name in ("help", "privacy"):  # /privacy: here only without bot/chat/privacy.py
                return await self._send(turn, [Notice(say(f"{name}_typed" if turn.typed and name == "help"
                                                          else name, language))], language)
            if name == "start":
                return await self._start(turn, incoming.argument.strip(), respondent)
        if isinstance(incoming, Contact):
            return await self._contact(turn, incoming)
        if respondent is None:
            if isinstance(incoming, Text):
                return await self._unlinked(turn, incoming.text)
            return await self._welcome(turn)
        if respondent.disposition == QUOTA_FULL:
            return await self._quota_ended(turn, respondent, language)
        notice = await self._linked(turn, incoming, respondent, session, state, language)
        if not turn.prompted and state is not None and state.current is not None:
            await self._show_again_if_lost(turn, respondent, session)
        return notice

    async def _linked(self, turn: Turn, incoming: Incoming, respondent: Respondent, session: SessionRecord | None,
                      state: engine.SessionState | None, language: str) -> str | None:
        at = self.clock()
        prompt = media_prompt(self, respondent, state) if isinstance(incoming, Media) else None
        if isinstance(incoming, Media) and prompt is None:
            incoming = NotText()  # a photo sent to a question that asks for none: fetch nothing
        if isinstance(incoming, NotText) and (prompt := media_prompt(self, respondent, state)) is not None:
            # A media question, and what came is nothing the platform passed on (Zalo's voice notes):
            # the question again, whose words say what this channel can carry.
            return await self._send(turn, [Notice(say("media_not_received", language)),
                                           dataclasses.replace(prompt, update=False)], language, error=True)
        if isinstance(incoming, NotText):
            key = "not_text_typed" if turn.typed else "not_text"
            if incoming.kind == UNSUPPORTED and self._asks_location(respondent, state):
                key = "zalo_location_not_passed"  # most likely a location shared from Zalo's map
            return await self._send(turn, [Notice(say(key, language))], language, error=True)
        if isinstance(incoming, Command) and incoming.name.lower() == "stop":
            return await self._stop(turn, respondent, incoming.argument, state, language)
        closed = await self._closed(respondent, state, at, language)
        if closed is not None:
            return await self._send(turn, [Notice(closed)], language, respondent.id)
        if isinstance(incoming, Command):
            name, argument = incoming.name.lower(), incoming.argument.strip().lower()
            if name == "lang" and not argument:
                return await self._send(turn, [Notice(self._languages(respondent, language))], language)
            if name in ("lang", "resume", "back"):
                event = {"lang": lambda: engine.SetLanguage(argument, at), "resume": lambda: engine.Resume(at),
                         "back": lambda: engine.Back(at)}[name]()
                return await self._drive(turn, respondent, event)
            return await self._send(turn, [Notice(say("unknown_command", language))], language, error=True)
        if isinstance(incoming, Press):
            event = _press_event(incoming, at)
            if event is None:
                return None
            return await self._drive(turn, respondent, event, session)
        if isinstance(incoming, Media):
            return await receive(self, turn, respondent, session, state, prompt, incoming, language)
        if isinstance(incoming, Location):
            return await self._drive(turn, respondent, engine.Locate(incoming.latitude, incoming.longitude, at,
                                                                     accuracy=incoming.accuracy), session)
        text = incoming.text.strip()
        folded = fold(text)
        if folded in BACK_WORDS:
            return await self._drive(turn, respondent, engine.Back(at))
        if folded in SKIP_WORDS:
            return await self._drive(turn, respondent, engine.Reply("", at))
        return await self._drive(turn, respondent, engine.Reply(text, at, incoming.seq), session)

    def _asks_location(self, respondent: Respondent, state: engine.SessionState | None) -> bool:
        """Whether the question on screen is a geopoint."""
        form = self.surveys.form_of(respondent)
        if form is None or state is None or state.status not in _IN_PROGRESS:
            return False
        prompt = engine.current_prompt(form, state)
        return prompt is not None and prompt.kind is engine.PromptKind.GEOPOINT

    # -- commands ------------------------------------------------------------------------------

    async def _start(self, turn: Turn, payload: str, respondent: Respondent | None) -> str | None:
        at = self.clock()
        if payload and payload in self.surveys.open_codes:
            return await self._open(turn, payload)
        if payload and (is_link_code(payload) or is_typed_code(payload)):
            respondent = await self._link_code(turn, payload)
        elif payload:
            outcome, _ = await self.surveys.link_code(turn.chat, payload, "link", turn.key, at,  # a wrong code
                                                      flood=await self._code_flood(turn, at))
            return await self._send(turn, [Notice(say(LINK_MESSAGES.get(outcome, "code_invalid"), turn.language))],
                                    turn.language, suffix="refused", error=True)
        if respondent is None:
            return await self._welcome(turn)
        return await self._begin(turn, respondent)

    async def _stop(self, turn: Turn, respondent: Respondent, argument: str, state: engine.SessionState | None,
                    language: str) -> str | None:
        at = self.clock()
        if fold(argument).rstrip(".!") in _YES:
            return await self._drive(turn, respondent, engine.Stop(at, refuse=True))
        if turn.typed:
            text = say("stop_confirm", language) + " " + say("zalo_stop_how", language)
            return await self._send(turn, [Notice(text)], language, respondent.id)
        # The buttons carry the prompt's number: once the person answers on, they are stale.
        confirm = ConfirmStop(say("stop_confirm", language), state.seq if state else 0,
                              say("stop_yes", language), say("stop_no", language))
        return await self._send(turn, [confirm], language, respondent.id)

    def _languages(self, respondent: Respondent, language: str) -> str:
        form = self.surveys.form_of(respondent)
        names = [f"{lang.code} ({lang.name})" if lang.name and lang.name != lang.code else lang.code
                 for lang in (form.languages if form else ())]
        return say("languages_available", language, languages=", ".join(names) or "vi")

    # -- linking -------------------------------------------------------------------------------

    async def _unlinked(self, turn: Turn, text: str) -> str | None:
        """A chat nobody is linked to yet: an open-mode keyword, or a code (even inside a sentence)."""
        keyword = next((code for code in self.surveys.open_codes if fold(code) == fold(text)), None)
        if keyword is not None:
            return await self._open(turn, keyword)
        code = text.strip() if is_link_code(text.strip()) else typed_code_in(text)
        if code is None:
            return await self._welcome(turn, error=True)
        respondent = await self._link_code(turn, code)
        return None if respondent is None else await self._begin(turn, respondent)

    async def _open(self, turn: Turn, keyword: str) -> str | None:
        respondent = await self.surveys.open_respondent(turn.chat, keyword, turn.key, self.clock())
        if respondent is None:
            return None
        if await self.surveys.already_answered(respondent):
            return await self._send(turn, [Notice(say("open_already_answered", "vi"))], "vi", respondent.id, "done")
        return await self._begin(turn, respondent)

    async def _link_code(self, turn: Turn, code: str) -> Respondent | None:
        kind = "link" if is_link_code(code) else "typed"
        normalised = code if kind == "link" else normalise_typed_code(code)
        at = self.clock()
        outcome, respondent = await self.surveys.link_code(turn.chat, normalised, kind, turn.key, at,
                                                           code_is_key=turn.renderer.capabilities.code_is_key,
                                                           flood=await self._code_flood(turn, at))
        return await self._after_link(turn, outcome, respondent)

    async def _code_flood(self, turn: Turn, at: dt.datetime) -> bool:
        """Whether the bot-wide limit on wrong codes has tripped; the coordinators hear of it (and the
        log), at most once a quarter of an hour."""
        failures = await self.surveys.code_flood(turn.chat, at)
        if failures is None:
            return False
        chat = turn.chat
        if self._flood_alerted_at is None or at - self._flood_alerted_at >= _FLOOD_ALERT_EVERY:
            self._flood_alerted_at = at
            text = say("code_flood_alert", "vi", bot=chat.bot, count=failures)
            await self.notify_coordinators(chat.channel, chat.bot, turn.renderer, text, "code-flood",
                                           at.isoformat(timespec="minutes"))
            log.warning("%s/%s: %d wrong codes in the last minute: only chats with no wrong code may try now",
                        chat.channel, chat.bot, failures)
        return True

    async def _contact(self, turn: Turn, contact: Contact) -> str | None:
        if not contact.own:
            return await self._send(turn, [Notice(say("contact_not_own", "vi"))], "vi", suffix="refused")
        try:
            phone = normalise_phone(contact.phone)
        except PhoneError:
            return await self._send(turn, [Notice(say("phone_not_found", "vi"), True)], "vi", suffix="refused")
        outcome, respondent = await self.surveys.link_phone(turn.chat, phone, turn.key, self.clock())
        respondent = await self._after_link(turn, outcome, respondent, closes_phone_request=True)
        return None if respondent is None else await self._begin(turn, respondent)

    async def _after_link(self, turn: Turn, outcome: Link, respondent: Respondent | None,
                          closes_phone_request: bool = False) -> Respondent | None:
        if outcome is Link.ALREADY:
            return respondent
        notice = Notice(say(LINK_MESSAGES[outcome], turn.language), closes_phone_request)
        linked = outcome is Link.LINKED
        await self._send(turn, [notice], turn.language, respondent.id if respondent else None,
                         "linked" if linked else "refused", error=not linked and not closes_phone_request)
        return respondent

    async def _welcome(self, turn: Turn, *, error: bool = False) -> str | None:
        """The welcome of a chat nobody is linked to; ``error``: in answer to text that held no code."""
        language = turn.language
        if turn.renderer.capabilities.phone_request:
            output: Outgoing = AskPhone(say("welcome_unlinked", language), say("share_phone", language))
        else:
            output = Notice(say("zalo_welcome", language))
        if turn.pressed is not None:
            return await self._send(turn, [engine.Say(say("welcome_unlinked", language), engine.Tone.STALE)],
                                    language)
        return await self._send(turn, [output], language, suffix="welcome", error=error)

    async def _blocked(self, turn: Turn) -> None:
        """A person who blocks the bot is unreachable now, before any reminder bounces."""
        respondent = await self.surveys.respondent(turn.chat)
        if respondent is not None and respondent.disposition not in ("completed", "refused"):
            await self.surveys.storage.set_disposition(respondent.id, "unreachable", self.clock().isoformat(),
                                                       reason=f"{turn.chat.channel}: bot blocked", key=turn.key)

    async def _quota_ended(self, turn: Turn, respondent: Respondent, language: str) -> str | None:
        """The person's stratum filled (a hard quota; they were told so, once, by the step that found
        it full): their session has ended, so nothing they send asks a question again, which could no
        longer count; each message gets a short word that it has ended."""
        return await self._send(turn, [Notice(say("quota_ended", language))], language, respondent.id, "ended",
                                error=True)

    # -- survey dates --------------------------------------------------------------------------

    async def _closed(self, respondent: Respondent, state: engine.SessionState | None, at: dt.datetime,
                      language: str) -> str | None:
        """Why the survey takes no answer from this person now, or None when it does."""
        if self.fieldwork is None:
            return None
        window = await self.fieldwork.window(respondent.form_id or self.surveys.default_form)
        phase = window.phase(at) if window is not None else Phase.OPEN
        if phase is Phase.OPEN or (state is not None and state.status is engine.Status.COMPLETED):
            return None
        if phase is Phase.NOT_YET:
            return say("survey_not_open", language, title=window.title, opens=f"{window.opens:%d/%m/%Y}")
        if phase is Phase.GRACE and state is not None and state.started_at is not None \
                and state.status in _IN_PROGRESS:
            return None
        return say("survey_closed", language, title=window.title, closes=f"{window.closes:%d/%m/%Y}")

    async def announce_fieldwork(self, channel: str, bot: str, renderer: Renderer) -> int:
        """Tell this bot's coordinators that fieldwork of its surveys opened or closed, once each
        (the outbox's dedupe key makes a repeated call, or a restart, send nothing new)."""
        if self.fieldwork is None:
            return 0
        at, sent = self.clock(), 0
        for window in await self.fieldwork.windows(self.surveys.forms):
            phase = window.phase(at)
            if phase is Phase.NOT_YET:
                continue
            opened = phase is Phase.OPEN
            text = say("fieldwork_opened" if opened else "fieldwork_closed", "vi", title=window.title,
                       opens=f"{window.opens:%d/%m/%Y}", closes=f"{window.closes:%d/%m/%Y}", grace=window.grace_days)
            sent += await self.notify_coordinators(channel, bot, renderer, text, "fieldwork",
                                                   f"{window.survey_id}:{'open' if opened else 'closed'}")
        return sent

    async def notify_coordinators(self, channel: str, bot: str, renderer: Renderer, text: str, kind: str,
                                  what: str) -> int:
        """Queue ``text`` to each of this bot's coordinators, once per ``kind`` and ``what`` (the outbox's
        dedupe key makes a repeated call, or a restart, send nothing new); returns to how many."""
        sent = 0
        for coordinator in sorted(self.coordinators):
            if not await self.surveys.storage.chat_reached(channel, bot, coordinator):
                continue  # a bot cannot write first: only to coordinators who opened the chat
            chat = Chat(channel, bot, coordinator, coordinator)
            calls, _ = renderer.render([Notice(text)], coordinator, "vi")
            await self.surveys.send(chat, calls, f"{kind}:{channel}:{bot}:{coordinator}:{what}", self.clock())
            sent += 1
        return sent

    async def _begin(self, turn: Turn, respondent: Respondent) -> str | None:
        if respondent.disposition == QUOTA_FULL:
            return await self._quota_ended(turn, respondent, "vi")
        at = self.clock()
        state = await self.surveys.state(turn.chat, respondent, at)
        language = ui_language(state.language) if state else "vi"
        closed = await self._closed(respondent, state, at, language)
        if closed is not None:
            return await self._send(turn, [Notice(closed)], language, respondent.id, "closed")
        # The session's seed (random(), uuid(), shuffled choices) is drawn here, outside the
        # sans-I/O engine, and kept in the event log with the Start event.
        return await self._drive(turn, respondent, engine.Start(at=at, seed=secrets.token_hex(8)))

    # -- the engine ----------------------------------------------------------------------------

    async def _drive(self, turn: Turn, respondent: Respondent, event: engine.Event,
                     session: SessionRecord | None = None) -> str | None:
        notice: str | None = None
        if self.privacy is not None:  # the survey's own consent text
            turn.renderer = await self.privacy.renderer(turn.renderer, turn.chat.channel, respondent)

        def render(step: engine.Step) -> list:
            nonlocal notice
            calls, notice = turn.renderer.render(step.say, turn.chat.chat_id, step.state.language,
                                                 accepted=step.accepted, pressed=turn.pressed)
            return calls

        consents = await self.privacy.consents(turn, respondent) if self.privacy is not None else None
        handled = await self.surveys.drive(turn.chat, respondent, event, turn.key, render, session, consents)
        if handled is None:
            return await self._send(turn, [Notice(say("no_survey", "vi"))], "vi", respondent.id, "none")
        turn.prompted = handled.step.accepted
        return notice

    async def _show_again_if_lost(self, turn: Turn, respondent: Respondent, session: SessionRecord | None) -> None:
        """The last reply to this person may never have arrived (a crash while sending, a failed
        send): they may see no question at all, so whatever they sent, show it again."""
        if self.deliveries is None or not await self.deliveries.last_reply_uncertain(
                turn.chat.channel, turn.chat.bot, turn.chat.chat_id, respondent.id, REPLY, turn.key):
            return
        await self.show_current(turn.chat, respondent, f"{turn.key}:again", turn.renderer)

    async def show_current(self, chat: Chat, respondent: Respondent, key: str, renderer: Renderer) -> bool:
        """Send the question on screen again, as a new message; False when there is none."""
        form = self.surveys.form_of(respondent)
        state = await self.surveys.state(chat, respondent, self.clock())
        if form is None or state is None or state.status not in (engine.Status.ACTIVE, engine.Status.CONSENT):
            return False
        if self.privacy is not None and await self.privacy.silenced(respondent):
            return False
        prompt = engine.current_prompt(form, state)
        if prompt is None:
            return False
        if self.privacy is not None:
            renderer = await self.privacy.renderer(renderer, chat.channel, respondent)
        calls, _ = renderer.render((dataclasses.replace(prompt, update=False),), chat.chat_id, state.language)
        await self.surveys.send(chat, calls, key, self.clock(), respondent.id)
        return True

    async def screen(self, chat: Chat) -> tuple[str, list[Outgoing]] | None:
        """What a chat shows now, for a channel that draws whole pages (the web) rather than
        sending messages: the prompt on screen, or what the session's status means; None for a
        chat nobody is linked to. Reads only."""
        respondent, session = await self.surveys.linked(chat)
        if respondent is None:
            return None
        form = self.surveys.form_of(respondent)
        state = self.surveys.conversations.states.decode(session.id, session.state) if session is not None else None
        if form is None or state is None:
            return "vi", []
        language = ui_language(state.language)
        if self.privacy is not None and (pending := await self.privacy.request_state(respondent, language)):
            return state.language, [pending]  # a withdrawal is open: its state, nothing else
        if state.status in (engine.Status.ACTIVE, engine.Status.CONSENT):
            prompt = engine.current_prompt(form, state)
            return state.language, [dataclasses.replace(prompt, update=False)] if prompt is not None else []
        texts = {engine.Status.COMPLETED: ("already_completed", engine.Tone.THANKS),
                 engine.Status.REFUSED: ("refused_state", engine.Tone.INFO),
                 engine.Status.PAUSED: ("paused", engine.Tone.INFO)}
        if state.status in texts:
            key, tone = texts[state.status]
            return state.language, [engine.Say(say(key, language), tone)]
        return state.language, []

    async def _send(self, turn: Turn, outputs: list[Outgoing], language: str, respondent_id: int | None = None,
                    suffix: str = "", *, error: bool = False) -> str | None:
        """Render and queue ``outputs``; ``error``: they answer something that could not be used (junk,
        a wrong code), so they are coalesced per chat and wait behind real answers' replies."""
        calls, notice = turn.renderer.render(outputs, turn.chat.chat_id, language, pressed=turn.pressed)
        key = f"{turn.key}:{suffix}" if suffix else turn.key
        await self.surveys.send(turn.chat, calls, key, self.clock(), respondent_id, error=error)
        return notice


def _press_event(press: Press, at: dt.datetime) -> engine.Event | None:
    events = {
        CHOOSE: lambda: engine.Choose(press.key, press.seq, at),
        TOGGLE: lambda: engine.Toggle(press.key, press.seq, at),
        TICK: lambda: engine.Toggle(press.key, press.seq, at, on=True),
        UNTICK: lambda: engine.Toggle(press.key, press.seq, at, on=False),
        DONE: lambda: engine.Done(press.seq, at),
        BACK: lambda: engine.Back(at, press.seq),
        SKIP: lambda: engine.Reply("", at, press.seq),
        CONFIRM_STOP: lambda: (engine.Stop(at, refuse=True, seq=press.seq) if press.key == "yes"
                               else engine.Resume(at)),
    }
    make = events.get(press.op)
    return make() if make else None


def typed_code_in(text: str) -> str | None:
    """An invitation code anywhere in what was typed: "Mã của tôi là AB3D EF9H" → "AB3D EF9H".

    Tried on the whole text, then on each word and each pair of neighbouring words (a code is
    often typed in two halves, as printed on the letter).
    """
    if is_typed_code(text):
        return text
    words = text.replace(":", " ").split()
    for size in (1, 2):
        for start in range(len(words) - size + 1):
            candidate = " ".join(words[start:start + size])
            if is_typed_code(candidate):
                return candidate
    return None


__all__ = ["BACK_WORDS", "SKIP_WORDS", "ChatCore", "typed_code_in"]
