"""What a channel hands the chat core, and what the core hands back to be rendered.

A channel (Telegram, Zalo, a web page) parses its platform's input into one of the *incoming*
events below, and renders the *outgoing* items (the engine's `Say`/`Ask` and the few the core
adds) in its own syntax: buttons where it has them, numbered text where it does not. Nothing
here knows a platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence, Union

from surveys import engine

# -- incoming ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str
    #: The prompt it answers, where the channel knows it (a web form): an answer sent from a page
    #: the person has since moved past is stale, as a button on an old message is.
    seq: int | None = None


@dataclass(frozen=True)
class Command:
    """`/name argument`; `/start` carries the payload of a deep link."""

    name: str
    argument: str = ""


@dataclass(frozen=True)
class Press:
    """A button pressed: an operation (below), the sequence number of the prompt it belongs to
    and the option's key; a press on an older prompt is stale."""

    op: str
    seq: int
    key: str = ""


@dataclass(frozen=True)
class Contact:
    """A phone number the platform vouches for; `own`: the sender's own number."""

    phone: str
    own: bool


@dataclass(frozen=True)
class Location:
    """A location shared from the platform's map, in degrees; `accuracy` in metres when given."""

    latitude: float
    longitude: float
    accuracy: float | None = None


@dataclass(frozen=True)
class Media:
    """A photo, voice note, audio, video or document sent in the chat (`bot/chat/media.py`).

    `kind`: "photo", "voice", "audio", "video" or "document"; `size` in bytes as the platform
    declares it (None when it does not say); `fetch` downloads the bytes, only when the prompt
    on screen asks for a file (a photo sent to a number question fetches nothing). `seq`: the
    prompt it answers, where the channel knows it (a web page): checked under the chat's turn, so
    a file posted from a page the person has since moved past is stale, not kept for another question."""

    kind: str
    mime: str
    size: int | None
    filename: str | None
    fetch: Callable[[], Awaitable[bytes]] = field(compare=False, repr=False)
    seq: int | None = None


@dataclass(frozen=True)
class NotText:
    """A sticker, photo, voice note…: nothing the survey can read. ``kind``: what it was, where the
    platform says (UNSUPPORTED, IMAGE, STICKER below; "" where it does not)."""

    kind: str = ""


#: NotText kinds. UNSUPPORTED: the platform says a message came but not what it held (Zalo sends a
#: shared location, a voice note or a file so).
UNSUPPORTED, IMAGE, STICKER = "unsupported", "image", "sticker"


@dataclass(frozen=True)
class Blocked:
    """The person blocked the bot (a membership change)."""


@dataclass(frozen=True)
class Joined:
    """The bot was added to a chat (on Telegram: a group, a supergroup or a channel)."""


Incoming = Union[Text, Command, Press, Contact, Location, Media, NotText, Blocked, Joined]


def typed(text: str) -> Incoming:
    """What a person typed: `/name argument` is a command, anything else text (empty: not text)."""
    text = text.strip()
    if not text:
        return NotText()
    if text.startswith("/"):
        name, _, argument = text.partition(" ")
        return Command(name[1:].lower(), argument.strip())
    return Text(text)

# Button operations (a Press's `op`).
CHOOSE, TOGGLE, TICK, UNTICK, DONE, BACK, SKIP, CONFIRM_STOP = "c", "t", "+", "-", "d", "b", "k", "x"

# -- outgoing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """Text from the core; `closes_phone_request`: the phone-sharing keyboard has done its job."""

    text: str
    closes_phone_request: bool = False
    #: Where the text is a step of the person's data rights (``bot/chat/privacy.py``): "held" (what
    #: is held, the withdrawal may be asked for), "confirm" (the withdrawal awaits a yes), "state"
    #: (a request is open: nothing else is said). A channel that draws pages offers the buttons.
    rights: str = ""


@dataclass(frozen=True)
class ConfirmStop:
    """"Stop for good?" with a yes and a no button, stale like the prompt `seq` it was asked over."""

    text: str
    seq: int
    yes: str
    no: str


@dataclass(frozen=True)
class AskPhone:
    """The welcome of a channel that can ask for the person's phone number with one tap."""

    text: str
    button: str


@dataclass(frozen=True)
class Document:
    path: str
    filename: str
    caption: str


@dataclass(frozen=True)
class Leave:
    """The bot leaves the chat (a group it was added to); a channel that cannot leave renders nothing."""


Outgoing = Union[engine.Say, engine.Ask, Notice, ConfirmStop, AskPhone, Document, Leave]


@dataclass(frozen=True)
class Capabilities:
    buttons: bool = False
    phone_request: bool = False
    documents: bool = False
    #: The longest message the platform takes (longer ones are split at line ends).
    text_limit: int = 2000
    #: The code itself proves who the person is (a web link, opened on each of their devices):
    #: a code already used on this channel links another chat of it too.
    code_is_key: bool = False


@dataclass(frozen=True)
class Call:
    """One platform API call to queue: a method name and its JSON payload."""

    method: str
    payload: dict


class Renderer(Protocol):
    """A channel's output side: the calls that show `outputs` in chat `chat_id`.

    `pressed`: what the channel said about the button just pressed (opaque to the core), so a
    renderer can answer on the button or edit the pressed message. Returns the calls and the
    short notice to show on the button, if any.
    """

    capabilities: Capabilities

    def render(self, outputs: Sequence[Outgoing], chat_id: str, language: str, *, accepted: bool = True,
               pressed: Any = None) -> tuple[list[Call], str | None]: ...
