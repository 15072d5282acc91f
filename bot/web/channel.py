"""The web channel: form posts parsed into the chat core's events, its replies drawn as a page.

A browser is a chat: a random token in an HttpOnly cookie is its chat id (and its "bot", so one
person may link a browser on each of their devices: ``chat_links`` keeps one link per bot and
person). The person links it by opening their invitation link ``/s/<code>`` (the core's code
linking, with ``code_is_key``: on the web the code is the key, whichever device holds it), by
typing the code, or by an open-mode keyword of a public QR code.

How replies are delivered and recorded: a web step's replies are not messages. The renderer
queues no call (so nothing of the web reaches the outbox, and no messenger ever tries to send
it); it keeps what the core said for the HTTP response of that very request, which shows it on
the next page (POST, then a redirect, then GET). What is recorded is what the other channels
record too: the event in the session's log and the answers (``Conversations.handle``), and the
link attempts. A page loaded without a fresh reply (a reload, a new device) is drawn from the
stored session (``ChatCore.screen``), so it never depends on what this process remembers.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from bot.chat.core import ChatCore
from bot.chat.events import (
    BACK, CHOOSE, CONFIRM_STOP, DONE, SKIP, TICK, UNTICK,
    Call, Capabilities, Command, Incoming, NotText, Outgoing, Press, Text,
)
from bot.chat.privacy import WITHDRAW, WITHDRAW_YES
from bot.chat.surveys import Chat, Link
from storage import personal_crypto
from storage.links import Links
from surveys import engine
from surveys.engine import Ask, PromptKind

CHANNEL = "web"
#: The web's own link attempts, per client address (``GuessLimit``), apart from the core's per chat.
ADDRESS_CHANNEL = "web-address"
WRONG_CODE = Link.INVALID.value
#: How long a reply waits for the GET that shows it (the redirect comes within a second).
_REPLY_SECONDS = 120.0
_REPLIES_KEPT = 10_000


class WebReplies:
    """The core's renderer for one web request: it queues nothing and keeps what was said."""

    capabilities = Capabilities(buttons=True, code_is_key=True)

    def __init__(self) -> None:
        self.outputs: list[Outgoing] = []
        self.language = "vi"

    def render(self, outputs: Sequence[Outgoing], chat_id: str, language: str, *, accepted: bool = True,
               pressed: Any = None) -> tuple[list[Call], str | None]:
        self.outputs.extend(outputs)
        self.language = language
        return [], None

    # A failed turn's outputs (a step's prompt rendered before its write failed) are forgotten:
    # bot/chat/failures.py.
    def mark(self) -> tuple[int, str]:
        return len(self.outputs), self.language

    def rewind(self, mark: tuple[int, str]) -> None:
        del self.outputs[mark[0]:]
        self.language = mark[1]


@dataclass(frozen=True)
class Screen:
    """What one page shows: the texts said, the prompt (if any) and the language."""

    language: str
    said: tuple[Outgoing, ...] = ()
    ask: Ask | None = None
    linked: bool = True
    #: Where the form's ``appearance`` is ``field-list``: the group's questions after ``ask``.
    group: tuple[Ask, ...] = ()


def screen_of(outputs: Sequence[Outgoing], language: str, linked: bool = True) -> Screen:
    """A page from what the core said: every text, and only the last prompt (a select-multiple
    answered by several ticks re-draws the same prompt each time)."""
    asks = [o for o in outputs if isinstance(o, Ask)]
    said = tuple(o for o in outputs if not isinstance(o, Ask))
    return Screen(language, said, asks[-1] if asks else None, linked)


# -- parsing a form post -------------------------------------------------------------------------


