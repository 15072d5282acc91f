"""A local Telegram Bot API server for tests and the demo.

The real bot (aiogram with ``TelegramAPIServer.from_base(url)``) talks HTTP to this emulator on
127.0.0.1, while tests and the demo drive simulated people through :class:`SimulatedUser`.
The point is to catch bot bugs before Telegram does, so the emulator enforces what Telegram
enforces — text and button limits, flood limits with ``retry_after``, blocked users, stale
callback queries, "message is not modified", one poller at a time, webhook/polling exclusivity —
and checks every request against the published spec (``api.json``), recording each breach in
:attr:`BotApiEmulator.violations` so a test can assert there were none.

The emulator is split by responsibility: ``model`` (limits, errors, records, parameters),
``people`` (simulated users and groups), ``bots`` (each bot's state), ``body`` (reading
requests), and the Bot API methods by area: ``updates`` (polling, webhooks), ``messages``
(sending, editing, files) and ``chats`` (callbacks, chat actions, commands). This module is the
HTTP side: the method table, spec checks and dispatch.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.emulation import EmulatorServer
from bot.telegram.botapi_spec import BotApiSpec, Upload
from bot.telegram.emulator.model import (
    NOT_MODIFIED, ApiError, BotStats, Limits, ReceivedMessage, Request, _Params, _StoredFile, _bad,
)
from bot.telegram.emulator.body import _read_body
from bot.telegram.emulator.bots import EmulatedBot
from bot.telegram.emulator.chats import ChatMethods
from bot.telegram.emulator.messages import MessageMethods
from bot.telegram.emulator.people import SimulatedGroup, SimulatedUser
from bot.telegram.emulator.updates import UpdateMethods


__all__ = [
    "NOT_MODIFIED",
    "ApiError",
    "BotApiEmulator",
    "BotStats",
    "EmulatedBot",
    "Limits",
    "ReceivedMessage",
    "Request",
    "SimulatedGroup",
    "SimulatedUser",
    "Upload",
]


Handler = Callable[[EmulatedBot, _Params], Awaitable[Any]]


class BotApiEmulator(UpdateMethods, MessageMethods, ChatMethods, EmulatorServer[EmulatedBot]):
    """An aiohttp server speaking the Bot API for any number of emulated bots.

    :meth:`start` returns the base URL for aiogram; :meth:`stop` ends long polls at once (with
    no updates), stops webhook delivery and closes the server.
    """

    request_type = Request
    error_type = ApiError
    limits: Limits
    requests: list[Request]  # type: ignore[assignment]

    def __init__(self, *, spec_path: Path | None = None, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limits, clock)
        self.spec = BotApiSpec.load(spec_path)
        self._files: dict[str, _StoredFile] = {}
        self._file_ids = itertools.count(1)
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendAudio": self._send_audio,
            "sendVideo": self._send_video,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "leaveChat": self._leave_chat,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getFile": self._get_file,
        }
        self._handler_by_lower = {name.lower(): name for name in self._handlers}

    @property
    def stats(self) -> dict[str, BotStats]:
        """Counters per bot token."""
        return super().stats

    @property
    def client_max_size(self) -> int:  # type: ignore[override]
        return self.limits.document_max_bytes + 1024 * 1024

    def add_bot(self, token: str, username: str) -> EmulatedBot:
        bot = EmulatedBot(token, username, self.clock, self.limits)
        self._bots[token] = bot
        return bot

    # --- files people sent ----------------------------------------------------------------------

    async def _get_file(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        file_id = str(p.raw("file_id") or "")
        if file_id not in bot.user_files:
            raise _bad("wrong file_id or the file is temporarily unavailable")
        path, data = bot.user_files[file_id]
        if len(data) > 20 * 1024 * 1024:
            raise _bad("file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data), "file_path": path}

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)

    async def _download(self, request: web.Request) -> web.Response:
        """`/file/bot<token>/<file_path>`, as api.telegram.org serves a getFile's file."""
        bot = self._bots.get(request.match_info["token"])
        if bot is None:
            return web.Response(status=401, text="Unauthorized")
        if bot.file_failures > 0:
            bot.file_failures -= 1
            return web.Response(status=502, text="Bad Gateway")
        path = request.match_info["path"]
        found = next((data for stored, data in bot.user_files.values() if stored == path), None)
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found, content_type="application/octet-stream")

    # --- HTTP ----------------------------------------------------------------------------------

    async def _read_params(self, request: web.Request, method: str) -> dict[str, Any]:
        params = dict(request.query)
        params.update(await _read_body(request.headers, request.content))
        return params

    async def _call(self, bot: EmulatedBot, name: str, params: dict[str, Any],
                    request: web.Request | None = None) -> tuple[int, dict[str, Any]]:
        """Check and run one method call; record it; return (HTTP status, JSON body)."""
        method = self.spec.method_name(name) if self.spec else None
        method = method or self._handler_by_lower.get(name.lower())
        if method is None:
            self._record(bot.token, name, params, 404)
            return 404, ApiError(404, "Not Found").body()
        return await self._answer(bot, method, params, lambda: self._run(bot, method, params))

    async def _run(self, bot: EmulatedBot, method: str, params: dict[str, Any]) -> Any:
        self._check_spec(method, params)
        handler = self._handlers.get(method)
        if handler is None:
            self.violations.append(f"{method}: not implemented by the emulator")
            raise _bad("method not implemented by the emulator")
        return await handler(bot, _Params(params))

    def _check_spec(self, method: str, params: dict[str, Any]) -> None:
        if self.spec is None:
            return
        problems = self.spec.check_call(method, params)
        if problems:
            self.violations += [f"{method}: {problem}" for problem in problems]
            raise _bad("; ".join(problems))
