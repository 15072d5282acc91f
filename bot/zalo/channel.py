"""The Zalo channel: the same engine and storage as Telegram, with typed answers instead of buttons.

The Zalo Bot Platform has no keyboards, so choices are numbered in the message and people
reply with a number, several numbers, or the option's words (accents optional). It learns a
chat only when the person writes first, so a person links to their invitation by typing the
short code printed on their letter. Zalo may deliver a message twice: every write is keyed by
the message id, so the second delivery changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
from typing import Awaitable, Callable

from aiohttp import web

from bot.chats import LINK_MESSAGES, Call, Chat, ChatLocks, ChatSurveys, Link
from bot.invitations import is_typed_code, normalise_typed_code
from bot.text import render, split_text
from bot.zalo.client import SECRET_HEADER, ZaloClient, ZaloError
from storage import Respondent, SessionRecord
from surveys import codec, engine
from surveys.engine import Ask, PromptKind, fold
from surveys.messages import say, ui_language

log = logging.getLogger(__name__)

CHANNEL = "zalo"
TEXT_LIMIT = 2000
_BACK = {"0", "<", "quay lai", "back"}
_SKIP = {"bo qua", "skip"}
_NUMBERS = re.compile(r"^\s*\d+(\s*[,;\s]\s*\d+)*\s*$")

CoordinatorCommand = Callable[[Chat, str], Awaitable[list[Call]]]


def render_outputs(outputs: tuple[engine.Output, ...], chat_id: str, language: str) -> list[Call]:
    """Numbered text; an unclear reply gets its explanation and then the question again."""
    calls = []
    for output in outputs:
        text = render(output, language, chat=True)
        calls.extend(Call("sendMessage", {"chat_id": chat_id, "text": part}) for part in split_text(text, TEXT_LIMIT))
    return calls


def numbers_to_names(text: str, prompt: Ask | None) -> str:
    """'1 3 4' or '1,3,4' → the names of the options shown with those numbers.

    Numbers are positions on the screen, which need not be the choices' names ("5" may be
    listed first), so they are translated here, where the prompt on screen is known.
    """
    if prompt is None or not prompt.options or not _NUMBERS.match(text):
        return text
    by_number = {str(option.number): option.name for option in prompt.options}
    numbers = re.split(r"[\s,;]+", text.strip())
    if not all(number in by_number for number in numbers):
        return text  # the engine explains what it could not recognise
    if prompt.kind is PromptKind.SELECT_ONE and len(numbers) > 1:
        return text
    return " ".join(by_number[number] for number in numbers)


class ZaloSurveyBot:
    def __init__(self, name: str, surveys: ChatSurveys, clock: Callable[[], dt.datetime], *,
                 coordinators: tuple[str, ...] = (), coordinator_commands: dict[str, CoordinatorCommand] | None = None):
        self.name = name
        self.surveys = surveys
        self.clock = clock
        self.coordinators = set(coordinators)
        self.coordinator_commands = coordinator_commands or {}
        self._locks = ChatLocks()

    async def handle_update(self, update: dict) -> None:
        message = update.get("message") or {}
        chat_id = str((message.get("chat") or {}).get("id") or "")
        message_id = message.get("message_id")
        if not chat_id or message_id is None:
            return
        chat = Chat(CHANNEL, self.name, chat_id, str((message.get("from") or {}).get("id") or chat_id))
        key = f"zalo:{self.name}:{message_id}"
        async with self._locks[chat_id]:
            text = message.get("text") if update.get("event_name") == "message.text.received" else None
            await self._handle(chat, key, (text or "").strip(), text is not None)

    async def _handle(self, chat: Chat, key: str, text: str, is_text: bool) -> None:
        respondent, session = await self.surveys.linked(chat)
        if respondent is not None and session is None:
            session = await self.surveys.session(chat, respondent, self.clock())
        state = codec.decode_state(session.state) if session is not None else None
        language = ui_language(state.language) if state else "vi"
        if not is_text or not text:
            await self._say(chat, key, say("not_text" if respondent else "zalo_welcome", language))
            return
        command, _, argument = text.partition(" ")
        command = command.lower()
        if command.lstrip("/") in self.coordinator_commands and command.startswith("/") \
                and chat.user_id in self.coordinators:
            calls = await self.coordinator_commands[command.lstrip("/")](chat, key)
            await self.surveys.send(chat, calls, key, self.clock())
            return
        if command in ("/help", "/privacy"):
            await self._say(chat, key, say(command.lstrip("/"), language))
            return
        if respondent is None:
            await self._unlinked(chat, key, text)
            return
        at = self.clock()
        if command == "/lang":
            await self._drive(chat, respondent, engine.SetLanguage(argument.strip().lower(), at), key)
        elif command == "/resume":
            await self._drive(chat, respondent, engine.Resume(at=at), key)
        elif command == "/stop":
            if fold(argument) in ("co", "yes"):
                await self._drive(chat, respondent, engine.Stop(at=at, refuse=True), key)
            else:
                await self._say(chat, key, say("stop_confirm", language) + " " + say("zalo_stop_how", language))
        elif command.startswith("/"):
            await self._say(chat, key, say("unknown_command", language))
        elif fold(text) in _BACK:
            await self._drive(chat, respondent, engine.Back(at=at), key)
        elif fold(text) in _SKIP:
            await self._drive(chat, respondent, engine.Reply("", at=at), key)
        else:
            form = self.surveys.form_of(respondent)
            prompt = engine.current_prompt(form, state) if form and state else None
            await self._drive(chat, respondent, engine.Reply(numbers_to_names(text, prompt), at=at), key, session)

    async def _unlinked(self, chat: Chat, key: str, text: str) -> None:
        """The first messages of a chat: an invitation code, or an open-mode keyword."""
        at = self.clock()
        keyword = next((code for code in self.surveys.open_codes if fold(code) == fold(text)), None)
        if keyword is not None:
            respondent = await self.surveys.open_respondent(chat, keyword, key, at)
            if respondent is not None and await self.surveys.already_answered(respondent):
                await self._say(chat, f"{key}:done", say("open_already_answered", "vi"))
            elif respondent is not None:
                await self._drive(chat, respondent, engine.Start(at=at), key)
            return
        if not is_typed_code(text):
            await self._say(chat, key, say("zalo_welcome", "vi"))
            return
        outcome, respondent = await self.surveys.link_code(chat, normalise_typed_code(text), "typed", key, at)
        await self._say(chat, f"{key}:link", say(LINK_MESSAGES[outcome] if outcome in LINK_MESSAGES else "linked", "vi"))
        if respondent is not None and outcome in (Link.LINKED, Link.ALREADY):
            await self._drive(chat, respondent, engine.Start(at=at), key)

    async def _say(self, chat: Chat, key: str, text: str) -> None:
        calls = [Call("sendMessage", {"chat_id": chat.chat_id, "text": part}) for part in split_text(text, TEXT_LIMIT)]
        await self.surveys.send(chat, calls, key, self.clock())

    async def _drive(self, chat: Chat, respondent: Respondent, event: engine.Event, key: str,
                     session: SessionRecord | None = None) -> None:
        handled = await self.surveys.drive(
            chat, respondent, event, key,
            lambda step: render_outputs(step.say, chat.chat_id, step.state.language), session)
        if handled is None:
            await self._say(chat, f"{key}:none", say("no_survey", "vi"))


# -- getting updates -------------------------------------------------------------------------------


async def poll(client: ZaloClient, bot: ZaloSurveyBot, stop: asyncio.Event, timeout: float = 30) -> None:
    """Long-poll one update at a time; Zalo has no offset, so duplicates are expected and harmless."""
    failures = 0
    while not stop.is_set():
        getting = asyncio.ensure_future(client.get_update(timeout))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if getting not in done:
            getting.cancel()
            break
        try:
            update = getting.result()
        except (ZaloError, OSError, asyncio.TimeoutError) as error:
            failures += 1
            log.warning("zalo/%s: getUpdates failed (%s); retrying", bot.name, error)
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
            continue
        failures = 0
        if update:
            try:
                await bot.handle_update(update)
            except Exception:  # one bad update must not stop the bot; the next poll goes on
                log.exception("zalo/%s: update failed", bot.name)


def webhook_handler(bot: ZaloSurveyBot, secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Zalo posts each update with the secret in a header; anything else is refused."""

    async def handle(request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return web.json_response({"ok": False, "description": "forbidden"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "description": "not JSON"}, status=400)
        update = body.get("result", body) if isinstance(body, dict) else None
        if isinstance(update, dict):
            await bot.handle_update(update)
        return web.json_response({"ok": True})

    return handle