def parse_form(form: Mapping[str, Any], getall: Callable[[str], list[str]]) -> list[Incoming]:
    """The events one posted form stands for; [] for a form that makes no sense (nothing happens).

    Fields: ``action`` (the button pressed: an answer, a command, ``withdraw``…), ``seq`` (the
    prompt the page showed), and the answer: ``choice`` (one option's key), ``ticked`` (options'
    keys, several) with ``was`` (those ticked when the page was drawn), or ``text``.
    """
    action = str(form.get("action", "answer"))
    seq_text = str(form.get("seq", ""))
    seq = int(seq_text) if seq_text.isascii() and seq_text.isdigit() and len(seq_text) < 10 else None
    if action == "code":
        return [Text(str(form.get("code", ""))[:200])] if str(form.get("code", "")).strip() else [NotText()]
    if action in ("start", "resume", "stop", "help", "privacy"):
        return [Command(action)]
    if action in ("withdraw", "withdraw_yes"):  # the data rights buttons: the core's withdrawal command
        return [Command(WITHDRAW, WITHDRAW_YES if action == "withdraw_yes" else "")]
    if action == "lang":
        language = str(form.get("lang", ""))[:10]
        return [Command("lang", language)] if language.isalpha() else []
    if seq is None:
        return []
    if action == "back":
        return [Press(BACK, seq)]
    if action == "skip":
        return [Press(SKIP, seq)]
    if action in ("stop_yes", "stop_no"):
        return [Press(CONFIRM_STOP, seq, "yes" if action == "stop_yes" else "no")]
    if action != "answer":
        return []
    if "choice" in form:
        return [Press(CHOOSE, seq, str(form["choice"])[:64])]
    if "multi" in form:
        ticked = {key[:64] for key in getall("ticked")}
        was = set(str(form.get("was", "")).split()) if form.get("was") else set()
        events: list[Incoming] = [Press(TICK, seq, key) for key in sorted(ticked - was)]
        events += [Press(UNTICK, seq, key) for key in sorted(was - ticked)]
        return events + [Press(DONE, seq)]
    if "text" in form:
        text = str(form["text"])[:5000]
        return [Text(text, seq)] if text.strip() else [Press(SKIP, seq)]
    return [NotText()]


# -- code guessing -------------------------------------------------------------------------------


class GuessLimit:
    """Wrong codes allowed per client address and in all per hour, beside the core's per-chat
    count (a browser that drops its cookie is a new chat; its address is not).

    Each wrong code is a link attempt in the database (channel ``web-address``, "bot" a hash of
    the address keyed by the data key: the address itself is not kept), so the limits hold
    across restarts and across several processes serving the pages."""

    def __init__(self, storage: Links, per_address: int, in_all: int, clock: Callable[[], dt.datetime],
                 window: dt.timedelta = dt.timedelta(hours=1)):
        self.storage, self.per_address, self.in_all = storage, per_address, in_all
        self.clock, self.window = clock, window

    @staticmethod
    def _address(address: str) -> str:
        return personal_crypto.codec().address_hash(address)

    async def allowed(self, address: str) -> bool:
        since = (self.clock() - self.window).isoformat()
        mine = await self.storage.count_bot_link_attempts(ADDRESS_CHANNEL, self._address(address), [WRONG_CODE], since)
        return mine < self.per_address and \
            await self.storage.count_channel_link_attempts(ADDRESS_CHANNEL, [WRONG_CODE], since) < self.in_all

    async def failed(self, address: str, chat_id: str = "") -> None:
        await self.storage.log_link_attempt(ADDRESS_CHANNEL, self._address(address), chat_id, WRONG_CODE,
                                            self.clock().isoformat(), key=f"{ADDRESS_CHANNEL}:{secrets.token_hex(12)}")


# -- the channel -----------------------------------------------------------------------------------


@dataclass
class _Kept:
    screen: Screen
    at: float


