"""Plain records passed across the storage boundary.

Frozen so a record read from storage cannot be mutated and mistaken for
persisted state. JSON payloads (session state, events, answer values) stay
as text: storage keeps what the engine serialised and never interprets it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredQuestionnaire:
    """One questionnaire version exactly as loaded, kept so answers stay interpretable."""

    form_id: str
    version: str
    source_name: str
    source: bytes
    sha256: str
    loaded_at: str


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
    """Outcome of ``apply_step``: ``applied`` is False for a re-delivered event."""

    applied: bool
    revision: int
