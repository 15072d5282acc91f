"""The configuration file (TOML; see config.example.toml), checked strictly.

An unknown key is an error naming the key, because a misspelt setting that is silently
ignored is a deployment that behaves differently from what its coordinator wrote. Tokens are
read from the environment by preference and never appear in a repr or a log line. A secret
whose environment variable is not set is an error only for commands that talk to a platform
(``Config.check_secrets``, called by ``khaosat run``): loading a survey or printing the status
on the office computer needs no bot token.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.outbox import Pace
from bot.web.settings import KEYS as WEB_KEYS, WebConfig, WebConfigError, web_config
from storage import is_postgresql_url
from surveys.messages import UI_LANGUAGES

CHANNELS = ("telegram", "zalo")
DEFAULT_API_BASE = {"telegram": "https://api.telegram.org", "zalo": "https://bot-api.zapps.me"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class BotConfig:
    channel: str
    name: str
    token: str = field(repr=False)
    api_base: str
    mode: str = "polling"
    #: Questionnaire files this bot serves; the first is asked of people with no assigned form.
    forms: tuple[Path, ...] = ()
    #: Public payloads (a QR code at a service counter) → the form_id they open.
    open_codes: Mapping[str, str] = field(default_factory=dict)
    #: Open mode: the question whose answer assigns the respondent's stratum.
    open_stratum_question: str | None = None
    #: Telegram user ids (numbers) or Zalo user ids (strings) allowed the coordinator commands.
    coordinators: tuple[int | str, ...] = ()
    pace: Pace = Pace()
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1:8443"
    webhook_secret: str | None = field(default=None, repr=False)
    #: Wrong typed codes allowed per chat and hour before the bot stops checking (brute force).
    code_attempts_per_hour: int = 5
    #: Wrong codes per minute from all chats of the bot before only chats with no wrong code in the
    #: last hour may try (a brute force from many chats); coordinators are told when it trips.
    code_failures_per_minute: int = 30
    #: Where the token is configured, for messages: "token_env ($NAME)" or "token".
    token_key: str = "token"
    #: What ``check_secrets`` reports: secrets read from environment variables that are not set.
    missing_secrets: tuple[str, ...] = field(default=(), repr=False)
    #: The configuration file it came from.
    source: Path | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return f"[[{self.channel}]] '{self.name}'"

    def token_refused(self, reason: str) -> ConfigError:
        """The error that stops ``khaosat run`` when the platform refuses this bot's token."""
        prefix = f"{self.source}: " if self.source else ""
        return ConfigError(f"{prefix}{self.where}: the platform refused the bot token ({reason}); "
                           f"check {self.token_key}")


@dataclass(frozen=True)
class ConsoleConfig:
    """``[console]``: the coordinator web console (``khaosat serve``; ``khaosat run`` serves it too)."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Cookies marked Secure: "auto" (when the request came over https, or says so through a
    #: proxy's X-Forwarded-Proto), true or false.
    secure_cookies: bool | str = "auto"
    session_hours: int = 12
    #: Uploads larger than this are refused (frames of 1M rows are ~100 MB).
    max_upload_mb: int = 512
    #: How often the live parts of a page (progress) refresh themselves, in seconds.
    refresh_seconds: int = 10
    #: Behind a reverse proxy: take the client's address (login limits, audit) from the last
    #: X-Forwarded-For entry the proxy added, not from the connection (which is the proxy's).
    behind_proxy: bool = False


@dataclass(frozen=True)
class Config:
    database: Path | str = Path("khaosat.sqlite")  # or a postgresql:// URL
    #: "full": every answer is on disk before the bot replies; "normal": faster, still safe when
    #: the process is killed, but a power cut may lose the last answers (see BENCHMARKS.md).
    synchronous: str = "full"
    timezone: str = "Asia/Ho_Chi_Minh"
    language: str = "vi"
    bots: tuple[BotConfig, ...] = ()
    source: Path | None = field(default=None, compare=False)
    #: Minutes between two reminder passes (``[reminders] interval_minutes``).
    reminder_interval_minutes: int = 15
    #: Local time (HH:MM) of the coordinators' daily summary; None: no summary.
    daily_summary: str | None = "08:00"
    #: The web console; None when the file has no [console] section.
    console: ConsoleConfig | None = None
    #: The respondents' web pages; None when the file has no [web] section.
    web: WebConfig | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def check_secrets(self) -> None:
        """Every bot's token (and webhook secret) is at hand: for commands that talk to a platform."""
        missing = [problem for bot in self.bots for problem in bot.missing_secrets]
        if missing:
            raise ConfigError(f"{self.source}: " + "; ".join(missing))


