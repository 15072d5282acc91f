"""What the Zalo emulator's parts share: the platform's error codes and texts, each method's
parameters, limits, the records tests read, errors and the pending-update entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.emulation import EmulatedApiError, RateLimiter, RecordedRequest


#: Header carrying setWebhook's secret_token on every webhook POST.
SECRET_HEADER = "X-Bot-Api-Secret-Token"
#: Error codes and descriptions the platform does not document; the emulator's choices.
FORBIDDEN = 403
USER_BLOCKED = "user blocked the bot"
CHAT_NOT_STARTED = "the bot cannot write first: this person has never messaged the bot"
TIMEOUT = 408
REQUEST_TIMEOUT = "Request timeout"
WEBHOOK_CONFLICT = 409
WEBHOOK_ACTIVE = "webhook is active: call deleteWebhook before getUpdates"
TOO_MANY_REQUESTS = "Too many requests"
TEXT_TOO_LONG = "text too long"

#: Event names of updates, by the kind of message the person sent.
EVENT_NAMES = {
    "text": "message.text.received",
    "photo": "message.image.received",
    "sticker": "message.sticker.received",
    "unsupported": "message.unsupported.received",
}
CHAT_ACTIONS = {"typing", "upload_photo"}

# Parameter types: "string" is a JSON string; "number" is a JSON number or numeric text (clients
# send getUpdates' timeout both ways).
_STRING, _NUMBER = "string", "number"
#: Each method's parameters: name -> (type, required). The platform's whole surface as we know it.
METHOD_PARAMETERS: dict[str, dict[str, tuple[str, bool]]] = {
    "getMe": {},
    "getUpdates": {"timeout": (_NUMBER, False)},
    "setWebhook": {"url": (_STRING, True), "secret_token": (_STRING, True)},
    "deleteWebhook": {},
    "getWebhookInfo": {},
    "sendMessage": {"chat_id": (_STRING, True), "text": (_STRING, True)},
    "sendPhoto": {"chat_id": (_STRING, True), "photo": (_STRING, True), "caption": (_STRING, False)},
    "sendSticker": {"chat_id": (_STRING, True), "sticker": (_STRING, True)},
    "sendChatAction": {"chat_id": (_STRING, True), "action": (_STRING, True)},
}
_GET_ALLOWED = {"getMe"}


@dataclass(frozen=True)
class ZaloLimits:
    """Zalo's limits. Only text_max is documented; the rate limits are guesses, all overridable."""

    per_bot_per_second: float = 30
    per_chat_per_second: float = 1
    per_chat_burst: int = 3
    text_max: int = 2000
    caption_max: int = 2000
    secret_token_min: int = 8
    secret_token_max: int = 256
    # Whether a 429 carries parameters.retry_after (undocumented: a bot must cope without it).
    retry_after_hint: bool = True
    # Pauses between webhook delivery attempts; the last one repeats until delivery succeeds.
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 1.0)
    webhook_timeout: float = 10.0


class ZaloRequest(RecordedRequest):
    """One API call as the emulator saw it."""


@dataclass
class ZaloBotStats:
    """Per-bot counters, so tests can assert e.g. that a broadcast never hit a 429."""

    sent: int = 0
    too_many_requests: int = 0
    forbidden: int = 0
    bad_requests: int = 0
    updates_delivered: int = 0  # handed out by getUpdates or POSTed to the webhook, duplicates included
    duplicates: int = 0  # of those, redeliveries (redeliver() or spontaneous)


@dataclass
class ZaloReceived:
    """A message the bot sent to a simulated person."""

    message_id: str
    text: str | None
    date: int  # milliseconds since the epoch
    kind: str  # "text", "photo" or "sticker"
    photo: str | None = None
    caption: str | None = None
    sticker: str | None = None


class ZaloApiError(EmulatedApiError):
    """An error answer: ``{"ok": false, "error_code", "description"}`` (+ parameters.retry_after)."""


def _bad(description: str) -> ZaloApiError:
    return ZaloApiError(400, description)


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Limiter(RateLimiter):
    """A 1-second window per bot and a token bucket per chat; 429 carries retry_after if the limits say so."""

    def __init__(self, limits: ZaloLimits, clock: Callable[[], float]) -> None:
        super().__init__(limits, clock, lambda retry_after: ZaloApiError(
            429, TOO_MANY_REQUESTS, retry_after if limits.retry_after_hint else None))


@dataclass
class _Pending:
    update: dict[str, Any]
    duplicate: bool = False  # a redelivery; never duplicated again by chance

    @property
    def message_id(self) -> str:
        return self.update["message"]["message_id"]
