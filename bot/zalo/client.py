"""A thin client for the Zalo Bot Platform HTTP API, on the aiohttp the project already uses.

The API mirrors Telegram's shape (`<base>/bot<TOKEN>/<method>`, JSON in, `{"ok", "result"}`
out) with a handful of methods, so a client of our own is smaller and easier to trust than a
port of python-telegram-bot (see the README's dependency notes).
"""

from __future__ import annotations

from typing import Any

import aiohttp

#: Header Zalo sends with webhook requests, carrying the secret given to setWebhook.
SECRET_HEADER = "X-Bot-Api-Secret-Token"
TIMEOUT_CODE = 408


class ZaloError(Exception):
    def __init__(self, code: int, description: str, retry_after: float | None = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


class ZaloClient:
    def __init__(self, token: str, api_base: str, session: aiohttp.ClientSession | None = None, *,
                 timeout: float = 30):
        self._token = token
        #: Seconds a call may take, unless it says otherwise (a long poll waits longer).
        self.timeout = timeout
        self.api_base = api_base.rstrip("/")
        self._session = session
        self._owns_session = session is None

    def __repr__(self) -> str:  # the token stays out of logs
        return f"ZaloClient({self.api_base!r})"

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def call(self, method: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        session = await self._client()
        timeout = self.timeout if timeout is None else timeout
        url = f"{self.api_base}/bot{self._token}/{method}"
        async with session.post(url, json=payload or {}, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:  # a proxy's error page, a truncated body
                raise ZaloError(response.status, f"the answer could not be read (not JSON, HTTP {response.status})") \
                    from None
        if not isinstance(body, dict) or not body.get("ok"):
            body = body if isinstance(body, dict) else {}
            retry_after = (body.get("parameters") or {}).get("retry_after")
            code = body.get("error_code")
            raise ZaloError(code if isinstance(code, int) and not isinstance(code, bool) else response.status,
                            str(body.get("description") or "unknown error"), retry_after)
        return body.get("result")

    async def get_update(self, timeout: float) -> dict | None:
        """One update, or None when the long poll timed out with nothing new.

        An answer cut off mid-way or a dropped connection (aiohttp errors that are not OSErrors)
        is raised as a ConnectionError, so the poll loop waits and polls again instead of dying."""
        try:
            return await self.call("getUpdates", {"timeout": timeout}, timeout=timeout + 10)
        except ZaloError as error:
            if error.code == TIMEOUT_CODE:
                return None
            raise
        except aiohttp.ClientError as error:
            if isinstance(error, OSError):
                raise
            raise ConnectionError(f"{type(error).__name__}: {error}") from error