_TOP = {"storage": {"path", "synchronous"}, "locale": {"timezone", "language"}, "reminders": {"interval_minutes"},
        "coordinators": {"daily_summary"},
        "console": {"listen", "port", "secure_cookies", "session_hours", "max_upload_mb", "refresh_seconds",
                    "behind_proxy"},
        "web": WEB_KEYS}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_BOT_KEYS = {"name", "token", "token_env", "api_base", "mode", "forms", "open_codes", "open_stratum_question",
             "coordinators", "pace", "webhook", "code_attempts_per_hour",
             "code_failures_per_minute"}
_PACE_KEYS = {"per_second", "per_chat_per_second", "per_chat_burst", "max_in_flight"}
_WEBHOOK_KEYS = {"url", "listen", "secret_token", "secret_token_env"}
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}; perhaps Windows-1258 or TCVN3): "
                          "save it as UTF-8") from None
    known = set(_TOP) | set(CHANNELS)
    for section, values in raw.items():
        if section not in known:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(sorted(known))}")
        if section in _TOP:
            _check_keys(path, section, values, _TOP[section])
    storage: dict[str, Any] = raw.get("storage", {})
    locale: dict[str, Any] = raw.get("locale", {})
    bots = tuple(_bot(path, channel, index, table)
                 for channel in CHANNELS for index, table in enumerate(_tables(path, raw, channel)))
    names = [(b.channel, b.name) for b in bots]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two bots share a name; each [[telegram]]/[[zalo]] needs its own name")
    interval = raw.get("reminders", {}).get("interval_minutes", Config.reminder_interval_minutes)
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 1440:
        raise ConfigError(f"{path}: reminders.interval_minutes must be a whole number of minutes from 1 to 1440")
    summary = raw.get("coordinators", {}).get("daily_summary", Config.daily_summary)
    if summary is False or summary == "":
        summary = None
    elif not isinstance(summary, str) or not _HHMM.match(summary):
        raise ConfigError(f"{path}: coordinators.daily_summary must be a local time HH:MM (24-hour), "
                          "or false for none")
    synchronous = storage.get("synchronous", Config.synchronous)
    if synchronous not in ("full", "normal"):
        raise ConfigError(f"{path}: storage.synchronous must be \"full\" or \"normal\"")
    database = storage.get("path", Config.database)
    database = database if is_postgresql_url(database) else _relative(path, database)
    config = Config(database=database, synchronous=synchronous,
                    timezone=locale.get("timezone", Config.timezone),
                    language=locale.get("language", Config.language), bots=bots, source=path,
                    reminder_interval_minutes=interval, daily_summary=summary,
                    console=_console(path, raw["console"]) if "console" in raw else None,
                    web=_web(path, raw["web"], bots) if "web" in raw else None)
    try:
        config.zone
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: locale.timezone '{config.timezone}' is not a known time zone") from None
    if config.language not in UI_LANGUAGES:
        raise ConfigError(f"{path}: locale.language must be one of {', '.join(UI_LANGUAGES)}")
    return config


def _web(path: Path, table: dict, bots: tuple[BotConfig, ...]) -> WebConfig:
    try:
        return web_config(path, table, [bot.name for bot in bots])
    except WebConfigError as error:
        raise ConfigError(str(error)) from None


def _console(path: Path, table: dict) -> ConsoleConfig:
    listen = table.get("listen", ConsoleConfig.host)
    port = table.get("port", ConsoleConfig.port)
    secure = table.get("secure_cookies", ConsoleConfig.secure_cookies)
    hours = table.get("session_hours", ConsoleConfig.session_hours)
    upload = table.get("max_upload_mb", ConsoleConfig.max_upload_mb)
    if not isinstance(listen, str) or not listen:
        raise ConfigError(f"{path}: console.listen must be an address, e.g. \"127.0.0.1\" or \"0.0.0.0\"")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{path}: console.port must be a port number from 1 to 65535")
    if secure not in (True, False, "auto"):
        raise ConfigError(f"{path}: console.secure_cookies must be true, false or \"auto\"")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 30:
        raise ConfigError(f"{path}: console.session_hours must be a whole number of hours from 1 to 720")
    if isinstance(upload, bool) or not isinstance(upload, int) or not 1 <= upload <= 10_000:
        raise ConfigError(f"{path}: console.max_upload_mb must be a whole number from 1 to 10000")
    refresh = table.get("refresh_seconds", ConsoleConfig.refresh_seconds)
    if isinstance(refresh, bool) or not isinstance(refresh, int) or not 1 <= refresh <= 3600:
        raise ConfigError(f"{path}: console.refresh_seconds must be a whole number of seconds from 1 to 3600")
    proxy = table.get("behind_proxy", ConsoleConfig.behind_proxy)
    if not isinstance(proxy, bool):
        raise ConfigError(f"{path}: console.behind_proxy must be true or false")
    return ConsoleConfig(host=listen, port=port, secure_cookies=secure, session_hours=hours, max_upload_mb=upload,
                         refresh_seconds=refresh, behind_proxy=proxy)


