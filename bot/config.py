"""The configuration file (TOML; see config.example.toml), checked strictly.

The file is checked against a schema (``bot.config_schema``) at load: every problem is listed
at once, one line each naming the table and key. An unknown key is an error naming the key, because a misspelt setting that is silently
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

from bot.config_schema import BOT_TABLES, SECTIONS, BotTable, Problems, shown, toml_key
from bot.outbox import Pace
from bot.web.settings import WebConfig, WebConfigError, web_config
from storage import is_postgresql_url
from surveys.messages import UI_LANGUAGES

CHANNELS = ("telegram", "zalo")
DEFAULT_API_BASE = {"telegram": "https://api.telegram.org", "zalo": "https://bot-api.zapps.me"}


class ConfigError(ValueError):
    """A configuration refused; ``problems`` has one line per problem (``str``: all of them)."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


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
    #: The largest file a media question takes, in MB (`bot/chat/media.py`).
    media_limit_mb: int = 20
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
    #: Where jobs keep uploads and results (None: beside the SQLite file; for a PostgreSQL
    #: database, in the folder khaosat runs in).
    files_dir: Path | None = None


@dataclass(frozen=True)
class ProcessConfig:
    """``[process]``: this ``khaosat run`` process among several on one database (bot/processes.py)."""

    #: In logs and in the database's list of live processes; None: "<host>-<pid>".
    name: str | None = None
    #: "host:port" of /healthz and /readyz; None: not served.
    health: str | None = None
    #: "text" (one human line per event) or "json" (one JSON object per line, for a log collector).
    log_format: str = "text"
    #: Updates of one chat may reach several processes (webhooks behind a load balancer): take a
    #: turn on the chat in the database around each update.
    shared_chats: bool = False


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
    process: ProcessConfig = ProcessConfig()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def check_secrets(self) -> None:
        """Every bot's token (and webhook secret) is at hand: for commands that talk to a platform."""
        missing = [problem for bot in self.bots for problem in bot.missing_secrets]
        if missing:
            raise ConfigError(f"{self.source}: " + "; ".join(missing))


