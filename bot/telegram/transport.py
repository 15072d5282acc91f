"""The outbox's way out to Telegram: queued calls sent with aiogram's own HTTP client.

Each Bot API failure becomes one of the outbox's outcomes, so the pacing and retry policy
lives in one place (bot/outbox.py) for every channel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import FSInputFile

from bot.outbox import Blocked, Outcome, Rejected, RetryAfter, Sent, Transient

METHODS: dict[str, type[TelegramMethod]] = {
    "sendMessage": SendMessage,
    "editMessageText": EditMessageText,
    "editMessageReplyMarkup": EditMessageReplyMarkup,
    "sendDocument": SendDocument,
    "sendPhoto": SendPhoto,
}
#: Payload fields that name a file on disk: {"path": ..., "filename": ...}.
_FILE_FIELDS = ("document", "photo")


class TelegramTransport:
    def __init__(self, bot: Bot):
        self.bot = bot

    async def send(self, method: str, payload: dict[str, Any]) -> Outcome:
        if method not in METHODS:
            return Rejected(f"the outbox cannot send {method}")
        for name in _FILE_FIELDS:
            if isinstance(payload.get(name), dict):
                path = Path(payload[name]["path"])
                if not path.is_file():
                    return Rejected(f"{path} no longer exists")
                payload = {**payload, name: FSInputFile(path, filename=payload[name].get("filename"))}
        try:
            result = await self.bot(METHODS[method](**payload))
        except TelegramRetryAfter as error:
            return RetryAfter(float(error.retry_after))
        except TelegramForbiddenError as error:
            return Blocked(error.message)
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return Sent(None)  # a double tap re-rendered the same marks: nothing to change
            return Rejected(error.message)
        except (TelegramNetworkError, TelegramServerError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            return Transient(str(error) or type(error).__name__)
        message_id = getattr(result, "message_id", None)
        return Sent({"message_id": message_id} if message_id is not None else None)