def _tables(path: Path, raw: dict, channel: str) -> list[dict]:
    tables = raw.get(channel, [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: write bots as [[{channel}]] (a list of tables), not [{channel}]")
    return tables


def _bot(path: Path, channel: str, index: int, table: dict) -> BotConfig:
    where = f"[[{channel}]] #{index + 1}"
    _check_keys(path, where, table, _BOT_KEYS)
    name = table.get("name")
    if not name or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(name)):
        raise ConfigError(f"{path}: {where} needs a name of lower-case letters, digits, - or _")
    where = f"[[{channel}]] '{name}'"
    missing: list[str] = []
    token = _secret(where, table, "token", "token_env", missing)
    if not token and not missing:
        raise ConfigError(f"{path}: {where} has no token: set token_env to the name of an environment variable")
    mode = table.get("mode", "polling")
    if mode not in ("polling", "webhook"):
        raise ConfigError(f"{path}: {where} mode must be polling or webhook")
    pace_table = table.get("pace", {})
    _check_keys(path, f"{where}.pace", pace_table, _PACE_KEYS)
    webhook = table.get("webhook", {})
    _check_keys(path, f"{where}.webhook", webhook, _WEBHOOK_KEYS)
    secret = _secret(f"{where}.webhook", webhook, "secret_token", "secret_token_env", missing)
    if mode == "webhook":
        if not webhook.get("url"):
            raise ConfigError(f"{path}: {where} is in webhook mode but has no webhook.url")
        shortest = 8 if channel == "zalo" else 1  # Zalo asks for at least 8 characters
        unset = "secret_token_env" in webhook and secret is None  # checked when it is set (check_secrets)
        if not unset and (not secret or not _SECRET.match(secret) or len(secret) < shortest):
            raise ConfigError(f"{path}: {where} webhook needs a secret token of {shortest}-256 characters "
                              "A-Z a-z 0-9 _ -")
    forms = tuple(_relative(path, form) for form in table.get("forms", []))
    for form in forms:
        if not form.is_file():
            raise ConfigError(f"{path}: {where} form {form} does not exist")
    failures_per_minute = table.get("code_failures_per_minute", BotConfig.code_failures_per_minute)
    if isinstance(failures_per_minute, bool) or not isinstance(failures_per_minute, int) \
            or not 1 <= failures_per_minute <= 100_000:
        raise ConfigError(f"{path}: {where}.code_failures_per_minute must be a whole number from 1 to 100000")
    token_key = f"token_env (${table['token_env']})" if "token_env" in table else "token"
    return BotConfig(
        channel=channel, name=str(name), token=token or "", token_key=token_key, missing_secrets=tuple(missing),
        source=path,
        api_base=str(table.get("api_base", DEFAULT_API_BASE[channel])).rstrip("/"),
        mode=mode, forms=forms, open_codes=dict(table.get("open_codes", {})),
        open_stratum_question=table.get("open_stratum_question"),
        coordinators=tuple(int(c) if channel == "telegram" else str(c) for c in table.get("coordinators", [])),
        pace=Pace(**{k: pace_table[k] for k in pace_table}),
        webhook_url=webhook.get("url"), webhook_listen=webhook.get("listen", "127.0.0.1:8443"),
        webhook_secret=secret, code_attempts_per_hour=int(table.get("code_attempts_per_hour", 5)),
        code_failures_per_minute=failures_per_minute,
    )


def _secret(where: str, table: Mapping, key: str, env_key: str, missing: list[str]) -> str | None:
    """The secret, from the environment variable named by ``env_key`` or from ``key``; an unset
    variable is added to ``missing`` (an error only where the secret is used)."""
    if env_key in table:
        value = os.environ.get(str(table[env_key]))
        if not value:
            missing.append(f"{where} reads {key} from ${table[env_key]}, which is not set")
            return None
        return value
    return table.get(key)


def _check_keys(path: Path, where: str, values: Any, allowed: set[str]) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    unknown = set(values) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown key {where}.{sorted(unknown)[0]}; "
                          f"known in {where}: {', '.join(sorted(allowed))}")


def _relative(config_path: Path, value: Any) -> Path:
    """Paths in the file are relative to the file, not to where the command is run from."""
    path = Path(value)
    return path if path.is_absolute() else config_path.parent / path
