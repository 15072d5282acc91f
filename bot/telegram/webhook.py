"""Telegram's webhook endpoint: aiogram's request handler, with a body that is not an update
refused as a bad request.

aiogram parses the body inside the dispatcher, so JSON that is not an update (``{}``, ``[]``, a
text ``update_id``, a chat without an id...) ends there as a pydantic error: an HTTP 500 and a
traceback in the log for every such request. Here the body is read and validated first: a
request with the right secret that is not an update gets a 400 and one log line.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiogram import Bot
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

log = logging.getLogger(__name__)


class CheckedRequestHandler(SimpleRequestHandler):
    """``SimpleRequestHandler`` (the secret checked by aiogram) that answers 400 to a malformed body."""

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            update = Update.model_validate(orjson.loads(body), context={"bot": bot})
        except orjson.JSONDecodeError:
            return self._refuse(request, "the body is not JSON")
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the body"
            return self._refuse(request, f"not a Telegram update ({where}: {first['msg']})")
        try:
            result = await self.dispatcher.feed_webhook_update(bot, update, **self.data)
        except Exception:  # noqa: BLE001 - a failure outside the chat core (which answers its own)
            # Logged, and still 200: Telegram would post the same update again and again, to fail again.
            log.exception("telegram/%s: webhook update %s failed", self.name, update.update_id)
            return web.json_response({})
        return web.Response(body=self._build_response_writer(bot=bot, result=result))

    def _refuse(self, request: web.Request, reason: str) -> web.Response:
        log.warning("telegram/%s: webhook request from %s refused with 400: %s", self.name, request.remote, reason)
        return web.json_response({"ok": False, "description": reason}, status=400)
