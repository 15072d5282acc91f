"""The storage interface the bot depends on.

Kept narrow and free of SQLite specifics so that a PostgreSQL implementation
can follow. Contract shared by all implementations:

* Timestamps are ISO-8601 strings supplied by the caller (``at``); storage
  never reads the clock, so behaviour is deterministic and testable.
* JSON payloads are opaque text; storage does not import the engine.
* Every method that writes does so in one transaction: after a crash a
  write is either fully present or absent.
* Driver errors surface as ``StorageError`` (or a subclass).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from .records import (
    AnswerChange,
    AnswerRecord,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
)

class Storage(abc.ABC):
    """Durable, idempotent persistence for questionnaires, respondents and sessions."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection; safe to call more than once."""

    # Questionnaires -----------------------------------------------------

    @abc.abstractmethod
    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str
    ) -> StoredQuestionnaire:
        """Keep the exact source of a questionnaire version.

        Idempotent, because the bot saves the form every time it loads it:
        identical content returns the record stored first. Different content
        under the same form_id and version raises ``QuestionnaireConflict`` —
        answers already collected refer to the old content.
        """

    @abc.abstractmethod
    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        """Return one questionnaire version or raise ``NotFound``."""

    @abc.abstractmethod
    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        """All stored versions, ordered by form_id then loaded_at."""

    # Respondents --------------------------------------------------------

    @abc.abstractmethod
    async def ensure_respondent(self, external_id: str, at: str) -> Respondent:
        """Return the respondent for a platform identity, creating it once.

        The pseudonym is generated at creation and never changes, so exports
        made at different times can be joined on it.
        """

    @abc.abstractmethod
    async def get_respondent(self, respondent_id: int) -> Respondent:
        """Return one respondent or raise ``NotFound``."""

    # Sessions -----------------------------------------------------------

    @abc.abstractmethod
    async def open_session(
        self,
        respondent_id: int,
        form_id: str,
        form_version: str,
        channel: str,
        status: str,
        state: str,
        at: str,
    ) -> tuple[SessionRecord, bool]:
        """Resume or start the respondent's session for a form.

        Returns ``(session, False)`` for the existing session of that form
        whose status is neither "completed" nor "refused", else creates one at
        revision 0 and returns ``(session, True)``. Concurrent callers never
        create two open sessions for one respondent and form. Raises
        ``NotFound`` if the respondent or questionnaire version is unknown.
        """

    @abc.abstractmethod
    async def get_session(self, session_id: int) -> SessionRecord:
        """Return one session or raise ``NotFound``."""

    @abc.abstractmethod
    async def latest_session(self, respondent_id: int, form_id: str) -> SessionRecord | None:
        """The respondent's most recently created session for a form, if any."""

    @abc.abstractmethod
    async def list_sessions(self, form_id: str | None = None) -> list[SessionRecord]:
        """All sessions (optionally of one form), ordered by id."""

    @abc.abstractmethod
    async def apply_step(
        self,
        session_id: int,
        *,
        event_key: str,
        event: str,
        expected_revision: int,
        status: str,
        state: str,
        changes: Sequence[AnswerChange],
        at: str,
    ) -> StepResult:
        """Record one engine step atomically.

        Chat platforms deliver at least once, so an ``event_key`` already
        recorded for this session returns ``StepResult(False, current)`` and
        writes nothing. Otherwise, if the session's revision is not
        ``expected_revision`` another writer got there first and
        ``StaleRevision`` is raised. Otherwise the event is logged, the
        session's state, status and revision (+1) are replaced, each change
        is upserted into the current answers, and every change that really
        alters an answer's value or status is appended to its history.
        Answer statuses are "answered", "skipped" (optional question left
        empty) or "not_applicable" (skipped by relevance); anything else
        fails the whole step. Values are compared as text, so serialise
        JSON deterministically.
        Raises ``NotFound`` for an unknown session.
        """

    @abc.abstractmethod
    async def answers(self, session_id: int) -> dict[str, AnswerRecord]:
        """Current answers of a session keyed by question (empty if none)."""

    @abc.abstractmethod
    async def answer_history(
        self, session_id: int, question: str | None = None
    ) -> list[dict[str, Any]]:
        """Answer changes in the order they happened.

        Each dict has question, old_value, old_status (both None for a first
        answer), new_value, new_status, event_id and at.
        """

    @abc.abstractmethod
    async def events(self, session_id: int) -> list[dict[str, Any]]:
        """The session's applied events by revision.

        Dicts of id (what ``answer_history`` rows point to), event_key,
        event, revision and at.
        """
