"""The outbox's way out to Zalo: each API failure becomes one of the outbox's outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bot.network_failures import network_outcome
from bot.outbox import Blocked, Outcome, Rejected, RetryAfter, Sent, Transient, Unauthorized
from bot.zalo.client import ZaloClient, ZaloError

METHODS = {"sendMessage", "sendPhoto", "sendChatAction"}


class ZaloTransport:
    def __init__(self, client: ZaloClient):
        self.client = client

    async def send(self, method: str, payload: dict[str, Any]) -> Outcome:
        if method not in METHODS:
            return Rejected(f"the outbox cannot send {method} on Zalo")
        outcome = await self._call(method, payload)
        if method == "sendPhoto" and isinstance(outcome, Rejected) and payload.get("caption"):
            # A label's image Zalo could not fetch: the prompt it carried still goes, as text.
            text = {"chat_id": payload.get("chat_id"), "text": payload["caption"]}
            return await self._call("sendMessage", text)
        return outcome

    async def identify(self) -> Outcome:
        """getMe: whether the platform accepts the token (``khaosat run`` asks before it starts)."""
        return await self._call("getMe", {})

    async def _call(self, method: str, payload: dict[str, Any]) -> Outcome:
        try:
            result = await self.client.call(method, payload)
        except ZaloError as error:
            if error.code == 429:
                return RetryAfter(float(error.retry_after or 1))
            if error.code == 403:
                return Blocked(error.description)
            if error.code in (401, 404):  # the token is refused (or unknown: this method exists)
                return Unauthorized(f"{error.code}: {error.description}")
            if error.code == 400:
                return Rejected(f"400: {error.description}")
            # 5xx, 409, anything else: retried a bounded number of times, with its reason.
            return Transient(f"{error.code}: {error.description}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return network_outcome(error)  # not sent (retried), or maybe delivered (unknown)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Sent({"message_id": message_id} if message_id is not None else None)