@dataclass
class WebChannel:
    """The web channel's use of the core: events in, a page's screen out."""

    core: ChatCore
    guesses: GuessLimit
    monotonic: Callable[[], float] = time.monotonic
    _replies: collections.OrderedDict[str, _Kept] = field(default_factory=collections.OrderedDict)

    @staticmethod
    def chat(token: str) -> Chat:
        return Chat(CHANNEL, token, token, token)

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(24)

    async def linked(self, token: str) -> bool:
        return await self.core.surveys.respondent(self.chat(token)) is not None

    async def handle(self, token: str, events: Sequence[Incoming], language: str = "vi") -> Screen:
        """Hand the events to the core one by one, as one chat's updates; what they said is kept
        for the next page of this browser. ``language``: the page's, before anyone is linked."""
        replies = WebReplies()
        key = f"web:{token[:12]}:{secrets.token_hex(8)}"
        for index, incoming in enumerate(events):
            await self.core.handle(self.chat(token), f"{key}#{index}", incoming, replies, language=language)
        screen = screen_of(replies.outputs, replies.language)
        if screen.ask is None and not await self.linked(token):
            # A browser nobody is linked to may ask too (/privacy): its page keeps the code form.
            screen = dataclasses.replace(screen, linked=False)
        self._keep(token, screen)
        return screen

    async def link(self, token: str, address: str, incoming: Incoming, language: str = "vi") -> Screen | None:
        """A code or keyword from a browser nobody is linked to; None when this address (or
        everyone together) has had too many wrong codes this hour."""
        if not await self.guesses.allowed(address):
            return None
        screen = await self.handle(token, [incoming], language)
        if not await self.linked(token):
            await self.guesses.failed(address, token)
            screen = dataclasses.replace(screen, linked=False)
            self._keep(token, screen)
        return screen

    def _keep(self, token: str, screen: Screen) -> None:
        self._replies[token] = _Kept(screen, self.monotonic())
        self._replies.move_to_end(token)
        while len(self._replies) > _REPLIES_KEPT:
            self._replies.popitem(last=False)

    async def current(self, token: str) -> Screen:
        """The page to show now, with the rest of a field-list group under its first question."""
        screen = await self._current(token)
        if screen.ask is None:
            return screen
        return dataclasses.replace(screen, group=await self.rest_of_group(token, screen.ask))

    async def rest_of_group(self, token: str, ask: Ask) -> tuple[Ask, ...]:
        """Where ``ask`` belongs to a group whose appearance is ``field-list``: the group's later
        questions, each drawn by the engine as it would ask it now (a page shows them all, as a
        paper form does; one that turns out not to apply is passed over by the engine)."""
        surveys = self.core.surveys
        respondent, session = await surveys.linked(self.chat(token))
        form = surveys.form_of(respondent) if respondent is not None else None
        if form is None or session is None or not form.has(ask.question):
            return ()
        question = form.question(ask.question)
        group = next((g for g in reversed(question.groups)
                      if "field-list" in (form.groups[g].appearance or "").split()), None)
        if group is None:
            return ()
        state = surveys.conversations.states.decode(session.id, session.state)
        later = [q.name for q in form.asked if group in q.groups and form.index(q.name) > form.index(question.name)]
        asks = (engine.current_prompt(form, dataclasses.replace(state, current=name)) for name in later)
        return tuple(a for a in asks if a is not None)

    async def handle_group(self, token: str, form: Mapping[str, Any], getall: Callable[[str], list[str]]) -> Screen:
        """A field-list page posted: each question's answer in turn, as long as the engine asks
        for a question of the page next (it stops at an error, or where the answers lead out)."""
        replies = WebReplies()
        key = f"web:{token[:12]}:{secrets.token_hex(8)}"
        posted = set(getall("q"))
        answered: set[str] = set()
        chat, count = self.chat(token), 0
        while True:
            now = await self.core.screen(chat)
            ask = screen_of(now[1], now[0]).ask if now is not None else None
            if ask is None or ask.question not in posted or ask.question in answered:
                break
            answered.add(ask.question)
            mine = {name: value for name, value in form.items() if name.endswith(f".{ask.question}")}
            fields = {name.rsplit(".", 1)[0]: value for name, value in mine.items()}
            fields.update(action="answer", seq=str(ask.seq))
            if ask.kind is PromptKind.ACKNOWLEDGE:
                fields["choice"] = "ok"
            elif ask.kind is PromptKind.SELECT_MULTIPLE:
                fields["multi"] = "1"
            elif ask.kind in (PromptKind.SELECT_ONE, PromptKind.CONSENT, PromptKind.RANK) and "choice" not in fields:
                fields["text"] = ""  # nothing chosen: skipped if it may be, else the engine says why
            events = parse_form(fields, lambda name: getall(f"{name}.{ask.question}"))
            for incoming in events:
                await self.core.handle(chat, f"{key}#{count}", incoming, replies)
                count += 1
        screen = screen_of(replies.outputs, replies.language)
        self._keep(token, screen)
        return screen

    async def _current(self, token: str) -> Screen:
        """The replies of this browser's last post if fresh, else what its session shows (the
        same on any device)."""
        kept = self._replies.pop(token, None)
        if kept is not None and self.monotonic() - kept.at < _REPLY_SECONDS:
            if kept.screen.ask is None and kept.screen.linked:
                # Texts only (an error on a stale press, the stop question): the prompt still on
                # screen goes below them.
                now = await self.core.screen(self.chat(token))
                ask = screen_of(now[1], now[0]).ask if now is not None else None
                if ask is not None:
                    return dataclasses.replace(kept.screen, ask=ask)
            return kept.screen
        now = await self.core.screen(self.chat(token))
        if now is None:
            return Screen("vi", (), None, linked=False)
        return screen_of(now[1], now[0])

