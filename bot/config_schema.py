"""The schema of the configuration file, and the words a coordinator reads when it is not met.

pydantic (v2, strict: a quoted "5" is not the number 5, ``true`` is not 1) checks types, ranges
and unknown keys of each section; ``Problems`` turns its errors into one line per problem that
names the TOML table and key as the file spells them:

    config.toml: [telegram.pace] max_in_flight: must be ≥ 1, got 0

Each section and each bot table is validated on its own, so one wrong bot does not hide the
problems of the next: every problem of the file is listed at once. Checks that span keys
(a webhook needs a URL; an open code names one of the bot's forms) are in ``bot.config``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _check(pattern: re.Pattern, message: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(message)
        return value
    return AfterValidator(check)


def _path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must be a path (it contains a NUL character)")
    return value


def _listen(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT with a port from 1 to 65535, e.g. \"127.0.0.1:8443\"")
    return value


def _telegram_user_id(value: Any) -> int:
    """Telegram user ids are numbers; written in quotes they are accepted if they are digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        return int(value)
    raise ValueError("must be a Telegram user id (a number)")


def _zalo_user_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError("must be a Zalo user id (text)")
    return str(value)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Text = Annotated[str, Field(min_length=1)]
PathText = Annotated[str, Field(min_length=1), AfterValidator(_path)]
Positive = Annotated[float, Field(gt=0)]
AtLeastOne = Annotated[int, Field(ge=1)]


class StorageSection(_Table):
    path: PathText = "khaosat.sqlite"
    synchronous: Literal["full", "normal"] = "full"


class LocaleSection(_Table):
    timezone: Text = "Asia/Ho_Chi_Minh"
    language: Text = "vi"


class RemindersSection(_Table):
    interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 15


def _daily_summary(value: Any) -> str | None:
    if value is False or value == "":
        return None
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError("must be a local time \"HH:MM\" (24-hour, in quotes), or false for none")
    return value


def _secure_cookies(value: Any) -> bool | str:
    if value not in (True, False, "auto") or isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("must be true, false or \"auto\"")
    return value


