"""The questionnaire model: what a form says, independent of the file it came from.

A `Questionnaire` is immutable once loaded; the conversation engine, the exporters and the
scoring code all read this model and never the spreadsheet.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

from surveys.expressions import Expression

T = TypeVar("T")


class QuestionType(enum.StrEnum):
    NOTE = "note"
    SELECT_ONE = "select_one"
    SELECT_MULTIPLE = "select_multiple"
    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    #: ODK's "latitude longitude altitude accuracy": a shared location or typed coordinates.
    GEOPOINT = "geopoint"
    #: ODK's time ("14:30:00.000+07:00") and dateTime ("2026-03-02T14:30:00.000+07:00"), typed.
    TIME = "time"
    DATETIME = "dateTime"
    #: A file sent through the platform's attachment button; the answer is the stored file's
    #: name, as ODK stores media answers (`surveys.media`). `photo` is pyxform's alias of image.
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    ACKNOWLEDGE = "acknowledge"
    #: ODK's rank: every choice put in order, stored as the names in rank order, space-separated.
    RANK = "rank"
    CALCULATE = "calculate"
    # Metadata filled from the session, never asked.
    START = "start"
    END = "end"
    TODAY = "today"
    # Device metadata that has no meaning in a chat: kept as an empty column so exports
    # of a form written for ODK still have every column the analyst expects.
    EMPTY_METADATA = "empty_metadata"
    # A question the form asks but a chat cannot (a geopoint, a photo...): the form still loads, the question is never shown, its column stays empty
    # and `Question.unaskable` says why, so exports can give it its own missing code.
    UNASKABLE = "unaskable"

    @property
    def is_asked(self) -> bool:
        """Whether the respondent answers it (notes are shown but not answered)."""
        return self in _ASKED

    @property
    def is_shown(self) -> bool:
        return self in _ASKED or self is QuestionType.NOTE

    @property
    def is_media(self) -> bool:
        return self in _MEDIA

    @property
    def is_select(self) -> bool:
        return self in (QuestionType.SELECT_ONE, QuestionType.SELECT_MULTIPLE, QuestionType.RANK)


_ASKED = frozenset(
    {
        QuestionType.SELECT_ONE,
        QuestionType.SELECT_MULTIPLE,
        QuestionType.INTEGER,
        QuestionType.DECIMAL,
        QuestionType.TEXT,
        QuestionType.DATE,
        QuestionType.GEOPOINT,
        QuestionType.TIME,
        QuestionType.DATETIME,
        QuestionType.ACKNOWLEDGE,
        QuestionType.RANK,
        QuestionType.IMAGE,
        QuestionType.AUDIO,
        QuestionType.VIDEO,
        QuestionType.FILE,
    }
)
_MEDIA = frozenset({QuestionType.IMAGE, QuestionType.AUDIO, QuestionType.VIDEO, QuestionType.FILE})

_LANGUAGE_CODE = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)\)\s*$")
_KNOWN_LANGUAGE_NAMES = {"english": "en", "vietnamese": "vi", "tiếng việt": "vi", "tieng viet": "vi"}

#: The key of a text written without a language (a plain `label` column).
ANY_LANGUAGE = "*"
#: Media a label may carry (`media::image`, `media::audio`, `media::video`; `big-image` is an image).
LABEL_MEDIA_KINDS = ("image", "audio", "video")


@dataclass(frozen=True)
class Language:
    code: str
    name: str

    @classmethod
    def from_column(cls, column_language: str) -> "Language":
        """`Tiếng Việt (vi)` → Language('vi', 'Tiếng Việt'), the XLSForm convention."""
        match = _LANGUAGE_CODE.match(column_language)
        if match:
            return cls(match["code"].lower(), match["name"] or match["code"])
        name = column_language.strip()
        return cls(_KNOWN_LANGUAGE_NAMES.get(name.lower(), name.lower()), name)


@dataclass(frozen=True)
class Text:
    """A text in several languages, keyed by language code (or ANY_LANGUAGE)."""

    by_language: Mapping[str, str] = field(default_factory=dict)

    def get(self, language: str, fallback: str | None = None) -> str:
        for key in (language, ANY_LANGUAGE, fallback):
            if key and self.by_language.get(key):
                return self.by_language[key]
        return next((t for t in self.by_language.values() if t), "")

    def __bool__(self) -> bool:
        return any(self.by_language.values())


@dataclass(frozen=True)
class Location:
    """Where something was written: sheet, 1-based spreadsheet row, column header."""

    sheet: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        parts = ["whole file" if self.sheet == "file" else f"sheet '{self.sheet}'"]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)


@dataclass(frozen=True)
class Choice:
    name: str
    label: Text
    #: Stable short id, unique within the question: the 1-based position in the full
    #: list. Channels put it in button data; it survives choice filters and relabelling.
    key: str
    #: Other columns of the choices sheet, read by bare names in a choice_filter.
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    name: str
    label: Text
    relevant: Expression | None
    #: Names of enclosing groups, outermost first.
    parents: tuple[str, ...] = ()
    location: Location | None = None
    #: As written, e.g. "field-list": the web pages show the whole group on one page.
    appearance: str | None = None
    #: A repeat: its questions are asked once per instance (`begin repeat`).
    repeat: bool = False
    #: How many instances a repeat has (`repeat_count`, read in the enclosing instance); None on
    #: a repeat: "add another?" is asked after each instance.
    repeat_count: Expression | None = None


@dataclass(frozen=True)
class Question:
    name: str
    type: QuestionType
    label: Text = Text()
    hint: Text = Text()
    #: `required` as an expression (`yes` loads as true()); None = optional.
    required: Expression | None = None
    required_message: Text = Text()
    #: The question's own relevance; `conditions` adds those of its groups.
    relevant: Expression | None = None
    constraint: Expression | None = None
    constraint_message: Text = Text()
    calculation: Expression | None = None
    choices: tuple[Choice, ...] = ()
    choice_list: str | None = None
    choice_filter: Expression | None = None
    default: str | None = None
    appearance: str | None = None
    #: Enclosing groups, outermost first.
    groups: tuple[str, ...] = ()
    #: Enclosing repeats (names of groups among `groups`), outermost first: the question is asked
    #: once per instance and its answers are stored per instance (`surveys.repeats.instance_key`).
    repeats: tuple[str, ...] = ()
    #: The XLSForm type as written, e.g. `deviceid` for EMPTY_METADATA.
    source_type: str = ""
    location: Location | None = None
    #: A media question's ODK `accept` (`body::accept`): MIME types and `.ext` names it takes,
    #: comma-separated, e.g. "image/png, .pdf"; "" takes any file of the question's kind.
    accept: str = ""
    #: Why a chat cannot ask it (type UNASKABLE only), e.g. "a chat cannot take locations".
    unaskable: str = ""
    #: Columns the chat does not use, kept as written (header → value): annotation columns
    #: (`priority`, `theme`), `bind::…`/`body::…` attributes, `media::image`... Each was
    #: reported as a warning when the form was loaded.
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: `parameters: randomize=true`: the choices are shown in an order shuffled once per session
    #: (`surveys.choice_order`); with `seed=…`, an order that is a function of that value, as in ODK.
    randomize: bool = False
    randomize_seed: Expression | None = None
    #: Media shown with the label, by kind (image, audio, video): the file name per language, a
    #: file kept in `Questionnaire.attachments` (files that were missing are not named here).
    media: Mapping[str, Text] = field(default_factory=dict)

    def choice_by_key(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)

    def choice_by_name(self, name: str) -> Choice | None:
        return next((c for c in self.choices if c.name == name), None)


@dataclass(frozen=True)
class LabelMedia:
    """A file shown with a prompt, named, never its bytes: channels read it from the stored form."""

    kind: str  # one of LABEL_MEDIA_KINDS
    name: str  # the attachment's file name
    form_id: str
    version: str


@dataclass(frozen=True)
class Questionnaire:
    form_id: str
    version: str
    title: str
    default_language: str
    languages: tuple[Language, ...]
    #: Every question in form order, groups flattened; includes notes, calculations
    #: and metadata so that the order of export columns is the order of the form.
    questions: tuple[Question, ...]
    groups: Mapping[str, Group] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    #: Settings the chat does not use, as written (header → value); each was a warning.
    settings: Mapping[str, str] = field(default_factory=dict)
    #: Attributes of the sampled person the form reads (`instance('respondent')/root/item/unit`),
    #: which the place that opens a session passes in; () when it reads none.
    preloads: tuple[str, ...] = ()
    #: The files shipped beside the form that it read (`prices.csv` → bytes), kept with its source
    #: so a stored form loads again with its lookups and choice files.
    attachments: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {q.name: q for q in self.questions})
        object.__setattr__(self, "_index", {q.name: i for i, q in enumerate(self.questions)})
        # The engine asks these for every question at every step: work them out once.
        conditions = {}
        for question in self.questions:
            found = [self.groups[g].relevant for g in question.groups] + [question.relevant]
            conditions[question.name] = tuple(e for e in found if e is not None)
        object.__setattr__(self, "_conditions", conditions)
        object.__setattr__(self, "_asked", tuple(q for q in self.questions if q.type.is_asked))
        object.__setattr__(self, "_derived", {})

    def derived(self, key: object, build: Callable[["Questionnaire"], T]) -> T:
        """`build(self)`, worked out once per form and kept with it (the form is immutable).

        For lookup tables that readers such as the engine derive from the form alone; they
        live and die with this object, so nothing is shared between questionnaires.
        """
        cache = self._derived  # type: ignore[attr-defined]
        try:
            return cache[key]
        except KeyError:
            value = cache[key] = build(self)
            return value

    def question(self, name: str) -> Question:
        return self._by_name[name]  # type: ignore[attr-defined]

    def index(self, name: str) -> int:
        return self._index[name]  # type: ignore[attr-defined]

    def has(self, name: str) -> bool:
        return name in self._by_name  # type: ignore[attr-defined]

    def conditions(self, question: Question) -> tuple[Expression, ...]:
        """Every relevance condition that applies: enclosing groups' first, then its own."""
        return self._conditions[question.name]  # type: ignore[attr-defined]

    @property
    def has_repeats(self) -> bool:
        return self.derived("has_repeats", lambda form: any(group.repeat for group in form.groups.values()))

    @property
    def unaskable(self) -> tuple[Question, ...]:
        """Questions of the form that a chat cannot ask (skipped, exported as missing)."""
        return tuple(q for q in self.questions if q.type is QuestionType.UNASKABLE)

    @property
    def asked(self) -> tuple[Question, ...]:
        return self._asked  # type: ignore[attr-defined]

    @property
    def language_codes(self) -> tuple[str, ...]:
        return tuple(lang.code for lang in self.languages)
