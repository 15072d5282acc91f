"""The Zalo channel: the Zalo Bot Platform's updates parsed into the chat core's events, and its
output rendered as numbered text (the platform has no keyboards).

People reply with a number, several numbers, or the options' words (matched by the engine); the
platform learns a chat only when the person writes first, so a person links by typing the short
code printed on their letter. Zalo may deliver a message twice: every write is keyed by the
message id, so the second delivery changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import secrets
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from bot.chat.core import ChatCore
from bot.chat.events import (
    IMAGE, STICKER, UNSUPPORTED, Call, Capabilities, ConfirmStop, Document, Incoming, Leave, Media, NotText, Outgoing,
    typed,
)
from bot.chat.surveys import Chat, ChatSurveys
from bot.form_media import media_path
from bot.text import render, split_text
from bot.zalo.client import SECRET_HEADER, ZaloClient, ZaloError
from surveys.engine import Ask, PromptKind, Say
from surveys.messages import say, ui_language

log = logging.getLogger(__name__)

CHANNEL = "zalo"
TEXT_LIMIT = 2000


class ZaloRenderer:
    """`media_base`: the web pages' public address, whose `/media/...` route serves the forms' label
    images; Zalo's sendPhoto takes a URL, so without it a prompt goes as its text alone."""

    capabilities = Capabilities(text_limit=TEXT_LIMIT)

    def __init__(self, media_base: str | None = None):
        self.media_base = media_base.rstrip("/") if media_base else None

    def render(self, outputs: Sequence[Outgoing], chat_id: str, language: str, *, accepted: bool = True,
               pressed: Any = None) -> tuple[list[Call], str | None]:
        """Numbered text; an unclear reply gets its explanation and then the question again."""
        calls = []
        for output in outputs:
            if isinstance(output, Leave):  # no way known for a Zalo bot to leave a group: it stays silent there
                continue
            parts = split_text(_text(output, language), TEXT_LIMIT)
            image = self._image_url(output)
            if image is not None:  # the label's image carries the text when it fits one caption
                calls.append(Call("sendPhoto", {"chat_id": chat_id, "photo": image,
                                                **({"caption": parts.pop(0)} if len(parts) == 1 else {})}))
            calls.extend(Call("sendMessage", {"chat_id": chat_id, "text": part}) for part in parts)
        return calls, None

    def _image_url(self, output: Outgoing) -> str | None:
        if self.media_base is None or not isinstance(output, (Ask, Say)):
            return None
        image = next((m for m in output.media if m.kind == "image"), None)  # Zalo sends no audio or video
        return None if image is None else self.media_base + media_path(image)


#: What a Zalo bot receives of a person's media: photos only (a voice note, a video or a file
#: arrives as `message.unsupported.received`, with no content). So an image question is answered
#: with a photo, a file question with a photo of the document, and an audio or video question
#: cannot be answered here: the prompt says so, offers the skip word when it is optional, and
#: when it is required points to the survey's web page (the link on the letter) or the team.
ZALO_MEDIA = {PromptKind.IMAGE: "zalo_image_expected", PromptKind.FILE: "zalo_file_expected",
              PromptKind.AUDIO: "zalo_no_media", PromptKind.VIDEO: "zalo_no_media"}


def _zalo_media(ask: Ask, language: str) -> Ask:
    key = ZALO_MEDIA[ask.kind]
    if key == "zalo_no_media":
        key = "zalo_no_media_required" if ask.required else "zalo_no_media_optional"
    return dataclasses.replace(ask, expected=say(key, ui_language(language)))


def _text(output: Outgoing, language: str) -> str:
    if isinstance(output, Ask) and output.kind in ZALO_MEDIA:
        output = _zalo_media(output, language)
    if isinstance(output, (Ask, Say)):
        return render(output, language, chat=True)
    if isinstance(output, ConfirmStop):
        return f"{output.text} {say('zalo_stop_how', ui_language(language))}"
    return output.caption if isinstance(output, Document) else output.text


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and value != "" or isinstance(value, int) and not isinstance(value, bool)


