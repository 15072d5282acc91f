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
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import FSInputFile
from pydantic import ValidationError

from bot.network_failures import network_outcome
from bot.outbox import Blocked, Outcome, Rejected, RetryAfter, Sent, Transient, Unauthorized

METHODS: dict[str, type[TelegramMethod]] = {
    "sendMessage": SendMessage,
    "editMessageText": EditMessageText,
    "editMessageReplyMarkup": EditMessageReplyMarkup,
    "sendDocument": SendDocument,
    "sendPhoto": SendPhoto,
    "leaveChat": LeaveChat,
}
#: Payload fields that name a file on disk: {"path": ..., "filename": ...}.
_FILE_FIELDS = ("document", "photo")


class TelegramTransport:
    def __init__(self, bot: Bot):
        self.bot = bot

    async def send(self, method: str, payload: dict[str, Any]) -> Outcome:
        if method not in METHODS:
            return Rejected(f"the outbox cannot send {method}")
        try:
            call = _build(method, payload)
        except (KeyError, TypeError, ValueError, ValidationError) as error:  # a malformed queued row
            return Rejected(f"cannot build {method} from the queued payload: {type(error).__name__}: {error}")
        if isinstance(call, Rejected):
            return call
        return await self._call(call)

    async def identify(self) -> Outcome:
        """getMe: whether the platform accepts the token (``khaosat run`` asks before it starts)."""
        return await self._call(GetMe())

    async def _call(self, call: TelegramMethod) -> Outcome:
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
        message_id = getattr(result, "message_id", None)
        return Sent({"message_id": message_id} if message_id is not None else None)


def _build(method: str, payload: dict[str, Any]) -> TelegramMethod | Rejected:
    """The aiogram call for a queued payload; files named by path are attached from disk."""
    for name in _FILE_FIELDS:
        if isinstance(payload.get(name), dict):
            path = Path(payload[name]["path"])
            if not path.is_file():
                return Rejected(f"{path} no longer exists")
            payload = {**payload, name: FSInputFile(path, filename=payload[name].get("filename"))}
    return METHODS[method](**payload)
