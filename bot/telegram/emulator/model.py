"""What the Telegram emulator's parts share: Telegram's error texts and limits, the records tests
read (requests, counters, messages received), errors, and the request parameters as handlers
read them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.emulation import EmulatedApiError, RecordedRequest
from bot.telegram.botapi_spec import parse_boolean_text

if TYPE_CHECKING:
    from bot.telegram.emulator.people import SimulatedUser


NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete"
    " the webhook first"
)
POLLING_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_INTEGER_TEXT = re.compile(r"\s*-?\d+\s*")
_WEBHOOK_PORTS = {80, 88, 443, 8443}
# Update kinds Telegram leaves out unless a bot asks for them in allowed_updates.
_OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
# Inline buttons need exactly one action besides their label; a label-only button is refused.
_INLINE_BUTTON_LABEL_FIELDS = {"text", "icon_custom_emoji_id", "style"}
# Tags Telegram's HTML parse mode understands; anything else (<br>, <p>, <div>) is a 400.
_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji", "tg-time",
}


@dataclass(frozen=True)
class Limits:
    """Telegram's limits (defaults are the documented or observed values), all overridable."""

    per_bot_per_second: float = 30
    per_chat_per_second: float = 1
    per_chat_burst: int = 3
    text_max: int = 4096
    caption_max: int = 1024
    callback_data_max_bytes: int = 64
    buttons_max: int = 100
    callback_query_ttl: float = 15.0
    document_max_bytes: int = 50 * 1024 * 1024
    photo_max_bytes: int = 10 * 1024 * 1024
    # Pauses between webhook delivery attempts; the last one repeats until delivery succeeds,
    # because Telegram keeps undelivered updates instead of dropping them.
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 1.0)
    webhook_timeout: float = 10.0


class Request(RecordedRequest):
    """One API call as the emulator saw it (after ``attach://`` references are resolved)."""


@dataclass
class BotStats:
    """Per-bot counters, so tests can assert e.g. that a broadcast never hit a 429."""

    sent: int = 0
    edits: int = 0
    deleted: int = 0
    callback_answers: int = 0
    too_many_requests: int = 0
    forbidden: int = 0
    bad_requests: int = 0


@dataclass
class ReceivedMessage:
    """A message the bot sent to a simulated user; edits update it in place."""

    message_id: int
    chat_id: int
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    photo: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    file_data: bytes | None = None
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False
    source_text: str | None = None  # text as sent, before parse_mode markup was rendered

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])


class ApiError(EmulatedApiError):
    """An error answer of the Bot API: status code, description, optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(status, description, retry_after)
        self.status = status


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _forbidden(description: str) -> ApiError:
    return ApiError(403, f"Forbidden: {description}")


def _too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


class _Params:
    """Typed access to request parameters, which arrive as text (forms) or as JSON values."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            return int(value)
        raise _bad(f"invalid {name} specified")

    def boolean(self, name: str) -> bool:
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        parsed = parse_boolean_text(str(value))
        if parsed is None:
            raise _bad(f"invalid {name} specified")
        return parsed

    def json(self, name: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"can't parse {name} JSON object") from None

    def required(self, name: str, getter: Callable[[str], Any]) -> Any:
        value = getter(name)
        if value is None or value == "":
            raise _bad(f"{name} is empty")
        return value


@dataclass
class _Pending:
    update: dict[str, Any]
    redelivery: bool = False  # a duplicate survives confirmation until it has been handed out

    @property
    def update_id(self) -> int:
        return self.update["update_id"]

    @property
    def kind(self) -> str:
        return next(key for key in self.update if key != "update_id")


@dataclass
class _CallbackQuery:
    user: SimulatedUser
    created: float
    answered: bool = False


@dataclass(frozen=True)
class _StoredFile:
    kind: str  # "document", "photo", "audio" or "video": Telegram refuses a file_id of another kind
    info: dict[str, Any]
    data: bytes | None