def update_problem(update: Any) -> str | None:
    """Why ``update`` is not a Zalo update the bot can read (None: it is one).

    Checked before ``parse`` on every update that comes from outside (webhook or long poll), so
    a malformed one is refused with its reason instead of failing half-way through handling."""
    if not isinstance(update, dict):
        return f"an update is a JSON object, not {type(update).__name__}"
    if not isinstance(update.get("event_name"), str):
        return "event_name is missing or not text"
    message = update.get("message")
    if not isinstance(message, dict):
        return "message is missing or not an object"
    if not _is_id(message.get("message_id")):
        return "message.message_id is missing or not an id"
    chat = message.get("chat")
    if not isinstance(chat, dict) or not _is_id(chat.get("id")):
        return "message.chat.id is missing or not an id"
    sender = message.get("from")
    if sender is not None and (not isinstance(sender, dict) or not _is_id(sender.get("id", chat["id"]))):
        return "message.from is not a user"
    if "text" in message and not isinstance(message["text"], str):
        return "message.text is not text"
    return None


def parse(update: dict, bot: str) -> tuple[Chat, str, Incoming] | None:
    """The chat, the event's key and the event of one Zalo update (None: nothing to handle)."""
    message = update.get("message") or {}
    chat_id = str((message.get("chat") or {}).get("id") or "")
    message_id = message.get("message_id")
    if not chat_id or message_id is None:
        return None
    user = str((message.get("from") or {}).get("id") or chat_id)
    text = message.get("text") if update.get("event_name") == TEXT_EVENT else None
    # Zalo marks each chat PRIVATE or GROUP; one with no type is taken for the private chat it always was.
    private = str((message.get("chat") or {}).get("chat_type") or "PRIVATE").upper() == "PRIVATE"
    incoming = image(message) if update.get("event_name") == "message.image.received" else None
    if incoming is None:
        incoming = typed(text or "") if text is not None else not_text(update)
    return Chat(CHANNEL, bot, chat_id, user, private), f"zalo:{bot}:{message_id}", incoming


TEXT_EVENT = "message.text.received"
#: The other events the platform documents, by what they hold.
_NOT_TEXT_KINDS = {"message.unsupported.received": UNSUPPORTED, "message.image.received": IMAGE,
                   "message.sticker.received": STICKER}


def not_text(update: dict) -> NotText:
    """A message that is not text, by its event: the core answers an unsupported one on a location
    question with how to type the coordinates (Zalo does not pass a shared location on)."""
    return NotText(_NOT_TEXT_KINDS.get(update.get("event_name"), ""))


def image(message: dict) -> Media | None:
    """A photo sent to the bot (`message.image.received`: `message.photo` is its URL), fetched
    over HTTP only if the prompt on screen asks for a file; None without a URL (not text)."""
    url = message.get("photo")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None

    async def fetch() -> bytes:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as client, client.get(url) as response:
            response.raise_for_status()
            return await response.read()

    return Media("photo", "image/jpeg", None, None, fetch)


class ZaloSurveyBot:
    def __init__(self, name: str, surveys: ChatSurveys, clock: Callable[[], dt.datetime], *,
                 core: ChatCore | None = None, renderer: ZaloRenderer | None = None):
        self.name = name
        self.core = core or ChatCore(surveys, clock)
        self.renderer = renderer or ZaloRenderer()

    async def handle_update(self, update: dict) -> None:
        parsed = parse(update, self.name)
        if parsed is not None:
            await self.core.handle(*parsed, self.renderer)


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
            problem = update_problem(update)
            if problem is not None:
                log.warning("zalo/%s: an update from getUpdates was skipped: %s", bot.name, problem)
                continue
            try:
                await bot.handle_update(update)
            except Exception:  # one bad update must not stop the bot; the next poll goes on
                log.exception("zalo/%s: update failed", bot.name)


def _refuse(bot: ZaloSurveyBot, request: web.Request, reason: str) -> web.Response:
    log.warning("zalo/%s: webhook request from %s refused with 400: %s", bot.name, request.remote, reason)
    return web.json_response({"ok": False, "description": reason}, status=400)


def webhook_handler(bot: ZaloSurveyBot, secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Zalo posts each update with the secret in a header; anything else is refused."""

    async def handle(request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return web.json_response({"ok": False, "description": "forbidden"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return _refuse(bot, request, "the body is not JSON")
        update = body.get("result", body) if isinstance(body, dict) else body
        problem = update_problem(update)
        if problem is not None:
            return _refuse(bot, request, problem)
        try:
            await bot.handle_update(update)
        except Exception:  # noqa: BLE001 - a failure outside the chat core (which answers its own)
            # Logged, and still 200: Zalo would post the same update again and again, to fail again.
            log.exception("zalo/%s: webhook update failed", bot.name)
        return web.json_response({"ok": True})

    return handle
