"""Session state, events and what to say: the data the conversation engine takes and gives.

Plain frozen dataclasses with no behaviour, so channels, storage (`surveys.codec`) and tests
share them without importing the engine's workings. `surveys.engine` re-exports every name.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from surveys.model import LabelMedia, Questionnaire

CONSENT = "__consent__"  # the `question` of the consent prompt


class Status(enum.StrEnum):
    NEW = "new"
    CONSENT = "consent"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    REFUSED = "refused"


@dataclass(frozen=True)
class SessionState:
    form_id: str
    form_version: str
    language: str
    status: Status = Status.NEW
    #: Name of the question on screen (CONSENT on the consent screen), None when none is.
    current: str | None = None
    #: Sequence number of the prompt on screen.
    seq: int = 0
    #: Question name → value. Absent: not reached. None: left empty. NOT_APPLICABLE: skipped by relevance.
    answers: Mapping[str, Any] = field(default_factory=dict)
    #: Marks of a multi-select not yet submitted with Done.
    draft: tuple[str, ...] = ()
    #: Index of the furthest question reached, so notes are not shown twice after a back step.
    furthest: int = -1
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    #: Instances of each repeat reached, by the repeat's path (`household`, `household[2]/visit`).
    instances: Mapping[str, int] = field(default_factory=dict)
    #: Paths of the repeats without a count where "add another?" was answered no.
    closed: tuple[str, ...] = ()
    #: The sampled person's unit, group, stratum and frame attributes that the form reads
    #: (`instance('respondent')/root/item/unit`), as given when the session was opened.
    preloads: Mapping[str, str] = field(default_factory=dict)
    #: What random(), uuid() and randomized choice orders are drawn from, given by the `Start`
    #: event; "" for a session stored before seeds were kept: `session_seed` derives it as then.
    seed: str = ""


def session_seed(state: SessionState) -> str:
    """The seed of the session's random values: its own, or (a session from before seeds were
    stored, or started without one) its start time as text, as random() has always used."""
    return state.seed or str(state.started_at or "")


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    at: dt.datetime
    #: Random text the channel draws when the session opens (the engine has no random source):
    #: kept as `SessionState.seed`, so every step and a replay of the event log draw the same
    #: values. None: derived from the start time, as before seeds were stored.
    seed: str | None = None


@dataclass(frozen=True)
class Reply:
    """Typed text for the prompt on screen (seq None: whatever is current)."""

    text: str
    at: dt.datetime
    seq: int | None = None


@dataclass(frozen=True)
class Locate:
    """A location shared from the platform's map (not typed): degrees, and metres when known."""

    latitude: float
    longitude: float
    at: dt.datetime
    seq: int | None = None
    altitude: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class Attach:
    """A file sent for a media question, already stored: `name` is the stored file's name (the
    answer's value, as ODK stores media answers), `mime` its type, `size` its bytes."""

    name: str
    mime: str
    size: int
    at: dt.datetime
    seq: int | None = None


@dataclass(frozen=True)
class Choose:
    """A button pressed: a choice key, `yes`/`no` on the consent screen, `ok` for acknowledge."""

    key: str
    seq: int
    at: dt.datetime


@dataclass(frozen=True)
class Toggle:
    key: str
    seq: int
    at: dt.datetime
    #: The mark the press asks for (True ticked, False not); None flips it. A button that names
    #: its target makes a double tap, or a press repeated over a weak connection, change nothing.
    on: bool | None = None


@dataclass(frozen=True)
class Done:
    seq: int
    at: dt.datetime


@dataclass(frozen=True)
class Back:
    at: dt.datetime
    seq: int | None = None


@dataclass(frozen=True)
class SetLanguage:
    language: str
    at: dt.datetime


@dataclass(frozen=True)
class Stop:
    """Stop for now (PAUSED), or with refuse=True decline to go on (REFUSED).

    `seq`: the prompt a confirmation button was shown over; once the person answered on, the
    button is stale like any other (None: a typed command, always current)."""

    at: dt.datetime
    refuse: bool = False
    seq: int | None = None


@dataclass(frozen=True)
class Resume:
    at: dt.datetime


Event = Union[Start, Reply, Locate, Attach, Choose, Toggle, Done, Back, SetLanguage, Stop, Resume]

# -- what to say -----------------------------------------------------------------------------


class Tone(enum.StrEnum):
    NOTE = "note"  # a form's note
    INFO = "info"
    ERROR = "error"  # the answer was not accepted
    STALE = "stale"  # the event was for a prompt no longer on screen
    THANKS = "thanks"


class PromptKind(enum.StrEnum):
    CONSENT = "consent"
    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    ACKNOWLEDGE = "acknowledge"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    TEXT = "text"
    GEOPOINT = "geopoint"
    TIME = "time"
    DATETIME = "dateTime"
    #: Choices put in order one pick at a time: `options` are the ones not ranked yet.
    RANK = "rank"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"


@dataclass(frozen=True)
class Option:
    key: str  # stable short id, for button data
    number: int  # position as shown, for typed replies
    name: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class Say:
    text: str
    tone: Tone = Tone.INFO
    #: A note's image, audio or video (names, not bytes), in the session's language.
    media: tuple[LabelMedia, ...] = ()


@dataclass(frozen=True)
class Ask:
    seq: int
    kind: PromptKind
    question: str
    text: str
    hint: str = ""
    options: tuple[Option, ...] = ()
    progress: str = ""
    #: Group labels to show as a heading: set when this question opens a new section.
    section: str = ""
    required: bool = False
    can_go_back: bool = False
    #: The answer already given, shown when the respondent came back to change it.
    current_answer: str = ""
    #: True when this re-renders the prompt already on screen (same seq): edit it in place.
    update: bool = False
    #: What a valid answer looks like, shown with the question where the type needs it (a date's
    #: format with an example that satisfies the question's constraint); "" otherwise.
    expected: str = ""
    #: The label's image, audio or video (names, not bytes), in the session's language.
    media: tuple[LabelMedia, ...] = ()


Output = Union[Say, Ask]


@dataclass(frozen=True)
class Step:
    state: SessionState
    say: tuple[Output, ...]
    #: Question name → new value, for every answer this step changed.
    changes: Mapping[str, Any] = field(default_factory=dict)
    #: False when the event changed nothing (stale, invalid, or not applicable now).
    accepted: bool = True


def new_session(form: Questionnaire, language: str | None = None,
                preloads: Mapping[str, Any] | None = None) -> SessionState:
    """A session not started yet. `preloads`: the sampled person's attributes (unit, group,
    stratum, frame columns); only those the form reads are kept, as text."""
    kept = {name: "" if preloads.get(name) is None else str(preloads[name])
            for name in form.preloads if name in preloads} if preloads else {}
    return SessionState(form.form_id, form.version, language or form.default_language, preloads=kept)


class InvalidAnswer(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message



def _evolve(state: SessionState, **changes: Any) -> SessionState:
    """`dataclasses.replace` for SessionState, without its per-call field introspection.

    SessionState has no __post_init__ or validation, so copying the fields and overriding some
    is exactly what replace() does; the engine calls it several times per step.
    """
    evolved = object.__new__(SessionState)
    fields_ = evolved.__dict__
    fields_.update(state.__dict__)
    for name, value in changes.items():
        if name not in fields_:
            raise TypeError(f"SessionState has no field {name!r}")
        fields_[name] = value
    return evolved


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type; floats also of one sign (0.0 and -0.0 calculate differently)."""
    return type(a) is type(b) and a == b and (type(a) is not float or math.copysign(1, a) == math.copysign(1, b))
