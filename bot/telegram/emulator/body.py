"""Reading a request body (JSON, urlencoded or multipart), for server requests and webhook replies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import aiohttp

from bot.telegram.botapi_spec import Upload
from bot.telegram.emulator.model import _bad


async def _read_body(headers: Any, content: aiohttp.StreamReader) -> dict[str, Any]:
    """Parameters from a JSON, urlencoded or multipart body (server requests and webhook replies).

    Multipart file parts become :class:`Upload` values; ``attach://name`` references at the top
    level (aiogram's way of sending files) are replaced by the part they name.
    """
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        params: dict[str, Any] = {}
        async for part in aiohttp.MultipartReader(headers, content):
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                raise _bad("can't parse multipart form")
            data = await part.read(decode=True)
            params[part.name] = (
                Upload(part.filename, part.headers.get("Content-Type", "application/octet-stream"), bytes(data))
                if part.filename is not None else data.decode(part.get_charset("utf-8"))
            )
        return _resolve_attachments(params)
    raw = await content.read()
    if content_type == "application/json":
        try:
            decoded = json.loads(raw or b"{}")
        except ValueError:
            raise _bad("can't parse JSON request body") from None
        if not isinstance(decoded, dict):
            raise _bad("JSON request body must be an object")
        return decoded
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    return {}


def _resolve_attachments(params: dict[str, Any]) -> dict[str, Any]:
    attached = {value.removeprefix("attach://") for value in params.values()
                if isinstance(value, str) and value.startswith("attach://")}
    return {
        name: params.get(value.removeprefix("attach://"), value)
        if isinstance(value, str) and value.startswith("attach://") else value
        for name, value in params.items() if name not in attached
    }
