"""Plain records passed across the storage boundary.

Frozen so a record read from storage cannot be mutated and mistaken for
persisted state. JSON payloads (session state, events, answer values) stay
as text: storage keeps what the engine serialised and never interprets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredQuestionnaire:
    """One questionnaire version exactly as loaded, kept so answers stay interpretable."""

    form_id: str
    version: str
    source_name: str
    source: bytes
    sha256: str
    loaded_at: str
    #: The files shipped beside it that it reads (`prices.csv` → bytes); filled by `get_questionnaire`.
    attachments: Mapping[str, bytes] = field(default_factory=dict)


#: AAPOR-style dispositions a respondent can be in (enforced by a CHECK).
DISPOSITIONS: tuple[str, ...] = (
    "sampled",
    "invited",
    "contacted",
    "started",
    "partial",
    "completed",
    "refused",
    "ineligible",
    "quota_full",
    "unreachable",
    "replaced",
)

#: Kinds of invitation code: a deep link (``/start CODE``) or a code typed by hand.
INVITATION_KINDS: tuple[str, ...] = ("link", "typed")

#: States of an outbox row. "unknown": the process died while sending it.
OUTBOX_STATES: tuple[str, ...] = ("pending", "sending", "sent", "failed", "unknown")


@dataclass(frozen=True)
class Respondent:
    """A person reached on some channel.

    ``external_id`` is the platform identity (personal data); ``pseudonym``
    is random, cannot be derived from it, and is what analysts' exports use.
    """

    id: int
    external_id: str
    pseudonym: str
    created_at: str
    #: The questionnaire this person is asked (None until assigned).
    form_id: str | None = None
    #: Sampling stratum (e.g. province/service); None until assigned.
    stratum: str | None = None
    #: Current AAPOR-style disposition, one of ``DISPOSITIONS``.
    disposition: str = "sampled"
    #: When ``disposition`` was last changed (None while still "sampled").
    disposition_at: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """One respondent's pass through one questionnaire version."""

    id: int
    respondent_id: int
    form_id: str
    form_version: str
    channel: str
    status: str
    state: str
    revision: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class AnswerRecord:
    """Current value of one answer; ``status`` is answered, skipped or not_applicable."""

    question: str
    value: str
    status: str
    updated_at: str


@dataclass(frozen=True)
class AnswerChange:
    """The value and status an answer has after a step (input to ``apply_step``)."""

    question: str
    value: str
    status: str


