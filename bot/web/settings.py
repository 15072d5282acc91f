"""``[web]``: the respondents' web pages (``/s/<code>``), their server and the links in letters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

KEYS = {"public_url", "listen", "port", "bot", "secure_cookies", "behind_proxy", "codes_per_address_per_hour",
        "codes_per_hour"}


class WebConfigError(ValueError):
    pass


@dataclass(frozen=True)
class WebConfig:
    #: The address people open, as printed in letters: ``<public_url>/s/<code>``.
    public_url: str
    host: str = "127.0.0.1"
    port: int = 8090
    #: The bot whose questionnaires and open codes the pages serve (None: the first bot).
    bot: str | None = None
    secure_cookies: bool | str = "auto"
    behind_proxy: bool = False
    #: Wrong codes allowed per client address, and from everyone together, per hour.
    codes_per_address_per_hour: int = 20
    codes_per_hour: int = 1000

    def link(self, code: str) -> str:
        return f"{self.public_url}/s/{code}"


def web_config(path: Path, table: dict, bot_names: list[str]) -> WebConfig:
    def fail(key: str, what: str) -> WebConfigError:
        return WebConfigError(f"{path}: web.{key} must be {what}")

    url = table.get("public_url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).netloc:
        raise fail("public_url", "the address people open, e.g. \"https://khaosat.example.gov.vn\"")
    listen, port = table.get("listen", WebConfig.host), table.get("port", WebConfig.port)
    if not isinstance(listen, str) or not listen:
        raise fail("listen", "an address, e.g. \"127.0.0.1\" or \"0.0.0.0\"")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise fail("port", "a port number from 1 to 65535")
    bot = table.get("bot")
    if bot is not None and bot not in bot_names:
        raise fail("bot", f"the name of a [[telegram]] or [[zalo]] bot ({', '.join(bot_names) or 'none configured'})")
    if not bot_names:
        raise WebConfigError(f"{path}: [web] serves the questionnaires of a bot: add a [[telegram]] or [[zalo]] table")
    secure = table.get("secure_cookies", WebConfig.secure_cookies)
    if secure not in (True, False, "auto"):
        raise fail("secure_cookies", "true, false or \"auto\"")
    proxy = table.get("behind_proxy", WebConfig.behind_proxy)
    if not isinstance(proxy, bool):
        raise fail("behind_proxy", "true or false")
    limits = {}
    for key in ("codes_per_address_per_hour", "codes_per_hour"):
        value = table.get(key, getattr(WebConfig, key))
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise fail(key, "a whole number from 1 to 1000000")
        limits[key] = value
    return WebConfig(public_url=url.rstrip("/"), host=listen, port=port, bot=bot, secure_cookies=secure,
                     behind_proxy=proxy, **limits)
