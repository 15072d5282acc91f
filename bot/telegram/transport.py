"""The outbox's way out to Telegram: queued calls sent with aiogram's own HTTP client.

Each Bot API failure becomes one of the outbox's outcomes, so the pacing and retry policy
lives in one place (bot/outbox.py) for every channel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    LeaveChat,
    SendAudio,
    SendDocument,
    SendMessage,
    SendPhoto,
    SendVideo,
    TelegramMethod,
)
from aiogram.types import BufferedInputFile, FSInputFile
from pydantic import ValidationError

from bot.form_media import FormMedia, MediaKey
from bot.network_failures import network_outcome
from bot.outbox import Blocked, Outcome, Rejected, RetryAfter, Sent, Transient, Unauthorized

METHODS: dict[str, type[TelegramMethod]] = {
    "sendMessage": SendMessage,
    "editMessageText": EditMessageText,
    "editMessageReplyMarkup": EditMessageReplyMarkup,
    "sendDocument": SendDocument,
    "sendPhoto": SendPhoto,
    "sendAudio": SendAudio,
    "sendVideo": SendVideo,
    "leaveChat": LeaveChat,
}
#: Payload fields that name a file on disk ({"path": ..., "filename": ...}) or a form's media file
#: ({"form_media": {"form_id": ..., "version": ..., "name": ...}}).
_FILE_FIELDS = ("document", "photo", "audio", "video")


class TelegramTransport:
    """`media` reads the forms' label media (sendPhoto/sendAudio/sendVideo of a prompt). A file is
    uploaded from the stored form the first time and sent by the file_id Telegram returned after:
    file_ids belong to one bot, and this transport sends for one bot. They are kept in memory, not
    in the database: a restarted process uploads each file once more, which costs one upload per
    file and no schema."""

    def __init__(self, bot: Bot, media: FormMedia | None = None):
        self.bot = bot
        self.media = media
        self.file_ids: dict[MediaKey, str] = {}

    async def send(self, method: str, payload: dict[str, Any]) -> Outcome:
        if method not in METHODS:
            return Rejected(f"the outbox cannot send {method}")
        uploaded: tuple[str, MediaKey] | None = None
        try:
            media = await self._form_media(payload)
            if media is not None:
                method, payload, uploaded = media[0] or method, media[1], media[2]
                if method == "sendMessage" and not payload.get("text"):
                    return Sent(None)  # a file alone, no longer there: nothing to show
            call = _build(method, payload)
        except (KeyError, TypeError, ValueError, ValidationError) as error:  # a malformed queued row
            return Rejected(f"cannot build {method} from the queued payload: {type(error).__name__}: {error}")
        if isinstance(call, Rejected):
            return call
        if media is None or method == "sendMessage":
            return await self._call(call)
        remember = None if uploaded is None else (lambda result: self._remember(result, *uploaded))
        outcome = await self._call(call, remember)
        if isinstance(outcome, Rejected) and payload.get("caption"):
            # Telegram refused the file (not really an image, say): the prompt it carried still goes.
            return await self.send("sendMessage", _as_text(payload))
        return outcome

    async def _form_media(self, payload: dict[str, Any]) -> tuple[str | None, dict, tuple[str, MediaKey] | None] | None:
        """For a payload naming a form's media file: (method, payload, what to remember). The file
        is its file_id if this bot sent it before, else its bytes, uploaded (remember the file_id
        Telegram returns). A file that cannot be read any more makes the call a text message (the
        caption and keyboard), so the prompt is still seen. None for any other payload."""
        for field in _FILE_FIELDS:
            value = payload.get(field)
            if not (isinstance(value, dict) and isinstance(value.get("form_media"), dict)):
                continue
            ref = value["form_media"]
            key = MediaKey(str(ref["form_id"]), str(ref["version"]), str(ref["name"]))
            if key in self.file_ids:
                return None, {**payload, field: self.file_ids[key]}, None
            data = await self.media.read(key) if self.media is not None else None
            if data is None:
                return "sendMessage", _as_text(payload), None
            return None, {**payload, field: BufferedInputFile(data, filename=key.name)}, (field, key)
        return None

    def _remember(self, result: Any, field: str, key: MediaKey) -> None:
        sent = getattr(result, field, None)
        if isinstance(sent, list):  # a photo comes back in several sizes: any of them resends it
            sent = sent[-1] if sent else None
        file_id = getattr(sent, "file_id", None)
        if file_id:
            self.file_ids[key] = file_id

    async def identify(self) -> Outcome:
        """getMe: whether the platform accepts the token (``khaosat run`` asks before it starts)."""
        return await self._call(GetMe())

    async def _call(self, call: TelegramMethod, on_result: Callable[[Any], None] | None = None) -> Outcome:
        try:
            result = await self.bot(call)
        except TelegramRetryAfter as error:
            return RetryAfter(float(error.retry_after))
        except TelegramForbiddenError as error:
            return Blocked(error.message)
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return Sent(None)  # a double tap re-rendered the same marks: nothing to change
            return Rejected(f"400: {error.message}")
        except (TelegramEntityTooLarge, TelegramMigrateToChat) as error:  # too big; a group that moved
            return Rejected(error.message)
        except (TelegramUnauthorizedError, TelegramNotFound) as error:
            # Telegram answers 401 for a revoked token and 404 for one it never issued.
            code = 401 if isinstance(error, TelegramUnauthorizedError) else 404
            return Unauthorized(f"{code}: {error.message}")
        except TelegramConflictError as error:
            return Transient(f"409: {error.message}")
        except TelegramServerError as error:
            return Transient(f"server error: {error.message}")
        except ClientDecodeError as error:  # a proxy's error page, a truncated body
            return Transient(f"the answer could not be read: {error.message} ({type(error.original).__name__})")
        except TelegramNetworkError as error:
            # aiogram wraps aiohttp's failure (or its timeout) in this and keeps it as the cause,
            # which says whether the request may have reached Telegram.
            if error.__cause__ is not None:
                return network_outcome(error.__cause__)
            return Transient(error.message)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return network_outcome(error)
        except TelegramAPIError as error:  # any other status: retried a bounded number of times
            return Transient(f"{type(error).__name__}: {error.message}")
        if on_result is not None:
            on_result(result)
        message_id = getattr(result, "message_id", None)
        return Sent({"message_id": message_id} if message_id is not None else None)


def _as_text(payload: dict[str, Any]) -> dict[str, Any]:
    """A media call's caption (and keyboard) as a text message; no text if it had no caption."""
    kept = {k: v for k, v in payload.items() if k in ("chat_id", "parse_mode", "reply_markup")}
    return {**kept, "text": payload["caption"]} if payload.get("caption") else kept


def _build(method: str, payload: dict[str, Any]) -> TelegramMethod | Rejected:
    """The aiogram call for a queued payload; files named by path are attached from disk."""
    for name in _FILE_FIELDS:
        if isinstance(payload.get(name), dict):
            path = Path(payload[name]["path"])
            if not path.is_file():
                return Rejected(f"{path} no longer exists")
            payload = {**payload, name: FSInputFile(path, filename=payload[name].get("filename"))}
    return METHODS[method](**payload)
