"""Bot API methods for getting updates: long polling, webhooks, and ``getMe``."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.emulation import LOOPBACK_HOSTS
from bot.telegram.emulator.model import (
    POLLING_CONFLICT, WEBHOOK_CONFLICT, _SECRET_TOKEN, _WEBHOOK_PORTS, ApiError, _Params, _Pending, _bad,
)
from bot.telegram.emulator.body import _read_body
from bot.telegram.emulator.bots import EmulatedBot


class UpdateMethods:
    """Mixin of :class:`BotApiEmulator` (its state is there)."""

    # --- updates: long polling and webhooks ---------------------------------------------------------

    async def _get_me(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return {**bot.as_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _get_updates(self, bot: EmulatedBot, p: _Params) -> list[dict[str, Any]]:
        """Long polling: wait up to ``timeout`` seconds; a newer poll ends an older one with 409."""
        if bot.webhook_url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.integer("timeout") or 0, 0)
        if "allowed_updates" in p.values:
            bot.allowed_updates = p.json("allowed_updates")
        bot.confirm(p.integer("offset"))
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.changed.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if bot.poll_generation != generation:
                raise ApiError(409, POLLING_CONFLICT)
            if bot.webhook_url:
                raise ApiError(409, WEBHOOK_CONFLICT)
            batch = bot.deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                for entry in batch:
                    entry.redelivery = False
                return [entry.update for entry in batch]
            await bot.changed.wait(remaining)

    async def _set_webhook(self, bot: EmulatedBot, p: _Params) -> bool:
        url = p.text("url")
        if url is None:
            raise _bad("url is empty")
        if url == "":  # Telegram's documented way to switch back to getUpdates
            return await self._delete_webhook(bot, p)
        secret = p.text("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        _check_webhook_url(url)
        max_connections = p.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        if "allowed_updates" in p.values:
            bot.allowed_updates = p.json("allowed_updates")
        if p.boolean("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook_url, bot.webhook_secret = url, secret
        bot.webhook_max_connections = max_connections
        bot.webhook_last_error = None
        self._start_webhook_delivery(bot)
        bot.changed.notify()  # a waiting getUpdates must now fail with 409
        return True

    async def _delete_webhook(self, bot: EmulatedBot, p: _Params) -> bool:
        await self._stop_webhook_delivery(bot)
        bot.webhook_url = bot.webhook_secret = None
        if p.boolean("drop_pending_updates"):
            bot.pending.clear()
        return True

    async def _get_webhook_info(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        info: dict[str, Any] = {"url": bot.webhook_url or "", "has_custom_certificate": False,
                                "pending_update_count": bot.pending_update_count}
        if bot.webhook_url:
            info["max_connections"] = bot.webhook_max_connections
        if bot.webhook_last_error:
            info["last_error_date"], info["last_error_message"] = bot.webhook_last_error
        if bot.allowed_updates:
            info["allowed_updates"] = bot.allowed_updates
        return info

    def _webhook_next(self, bot: EmulatedBot) -> _Pending | None:
        batch = bot.deliverable(1)
        return batch[0] if batch else None

    def _webhook_delivered(self, bot: EmulatedBot, entry: _Pending) -> None:
        if entry in bot.pending:
            bot.pending.remove(entry)

    def _webhook_failed(self, bot: EmulatedBot, entry: _Pending, error: str) -> None:
        bot.webhook_last_error = (int(time.time()), error)

    async def _post_update(self, bot: EmulatedBot, update: dict[str, Any]) -> str | None:
        """Deliver one update; None on success, else the error Telegram would report.

        The webhook may answer with a method call in its body (aiogram does this when handling
        in the foreground); Telegram executes it without telling the bot the result.
        """
        assert bot.webhook_url is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": bot.webhook_secret} if bot.webhook_secret else {}
        try:
            status, reason, reply = await self._post_json(
                bot.webhook_url, update, headers, lambda response: _read_body(response.headers, response.content))
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"Connection failed: {error or type(error).__name__}"
        except ApiError as error:
            return f"Wrong response from the webhook: {error.description}"
        if not 200 <= status < 300:
            return f"Wrong response from the webhook: {status} {reason}"
        if "method" in reply:
            method = str(reply.pop("method"))
            await self._call(bot, method, reply)
        return None


def _check_webhook_url(url: str) -> None:
    """HTTPS on ports 443/80/88/8443, as Telegram requires; plain HTTP is allowed on loopback only,
    because the emulator's webhooks are local test servers without certificates."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad("bad webhook: invalid webhook URL specified")
    if parts.hostname in LOOPBACK_HOSTS:
        return
    if parts.scheme != "https":
        raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
    if (parts.port or 443) not in _WEBHOOK_PORTS:
        raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