def _open_code(value: Any) -> dict:
    """An open code names a form_id, or a table with the form and the stratum of that counter."""
    if isinstance(value, str) and value:
        return {"form": value, "stratum": None}
    if isinstance(value, dict):
        unknown = set(value) - {"form", "stratum"}
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]} (a code's table has form and stratum)")
        form, stratum = value.get("form"), value.get("stratum")
        if not isinstance(form, str) or not form:
            raise ValueError("needs form = \"<form_id>\"")
        if stratum is not None and (not isinstance(stratum, str) or not stratum):
            raise ValueError("stratum must be text in quotes")
        return {"form": form, "stratum": stratum}
    raise ValueError("must be a form_id in quotes or a table { form = …, stratum = … }")


class CoordinatorsSection(_Table):
    #: A local time HH:MM, or false (or "") for no daily summary.
    daily_summary: Annotated[Any, AfterValidator(_daily_summary)] = "08:00"


class ConsoleSection(_Table):
    listen: Text = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    secure_cookies: Annotated[Any, AfterValidator(_secure_cookies)] = "auto"
    session_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 12
    max_upload_mb: Annotated[int, Field(ge=1, le=10_000)] = 512
    refresh_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    behind_proxy: bool = False
    files_dir: PathText | None = None


class ProcessSection(_Table):
    """``[process]``: this ``khaosat run`` among several on one database (bot/processes.py)."""

    name: Annotated[str, _check(re.compile(r"^[A-Za-z0-9._-]{1,64}$"),
                                "must be 1-64 letters, digits, '.', '_' or '-'")] | None = None
    health: Annotated[str, AfterValidator(_listen)] | None = None
    log_format: Literal["text", "json"] = "text"
    shared_chats: bool = False


class PaceTable(_Table):
    per_second: Positive | None = None
    per_chat_per_second: Positive | None = None
    per_chat_burst: AtLeastOne | None = None
    max_in_flight: AtLeastOne | None = None
    max_attempts: AtLeastOne | None = None


class WebhookTable(_Table):
    url: Annotated[str, _check(re.compile(r"^https?://\S+$"), "must be an http(s):// URL")] | None = None
    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:8443"
    secret_token: Text | None = None
    secret_token_env: Text | None = None


class BotTable(_Table):
    name: Annotated[str, _check(_NAME, "must be lower-case letters, digits, - or _ (starting with a letter "
                                       "or digit)")]
    token: Text | None = None
    token_env: Text | None = None
    api_base: Annotated[str, _check(re.compile(r"^https?://\S+$"), "must be an http(s):// URL")] | None = None
    mode: Literal["polling", "webhook"] = "polling"
    forms: list[PathText] = []
    open_codes: dict[str, Annotated[Any, AfterValidator(_open_code)]] = {}
    open_stratum_question: Text | None = None
    pace: PaceTable = PaceTable()
    webhook: WebhookTable = WebhookTable()
    code_attempts_per_hour: Annotated[int, Field(ge=1, le=1000)] = 5
    #: Wrong codes per minute from all the bot's chats before only chats without one may try (hardening).
    code_failures_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 30
    #: The largest photo, recording or file a media question takes, in MB (Telegram serves up to 20).
    media_limit_mb: Annotated[int, Field(ge=1, le=20)] = 20


class TelegramBotTable(BotTable):
    coordinators: list[Annotated[Any, AfterValidator(_telegram_user_id)]] = []


class ZaloBotTable(BotTable):
    coordinators: list[Annotated[Any, AfterValidator(_zalo_user_id)]] = []


SECTIONS: dict[str, type[_Table]] = {"storage": StorageSection, "locale": LocaleSection,
                                     "reminders": RemindersSection, "coordinators": CoordinatorsSection,
                                     "console": ConsoleSection, "process": ProcessSection}
BOT_TABLES: dict[str, type[BotTable]] = {"telegram": TelegramBotTable, "zalo": ZaloBotTable}
#: Bot keys that are TOML tables of their own: ``[telegram.pace]``, ``[zalo.webhook]``.
_SUBTABLES = ("pace", "webhook")

M = TypeVar("M", bound=BaseModel)


def shown(value: Any) -> str:
    """A value as the TOML file wrote it, for "got …"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # quoted and escaped as TOML writes it: a line break stays on the line
        return json.dumps(value if len(value) <= 60 else value[:57] + "…", ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (dt.date, dt.time)):
        return f"{value.isoformat()} (a date or time)"
    return str(value)


def toml_key(part: str | int) -> str:
    """One step of a key path as TOML spells it: bare, "quoted" or [n] (a list item, from 1)."""
    if isinstance(part, int):
        return f"[{part + 1}]"
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else shown(part)


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _what(error: dict) -> str:
    """pydantic's error in the words of a configuration file."""
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f", got {shown(error['input'])}"
    match kind:
        case "int_type" | "int_parsing" | "int_from_float":
            return "must be a whole number" + got
        case "float_type" | "float_parsing":
            return "must be a number" + got
        case "string_type":
            return "must be text in quotes" + got
        case "bool_type" | "bool_parsing":
            return "must be true or false" + got
        case "list_type":
            return "must be a list [ … ]" + got
        case "dict_type" | "model_type" | "model_attributes_type":
            return "must be a table" + got
        case "literal_error":
            return f"must be {ctx.get('expected', 'one of the documented values')}" + got
        case "greater_than_equal":
            return f"must be ≥ {_number(ctx['ge'])}" + got
        case "greater_than":
            return f"must be > {_number(ctx['gt'])}" + got
        case "less_than_equal":
            return f"must be ≤ {_number(ctx['le'])}" + got
        case "less_than":
            return f"must be < {_number(ctx['lt'])}" + got
        case "string_too_short":
            return "must not be empty"
        case "missing":
            return "is required"
        case "extra_forbidden":
            return "unknown key"
        case "value_error":
            return str(ctx.get("error", error["msg"])) + got
    return error["msg"] + got


class Problems:
    """Every problem of one configuration file, each a line naming its table and key."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        line = f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        line = line.replace("\r", "\\r").replace("\n", "\\n")  # one problem, one line (a path may hold a break)
        if line not in self.lines:
            self.lines.append(line)

    def validate(self, model: type[M], raw: Any, section: str, *, bot: str | None = None) -> M | None:
        """``raw`` as ``model``, or None after adding one problem per pydantic error."""
        if not isinstance(raw, dict):
            self.add(f"[{section}]" + (f" of bot {bot}" if bot else ""), f"must be a table, got {shown(raw)}")
            return None
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            for item in error.errors():
                self._add_error(model, item, section, bot)
            return None

    def _add_error(self, model: type[BaseModel], error: dict, section: str, bot: str | None) -> None:
        loc = list(error["loc"])
        table = section
        if loc and loc[0] in _SUBTABLES and len(loc) > 1:
            table = f"{section}.{loc.pop(0)}"
        key = ".".join(map(toml_key, loc)).replace(".[", "[")
        where = f"[{table}]" + (f" {key}" if key else "") + (f" of bot {bot}" if bot else "")
        message = _what(error)
        if error["type"] == "extra_forbidden":
            fields = model.model_fields
            sub = fields.get(table.split(".", 1)[1]) if "." in table else None
            known = sorted((sub.annotation.model_fields if sub else fields))  # type: ignore[union-attr]
            message += f"; known in [{table}]: {', '.join(known)}"
        self.add(where, message)