@dataclass(frozen=True)
class StepResult:
    """Outcome of ``apply_step``: ``applied`` is False for a re-delivered event.

    ``session`` is the session as it is after the call (after the step, or as found for a
    re-delivered event), so the caller need not read it again. ``apply_step`` always sets
    it; it is left out of comparisons, so ``StepResult(True, 1)`` still equals a result.
    """

    applied: bool
    revision: int
    session: SessionRecord | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Personal:
    """A respondent's personal data, stored apart from answers (Law 91/2025/QH15 on personal data).

    ``phone`` is normalised by the caller (E.164, e.g. "+84912345678").
    """

    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Invitation:
    """A personal invitation code; only ``code_hash`` is stored, never the code.

    ``revoked_at`` is set when a newer code of the same kind replaced it or
    it was withdrawn; the ``used_*`` fields record the first chat that
    redeemed it.
    """

    id: int
    respondent_id: int
    kind: str
    code_hash: str
    created_at: str
    revoked_at: str | None = None
    used_at: str | None = None
    used_channel: str | None = None
    used_bot: str | None = None
    used_chat: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send (input to ``enqueue`` and ``apply_step``).

    ``method`` and ``payload`` (JSON text) are the platform API call, e.g.
    "sendMessage" and its parameters. Smaller ``priority`` values are sent
    first. A ``dedupe_key`` already in the outbox makes this message a
    no-op. ``not_before`` (ISO time) delays sending.
    """

    channel: str
    bot: str
    chat_id: str
    method: str
    payload: str
    priority: int = 0
    dedupe_key: str | None = None
    respondent_id: int | None = None
    not_before: str | None = None
    #: At most one batch of such messages per chat waits at a time: while a chat has a pending
    #: message of this ``priority``, a new coalesced batch for it is dropped (a chat's error
    #: replies: give coalesced messages a priority of their own).
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """That a respondent accepted a consent text (input to ``record_consent`` and ``apply_step``):
    the exact ``text`` shown, its ``version``, ``sha256``, ``language`` and ``channel``, when
    (``at``, ISO time), and a ``key`` that makes a second record of the same acceptance a no-op."""

    respondent_id: int
    version: str
    sha256: str
    language: str
    channel: str
    text: str
    at: str
    key: str


@dataclass(frozen=True)
class QueuedMessage:
    """One outbox row; ``state`` is one of ``OUTBOX_STATES``."""

    id: int
    channel: str
    bot: str
    chat_id: str
    method: str
    payload: str
    priority: int
    dedupe_key: str | None
    respondent_id: int | None
    state: str
    attempts: int
    not_before: str | None
    created_at: str
    updated_at: str
    result: str | None
    error: str | None


# -- reminders (migrations 4 and 9) ------------------------------------------------------------


@dataclass(frozen=True)
class ReminderTexts:
    """How one survey's reminders are worded when they are handed over to the outbox.

    ``asked``: form id → the names of its asked questions (a person's progress is the number
    of them answered in their latest session); ``render(language, form_id, answered)``: the
    text, called on the storage thread, so it must be pure and quick.
    """

    asked: Mapping[str, Sequence[str]]
    render: Callable[[str | None, str | None, int], str]


@dataclass(frozen=True)
class ReminderHandOver:
    """What one ``hand_over_reminders`` call did: reminders given an outbox message, reminders
    withdrawn instead (their person or survey was done), and whether the batch was full (more
    may be queued)."""

    handed_over: int = 0
    withdrawn: int = 0
    more: bool = False


# -- survey projects, frames and samples (migration 3) ---------------------------------------


@dataclass(frozen=True)
class StoredSurvey:
    """One version of a survey project as loaded.

    ``source`` is the TOML text as written; ``project`` the parsed project as canonical
    JSON (units read from a CSV included), so queries never need the original files.
    ``sha256`` is over ``project``. Versions count from 1; the highest is current.
    """

    id: str
    version: int
    title: str
    index_year: int
    opens: str
    closes: str
    source_name: str
    source: str
    project: str
    sha256: str
    loaded_at: str


@dataclass(frozen=True)
class FrameRow:
    """One person who may be sampled. ``attributes`` (JSON) holds the strata variables' values.

    ``name`` and ``phone`` are personal data and are stored in their own table.
    """

    frame_id: str
    group: str
    unit: str
    stratum: str
    attributes: str = "{}"
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class FrameImport:
    """What ``import_frame`` did: rows added, changed, removed and left as they were."""

    added: int
    changed: int
    removed: int
    unchanged: int


#: Roles of a sample member: in the sample, or on a stratum's ordered reserve list.
SAMPLE_ROLES: tuple[str, ...] = ("main", "reserve")


@dataclass(frozen=True)
class SampleMemberInput:
    """A drawn or imported member (input to ``record_sample``)."""

    frame_id: str
    group: str
    form_id: str
    stratum: str
    pi: float
    role: str = "main"
    reserve_rank: int | None = None


@dataclass(frozen=True)
class SampleStratum:
    """Per stratum: population N_h, sample n_h and reserve list length (input and output)."""

    group: str
    stratum: str
    population: int
    n: int
    reserve: int


@dataclass(frozen=True)
class SampleInfo:
    survey_id: str
    source: str  # "drawn" or "imported"
    seed: int | None
    frame_sha256: str | None
    params: str
    created_at: str


@dataclass(frozen=True)
class SampleMember:
    """A member of a survey's sample or reserve list.

    ``respondent_id`` is None for a reserve not (yet) fielded. A promoted reserve keeps
    role "reserve" and its rank, and ``replaces`` names the respondent it replaced.
    ``weight`` is 1/``pi``, the base weight.
    """

    survey_id: str
    frame_id: str
    group: str
    form_id: str
    stratum: str
    pi: float
    weight: float
    role: str
    reserve_rank: int | None
    respondent_id: int | None
    promoted_at: str | None = None
    replaces: int | None = None
    replaced_by: int | None = None
    replaced_disposition: str | None = None