_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def load_config(path: Path) -> Config:
    """The configuration in ``path``, or ``ConfigError`` listing every problem (one line each)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}; perhaps Windows-1258 or TCVN3): "
                          "save it as UTF-8") from None
    problems = Problems(path)
    known = [*SECTIONS, *CHANNELS, "web"]  # [web] is checked by bot/web/settings.py
    for section in raw:
        if section not in known:
            problems.add(f"[{section}]", f"unknown section; known: {', '.join(sorted(known))}")
    sections = {name: problems.validate(model, raw.get(name, {}), name) for name, model in SECTIONS.items()}
    bots = [bot for channel in CHANNELS for bot in _bots(path, channel, raw.get(channel, []), problems)]
    names = [(b.channel, b.name) for b in bots]
    for channel, name in sorted({n for n in names if names.count(n) > 1}):
        problems.add(f"[[{channel}]] name", f"two bots are named {shown(name)}; each needs its own name")
    storage, locale = sections["storage"], sections["locale"]
    if locale is not None:
        try:
            ZoneInfo(locale.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.add("[locale] timezone", f"not a known time zone, got {shown(locale.timezone)} "
                         "(e.g. \"Asia/Ho_Chi_Minh\")")
        if locale.language not in UI_LANGUAGES:
            problems.add("[locale] language", f"must be one of {', '.join(UI_LANGUAGES)}, got {shown(locale.language)}")
    web = None
    if "web" in raw:
        try:
            web = web_config(path, raw["web"], [bot.name for bot in bots]) if isinstance(raw["web"], dict) else None
        except WebConfigError as error:
            problems.add("", str(error).removeprefix(f"{path}: "))
        if not isinstance(raw["web"], dict):
            problems.add("[web]", f"must be a table, got {shown(raw['web'])}")
    if problems.lines:
        raise ConfigError(problems.lines)
    assert storage is not None and locale is not None
    database = storage.path if is_postgresql_url(storage.path) else _relative(path, storage.path)
    console = sections["console"]
    return Config(database=database, synchronous=storage.synchronous, timezone=locale.timezone,
                  language=locale.language, bots=tuple(bots), source=path,
                  reminder_interval_minutes=sections["reminders"].interval_minutes,  # type: ignore[union-attr]
                  daily_summary=sections["coordinators"].daily_summary,  # type: ignore[union-attr]
                  console=ConsoleConfig(host=console.listen, port=console.port,  # type: ignore[union-attr]
                                        secure_cookies=console.secure_cookies, session_hours=console.session_hours,
                                        max_upload_mb=console.max_upload_mb, refresh_seconds=console.refresh_seconds,
                                        behind_proxy=console.behind_proxy,
                                        files_dir=_relative(path, console.files_dir) if console.files_dir else None)
                  if "console" in raw else None,
                  web=web, process=ProcessConfig(**sections["process"].model_dump()))  # type: ignore[union-attr]


def _bots(path: Path, channel: str, tables: Any, problems: Problems) -> list[BotConfig]:
    if not isinstance(tables, list):
        problems.add(f"[{channel}]", f"write bots as [[{channel}]] (a list of tables), not [{channel}]")
        return []
    bots = []
    for index, table in enumerate(tables):
        named = table.get("name") if isinstance(table, dict) else None
        label = (f"'{named}'" if isinstance(named, str) else f"#{index + 1}") if len(tables) > 1 else None
        model = problems.validate(BOT_TABLES[channel], table, channel, bot=label)
        if model is not None:
            bot = _bot(path, channel, model, problems, f" of bot '{model.name}'" if label else "")
            if bot is not None:
                bots.append(bot)
    return bots


def _bot(path: Path, channel: str, table: BotTable, problems: Problems, of: str) -> BotConfig | None:
    """Checks that span keys of one bot table (its keys and types were checked by the schema)."""
    before = len(problems.lines)
    missing: list[str] = []
    where = f"[[{channel}]] '{table.name}'"
    token = _secret(where, table.token, table.token_env, "token", "token_env", missing)
    if table.token is not None and table.token_env is not None:
        problems.add(f"[{channel}] token{of}", "give token or token_env, not both")
    elif not token and not missing:
        problems.add(f"[{channel}] token_env{of}", "is required: the name of the environment variable that "
                     "holds the bot's token")
    webhook = table.webhook
    secret = _secret(f"{where}.webhook", webhook.secret_token, webhook.secret_token_env, "secret_token",
                     "secret_token_env", missing)
    if table.mode == "webhook":
        if not webhook.url:
            problems.add(f"[{channel}.webhook] url{of}", "is required in webhook mode (mode = \"webhook\")")
        shortest = 8 if channel == "zalo" else 1  # Zalo asks for at least 8 characters
        unset = webhook.secret_token_env is not None and secret is None  # checked when set (check_secrets)
        if not unset and (not secret or not _SECRET.match(secret) or len(secret) < shortest):
            problems.add(f"[{channel}.webhook] secret_token{of}", f"webhook mode needs a secret token of "
                         f"{shortest}-256 characters A-Z a-z 0-9 _ -")
    forms = tuple(_relative(path, form) for form in table.forms)
    for number, form in enumerate(forms, start=1):
        if form.is_dir():
            problems.add(f"[{channel}] forms[{number}]{of}", f"{form} is a folder, not a questionnaire file")
        elif not form.is_file():
            problems.add(f"[{channel}] forms[{number}]{of}", f"{form} does not exist")
    if table.open_codes and len(problems.lines) == before:
        served = _form_ids(forms)
        for payload, target in table.open_codes.items():
            if served is not None and target["form"] not in served:
                problems.add(f"[{channel}] open_codes.{toml_key(payload)}{of}",
                             f"names form {shown(target['form'])}, which is not one of this bot's forms "
                             f"({', '.join(served) or 'none'})")
    if len(problems.lines) > before:
        return None
    return BotConfig(
        channel=channel, name=table.name, token=token or "", missing_secrets=tuple(missing), source=path,
        token_key=f"token_env (${table.token_env})" if table.token_env is not None else "token",
        api_base=(table.api_base or DEFAULT_API_BASE[channel]).rstrip("/"),
        mode=table.mode, forms=forms,
        open_codes={payload: (target["form"] if target["stratum"] is None else dict(target))
                    for payload, target in table.open_codes.items()},
        open_stratum_question=table.open_stratum_question, coordinators=tuple(table.coordinators),
        pace=Pace(**table.pace.model_dump(exclude_none=True)),
        webhook_url=webhook.url, webhook_listen=webhook.listen, webhook_secret=secret,
        code_attempts_per_hour=table.code_attempts_per_hour, code_failures_per_minute=table.code_failures_per_minute,
        media_limit_mb=table.media_limit_mb)


def _form_ids(forms: tuple[Path, ...]) -> list[str] | None:
    """The form_id of each questionnaire (read only when open codes must name one of them); None
    when a form does not load (``khaosat run`` and ``form check`` report that one)."""
    from surveys.xlsform import FormError, load_questionnaire

    try:
        return [load_questionnaire(form).form_id for form in forms]
    except FormError:
        return None


def _secret(where: str, value: str | None, env_name: str | None, key: str, env_key: str,
            missing: list[str]) -> str | None:
    """The secret, from the environment variable named by ``env_key`` or from ``key``; an unset
    variable is added to ``missing`` (an error only where the secret is used)."""
    if env_name is not None:
        secret = os.environ.get(env_name)
        if not secret:
            missing.append(f"{where} reads {key} from ${env_name}, which is not set")
            return None
        return secret
    return value


def _relative(config_path: Path, value: Any) -> Path:
    """Paths in the file are relative to the file, not to where the command is run from."""
    path = Path(value)
    return path if path.is_absolute() else config_path.parent / path
