"""The storage interface the bot depends on.

Kept narrow and free of SQLite specifics so that a PostgreSQL implementation
can follow. Contract shared by all implementations:

* Timestamps are ISO-8601 strings supplied by the caller (``at``); storage
  never reads the clock, so behaviour is deterministic and testable.
* JSON payloads are opaque text; storage does not import the engine.
* Every method that writes does so in one transaction: after a crash a
  write is either fully present or absent.
* Driver errors surface as ``StorageError`` (or a subclass).
* Idempotency keys (``event_key``, ``key``, ``dedupe_key``) make re-delivered
  platform updates and retried jobs harmless: a key seen before writes
  nothing and the method says so in its return value.
* Chat ids are text (Telegram's integers and Zalo's strings alike).
* Timestamps are compared as strings (``since``, ``now``, ``not_before``),
  so callers must use one ISO format and one UTC offset throughout.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from .records import (
    AnswerChange,
    AnswerRecord,
    Invitation,
    OutgoingMessage,
    Personal,
    QueuedMessage,
    ReminderHandOver,
    ReminderTexts,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
    FrameImport,
    FrameRow,
    SampleInfo,
    SampleMember,
    SampleMemberInput,
    SampleStratum,
    StoredSurvey,
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

    @abc.abstractmethod
    async def add_respondent(
        self,
        external_id: str,
        *,
        form_id: str | None = None,
        stratum: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        at: str,
    ) -> Respondent:
        """Add a sample member (e.g. from an imported sample list).

        Idempotent by ``external_id``: if it exists, the stored respondent is
        returned unchanged and nothing is written (form, stratum and personal
        data are not overwritten). A new respondent starts in disposition
        "sampled". A ``respondent_personal`` row is written only when
        ``name`` or ``phone`` is given; ``phone`` must already be normalised
        (E.164). Respondent and personal row are written in one transaction.
        """

    @abc.abstractmethod
    async def personal(self, respondent_id: int) -> Personal:
        """The respondent's name and phone (both None if none were stored).

        Raises ``NotFound`` for an unknown respondent.
        """

    @abc.abstractmethod
    async def respondent_by_phone(self, phone: str) -> Respondent | None:
        """The respondent with this (normalised) phone, None if nobody has it.

        Raises ``AmbiguousPhone`` if several respondents share it, so the
        caller can tell the person rather than guess.
        """

    @abc.abstractmethod
    async def list_respondents(self, form_id: str | None = None) -> list[Respondent]:
        """All respondents (optionally only those assigned ``form_id``), ordered by id."""

    @abc.abstractmethod
    async def set_respondent_form(
        self, respondent_id: int, form_id: str, stratum: str | None, at: str
    ) -> Respondent:
        """Assign the questionnaire and stratum (open-mode screening); returns the new record.

        Overwrites any earlier assignment. ``at`` is accepted for symmetry
        with other writes; no timestamp column records it yet. Raises
        ``NotFound`` for an unknown respondent.
        """

    # Dispositions -------------------------------------------------------

    @abc.abstractmethod
    async def set_disposition(
        self,
        respondent_id: int,
        status: str,
        at: str,
        *,
        reason: str | None = None,
        key: str | None = None,
    ) -> bool:
        """Move the respondent to disposition ``status`` (one of ``DISPOSITIONS``).

        In one transaction: the respondent's current disposition and
        disposition_at are replaced and a history row (status, reason, at,
        key) is appended. Returns False and writes nothing if ``key`` (unique
        across all respondents) was recorded before, or if the respondent is
        already in ``status``. Transitions are not policed here: the caller
        decides which moves make sense. Moving from a status reminders go to
        (contacted, started) to any other withdraws, in the same
        transaction, the person's reminders not sent yet: those still queued
        (never handed over) and those whose message is pending in the outbox
        (the message ends ``failed`` with the error "withdrawn: <status>",
        unsent); their ``reminders`` rows get ``withdrawn_at`` and
        ``withdrawn_because`` (the status). So do ``replace_member`` and
        ``release_stale_quota_slots``, which move people too. An unknown
        status raises ``StorageError``, an unknown respondent ``NotFound``.
        """

    @abc.abstractmethod
    async def disposition_history(self, respondent_id: int) -> list[dict[str, Any]]:
        """The respondent's disposition changes in order: dicts of status, reason, at, key."""

    # Invitations --------------------------------------------------------

    @abc.abstractmethod
    async def issue_invitation(
        self, respondent_id: int, kind: str, code_hash: str, at: str
    ) -> Invitation:
        """Store a new invitation code (its hash only) for a respondent.

        ``kind`` is "link" or "typed". In one transaction every active (not
        revoked) invitation of the same respondent and kind gets
        ``revoked_at = at`` and the new one is inserted, so at most one
        code per respondent and kind works at a time. A ``code_hash`` that
        already exists raises ``StorageError``; an unknown respondent
        ``NotFound``.
        """

    @abc.abstractmethod
    async def revoke_invitations(self, respondent_id: int, at: str) -> int:
        """Revoke all the respondent's active invitations; returns how many were revoked."""

    @abc.abstractmethod
    async def find_invitation(self, code_hash: str) -> Invitation | None:
        """The invitation with this hash, revoked or used ones included (the caller decides)."""

    @abc.abstractmethod
    async def active_invitation(self, respondent_id: int, kind: str) -> Invitation | None:
        """The respondent's not-revoked invitation of this kind, if any."""

    @abc.abstractmethod
    async def use_invitation(
        self, invitation_id: int, channel: str, bot: str, chat_id: str, at: str
    ) -> Invitation:
        """Record that a chat redeemed the invitation; returns the updated record.

        The first use is kept. A repeat by the same (channel, bot, chat) —
        e.g. a re-delivered update — is a no-op returning the invitation
        (even if it was revoked since). A use by another chat raises
        ``InvitationUsed``. An unused invitation that is revoked raises
        ``InvitationRevoked``; an unknown id ``NotFound``.
        """

    # Chat links ---------------------------------------------------------

    @abc.abstractmethod
    async def link_chat(
        self, channel: str, bot: str, chat_id: str, respondent_id: int, at: str
    ) -> None:
        """Record that this chat on this bot is this respondent.

        Idempotent for the same pair. Raises ``LinkConflict`` if the chat is
        linked to another respondent, or the respondent to another chat on
        the same (channel, bot); ``NotFound`` for an unknown respondent.
        """

    @abc.abstractmethod
    async def linked_respondent(
        self, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        """The respondent linked to this chat, if any."""

    @abc.abstractmethod
    async def linked_session(
        self, channel: str, bot: str, chat_id: str, default_form: str | None
    ) -> tuple[Respondent | None, SessionRecord | None]:
        """The respondent linked to this chat and their latest session of their questionnaire
        (``default_form`` if they have none), read together: what every update of a chat
        needs first. The session is None if there is none yet (``current_session`` makes it)."""

    @abc.abstractmethod
    async def chats_of(self, respondent_id: int) -> list[tuple[str, str, str]]:
        """The respondent's linked chats as (channel, bot, chat_id), oldest link first."""

    @abc.abstractmethod
    async def log_link_attempt(
        self,
        channel: str,
        bot: str,
        chat_id: str,
        outcome: str,
        at: str,
        *,
        key: str,
        detail: str | None = None,
    ) -> bool:
        """Log an attempt to link a chat (e.g. outcome "ok", "bad_code", "used").

        Returns False and writes nothing if ``key`` was logged before, so a
        re-delivered update is not counted twice.
        """

    @abc.abstractmethod
    async def count_link_attempts(
        self, channel: str, bot: str, chat_id: str, outcome: str, since: str
    ) -> int:
        """How many attempts with this outcome the chat made at or after ``since``.

        For brute-force limits, e.g. failed codes per chat in the last hour.
        """

    # Outbox -------------------------------------------------------------

    @abc.abstractmethod
    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        """Queue messages for sending in one transaction; returns how many were new.

        A message whose ``dedupe_key`` is already in the outbox (or earlier
        in ``messages``) is skipped. Only that uniqueness conflict is
        ignored: an invalid JSON payload or unknown respondent fails the
        whole call and queues nothing. New rows are "pending" with 0
        attempts and created_at = updated_at = ``at``.
        """

    @abc.abstractmethod
    async def due_messages(
        self, channel: str, bot: str, now: str, limit: int
    ) -> list[QueuedMessage]:
        """Up to ``limit`` pending messages of one bot whose not_before is unset or <= ``now``.

        Ordered by priority (smaller first) then id (oldest first). Reading
        does not claim them: call ``mark_sending`` before sending.
        """

    @abc.abstractmethod
    async def mark_sending(self, message_id: int, at: str) -> bool:
        """pending -> sending, just before the platform call; False if not pending."""

    @abc.abstractmethod
    async def mark_sent(self, message_id: int, at: str, result: str | None) -> bool:
        """sending -> sent, keeping the platform's ``result`` (text); False if not sending."""

    @abc.abstractmethod
    async def mark_retry(
        self, message_id: int, at: str, not_before: str, error: str
    ) -> bool:
        """sending -> pending with attempts + 1, ``error`` kept and retry not before ``not_before``.

        False if the message was not in "sending".
        """

    @abc.abstractmethod
    async def mark_failed(self, message_id: int, at: str, error: str) -> bool:
        """sending -> failed (permanent), attempts + 1; False if not sending."""

    @abc.abstractmethod
    async def recover_outbox(self, channel: str, bot: str, at: str) -> int:
        """At start-up, turn this bot's messages left in "sending" into "unknown".

        A row in "sending" means the process died between ``mark_sending``
        and ``mark_sent``/``mark_retry``: the platform may or may not have
        delivered it, and Telegram's Bot API has no idempotency key, so
        resending could show the respondent a duplicate. We choose
        at-most-once for those few messages: they are NOT resent, only
        marked "unknown" (error notes the crash) for an operator or a later
        step to resolve. Only call this when no other process is sending
        for this bot. Returns how many rows were marked.
        """

    @abc.abstractmethod
    async def outbox_counts(
        self, channel: str | None = None, bot: str | None = None
    ) -> dict[str, int]:
        """Number of outbox rows per state (every state present, 0 if none), optionally filtered."""

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
    async def current_session(
        self,
        respondent_id: int,
        form_id: str,
        form_version: str,
        channel: str,
        status: str,
        state: str,
        at: str,
    ) -> tuple[SessionRecord, bool]:
        """The session a chat update for this respondent and form goes to, in one call.

        One response per person: if the respondent's latest session of the form (as
        ``latest_session``) is "completed" or "refused", it is returned as is (the engine
        answers a finished session politely; a refused one can be resumed). Otherwise the
        open session is returned, or, if there is none, one is created as by
        ``open_session`` (at revision 0 with ``status`` and ``state``; concurrent callers
        never create two). Returns ``(session, created)``. Finding an existing session
        writes nothing. Raises ``NotFound`` if a session has to be created and the
        respondent or questionnaire version is unknown.
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
        outgoing: Sequence[OutgoingMessage] = (),
    ) -> StepResult:
        """Record one engine step atomically.

        Chat platforms deliver at least once, so an ``event_key`` already
        recorded for this session returns ``StepResult(False, current)`` and
        writes nothing. The result's ``session`` is the session after the call
        (after this step, or as it is now for a re-delivered event), so callers
        need not read it again. Otherwise, if the session's revision is not
        ``expected_revision`` another writer got there first and
        ``StaleRevision`` is raised. Otherwise the event is logged, the
        session's state, status and revision (+1) are replaced, each change
        is upserted into the current answers, and every change that really
        alters an answer's value or status is appended to its history.
        Answer statuses are "answered", "skipped" (optional question left
        empty) or "not_applicable" (skipped by relevance); anything else
        fails the whole step. Values are compared as text, so serialise
        JSON deterministically.
        ``outgoing`` (the step's replies) is enqueued as by ``enqueue`` in the
        same transaction, so a step is never stored without its replies nor
        replies without their step, and a re-delivered event enqueues
        nothing. A bad outgoing message (e.g. invalid JSON) fails the whole
        step.
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

    # Survey projects (migration 3) ------------------------------------------------

    @abc.abstractmethod
    async def save_survey(
        self,
        survey_id: str,
        *,
        title: str,
        index_year: int,
        opens: str,
        closes: str,
        source_name: str,
        source: str,
        project: str,
        at: str,
    ) -> tuple[StoredSurvey, bool]:
        """Store a survey project; returns (current version, whether a new version was written).

        Same id and same ``project`` (by sha256) as the current version: nothing is written.
        Different content: a new version (current + 1) is appended and becomes current;
        older versions stay readable (``survey_versions``). Whether the new content is
        compatible with frames already imported is the caller's check
        (``frame_references``).
        """

    @abc.abstractmethod
    async def get_survey(self, survey_id: str, version: int | None = None) -> StoredSurvey:
        """The current (or the given) version of a survey, or raise ``NotFound``."""

    @abc.abstractmethod
    async def list_surveys(self) -> list[StoredSurvey]:
        """The current version of every survey, ordered by id."""

    @abc.abstractmethod
    async def survey_versions(self, survey_id: str) -> list[StoredSurvey]:
        """Every stored version of a survey, oldest first (empty if unknown)."""

    # Sample frames ---------------------------------------------------------------

    @abc.abstractmethod
    async def import_frame(self, survey_id: str, rows: Sequence[FrameRow], at: str) -> FrameImport:
        """Make ``rows`` the survey's frame, in one transaction.

        Rows are matched on frame_id: new ones are added, changed ones updated, ones absent
        from ``rows`` removed, identical ones left alone (so importing the same file again
        writes nothing). Personal fields go to their own table. Once the survey has a
        sample, only an identical frame is accepted; any change raises ``FrameConflict``
        and writes nothing.
        """

    @abc.abstractmethod
    async def frame_rows(self, survey_id: str, *, personal: bool = False) -> list[FrameRow]:
        """The survey's frame ordered by frame_id (name and phone only if ``personal``)."""

    @abc.abstractmethod
    async def frame_references(self, survey_id: str) -> tuple[set[str], set[str]]:
        """The distinct groups and units the survey's frame and sample refer to."""

    # Samples ---------------------------------------------------------------------

    @abc.abstractmethod
    async def record_sample(
        self,
        survey_id: str,
        members: Sequence[SampleMemberInput],
        strata: Sequence[SampleStratum],
        *,
        source: str,
        seed: int | None,
        frame_sha256: str | None,
        params: str,
        at: str,
        personal: dict[str, tuple[str | None, str | None]] | None = None,
        frame: Sequence[FrameRow] | None = None,
    ) -> bool:
        """Record a drawn or imported sample in one transaction; False if it was recorded before.

        Main members become respondents (external id ``"<survey>:<frame_id>"``, disposition
        "sampled", the group's questionnaire, the stratum key, personal data from
        ``personal`` (frame_id → (name, phone)) or else from the stored frame). Reserves are
        stored with their rank but are not respondents until promoted, so nobody invites
        them. An identical sample (same source, seed and frame_sha256) already recorded is a
        no-op; a different one raises ``SampleConflict``. ``frame``, if given, is imported
        first in the same transaction (an imported sample is its own frame).
        """

    @abc.abstractmethod
    async def sample_info(self, survey_id: str) -> SampleInfo | None:
        """How the survey's sample was made, or None if it has none."""

    @abc.abstractmethod
    async def sample_strata(self, survey_id: str) -> list[SampleStratum]:
        """N_h, n_h and reserve length per stratum, ordered by stratum."""

    @abc.abstractmethod
    async def sample_members(
        self, survey_id: str, role: str | None = None
    ) -> list[SampleMember]:
        """The survey's members (optionally one role), by stratum then role then rank/frame_id."""

    @abc.abstractmethod
    async def replace_member(
        self,
        survey_id: str,
        respondent_id: int,
        at: str,
        *,
        reason: str | None = None,
        replaceable: Sequence[str] = ("refused", "unreachable", "ineligible"),
    ) -> SampleMember:
        """Field the next reserve of the respondent's stratum in their place; returns it.

        In one transaction: the first unused reserve by rank becomes a respondent (as in
        ``record_sample``) with ``replaces`` set; the replaced respondent moves to
        disposition "replaced" (history row, reason) and their previous disposition is
        kept as ``replaced_disposition`` for response rates. Both keep the stratum's design
        probability. Raises ``NotReplaceable`` if the respondent is not a fielded member of
        the survey in one of ``replaceable`` (or was replaced already) and
        ``ReserveExhausted`` if the reserve list is used up; nothing is written then.
        """

    @abc.abstractmethod
    async def replaceable_members(
        self, survey_id: str, dispositions: Sequence[str] = ("refused", "unreachable", "ineligible")
    ) -> list[int]:
        """Respondent ids of fielded members in ``dispositions``, by id."""

    # Fieldwork status (aggregated in SQL) ------------------------------------------

    @abc.abstractmethod
    async def status_counts(self, survey_id: str) -> list[dict[str, Any]]:
        """Fielded members counted per group, stratum, disposition and stage reached.

        Dicts of group, stratum, disposition (for a replaced member: the disposition it had
        when replaced, as ``replaced_disposition``; ``disposition`` stays "replaced"),
        stage (the furthest step ever reached in the disposition history: 0 sampled,
        1 invited, 2 contacted, 3 started, 4 completed; refusal and quota-full imply
        contact, unreachable an invitation) and n. One GROUP BY over the survey's members
        (the SQLite implementation keeps disposition and stage on them with triggers): the
        work does not grow with the number of answers or history rows.
        """

    @abc.abstractmethod
    async def completes_since(self, survey_id: str, since: str) -> dict[tuple[str, str], int]:
        """(group, stratum) → members whose disposition became "completed" at or after ``since``."""

    @abc.abstractmethod
    async def disposition_counts(self) -> list[tuple[str | None, str | None, str, int]]:
        """(form_id, stratum, disposition, n) over all respondents, aggregated in SQL."""

    # Quota slots (migration 4) -----------------------------------------------------

    @abc.abstractmethod
    async def quota_member(self, respondent_id: int) -> tuple[str, str] | None:
        """(survey_id, stratum key) of a fielded sample member; None for anyone else."""

    @abc.abstractmethod
    async def reserve_quota_slot(
        self, survey_id: str, stratum: str, respondent_id: int, target: int | None, at: str
    ) -> bool:
        """Take a quota slot for the respondent, in ONE ``BEGIN IMMEDIATE`` transaction.

        Already holding a reserved or completed slot: True, nothing written. Otherwise, if
        ``target`` is None (a soft quota) or the stratum's reserved + completed slots are
        fewer than ``target``, the slot is inserted (or a released one reserved again) and
        True returned; else False and nothing is written. Because the count and the insert
        are one write transaction, concurrent callers in any number of processes can never
        take more than ``target`` slots.
        """

    @abc.abstractmethod
    async def complete_quota_slot(self, respondent_id: int, at: str) -> bool:
        """Mark the respondent's slot completed; False if they have none or it already is."""

    @abc.abstractmethod
    async def release_quota_slot(self, respondent_id: int, at: str) -> bool:
        """Release the respondent's reserved slot (a refusal); False if none was reserved."""

    @abc.abstractmethod
    async def release_stale_quota_slots(self, survey_id: str, older_than: str, at: str) -> list[int]:
        """Release reserved slots whose session has had no activity since ``older_than``.

        In one transaction: slots of people already completed become completed and of
        people who refused (or were replaced) released (repairing a missed hook); then
        every reserved slot of a person in contacted/started/partial whose latest session
        (or, without one, the reservation) is older than ``older_than`` is released and the
        person becomes a break-off (disposition "partial", history keyed by the slot, so
        twice is once). Returns the respondent ids released, by id.
        """

    @abc.abstractmethod
    async def quota_counts(self, survey_id: str) -> dict[str, dict[str, int]]:
        """stratum → {"reserved": n, "completed": n, "released": n} of the survey's slots."""

    # Reminders (migration 4) -------------------------------------------------------

    @abc.abstractmethod
    async def enqueue_due_reminders(
        self,
        survey_id: str,
        *,
        after_days: Sequence[int],
        max_count: int,
        now: str,
        limits: Mapping[tuple[str, str], int | None],
        at: str,
    ) -> int:
        """Select the survey's due reminders and queue them, in ONE write transaction; return
        how many were queued (who, and with what, is in ``reminders``: ``reminders_of``).

        Due (rules in ``surveys/reminders.py``): fielded members in disposition contacted or
        started with a chat on one of the bots of ``limits`` (the most recently linked);
        last activity = the later of their latest session's updated_at and that chat's
        linked_at; k = reminders since that activity < len(after_days), all reminders <
        ``max_count``, activity + after_days[k] <= ``now`` and, for k > 0, the previous one
        queued at least after_days[k] - after_days[k-1] days ago. At most ``limits[bot]`` per
        bot (None: no limit), oldest activity first. Each is recorded in ``reminders``
        (number = its ordinal for the person, step = k, channel and bot = the chat's;
        unique per respondent, survey, activity and step, its ``dedupe_key``
        ``reminder:{respondent}:{activity_at}:{k}``), so a second pass or a restart never
        doubles one. Nothing is written to the outbox: the row is queued (``outbox_id``
        None) until ``hand_over_reminders`` gives it a message. Rows are numbered in
        (channel, bot) order, each bot's oldest activity first: the order they are handed
        over in. Quiet hours and open dates are the caller's (the pass's) decision.
        """

    @abc.abstractmethod
    async def hand_over_reminders(
        self,
        channel: str,
        bot: str,
        limit: int,
        *,
        texts: Mapping[str, ReminderTexts],
        stopped: Mapping[str, str],
        at: str,
        method: str = "sendMessage",
        priority: int = 0,
    ) -> ReminderHandOver:
        """Hand up to ``limit`` of one bot's queued reminders over to its outbox, oldest (lowest
        id) first, in ONE write transaction.

        Every queued reminder of this bot of a survey in ``stopped`` (survey id → why its
        reminders stop, e.g. "survey closed") is withdrawn, whatever ``limit``. Then up to
        ``limit`` of the surveys in ``texts`` (survey id → how to word them now) are taken; those
        of other surveys stay queued (the caller's quiet hours). One whose person is no longer
        in disposition contacted or started (or has no chat on this bot any more) is withdrawn
        too; withdrawn means ``withdrawn_at`` = ``at`` and ``withdrawn_because`` = the reason or
        the disposition, and no message. Every other gets a pending outbox message sent with
        ``method`` at ``priority``, payload ``{"chat_id", "text"}`` to the person's chat on this
        bot (a numeric Telegram chat id as a JSON number) and ``respondent_id``, the text
        rendered now with the person's current progress and language (their latest session of
        their form), and its ``outbox_id`` set. ``more``: ``limit`` were taken, so more may be
        queued. A reminder handed over or withdrawn is never taken again, so two senders, or a
        retry after a crash, cannot double one.
        """

    @abc.abstractmethod
    async def queued_reminders(self, channel: str | None = None, bot: str | None = None) -> int:
        """How many reminders are queued (not handed over, not withdrawn), optionally of one
        channel or bot."""

    @abc.abstractmethod
    async def reminders_of(self, respondent_id: int) -> list[dict[str, Any]]:
        """The reminders recorded for a respondent, oldest first."""

    @abc.abstractmethod
    async def chat_reached(self, channel: str, bot: str, chat_id: str) -> bool:
        """Whether the bot has delivered anything to this chat (so it may write there)."""

    @abc.abstractmethod
    async def unreached_members(self, survey_id: str | None = None) -> list[dict[str, Any]]:
        """Fielded members invited but never linked to any chat, with name and phone (personal data).

        Dicts of survey_id, respondent_id, pseudonym, grp, stratum, disposition, invited_at
        (first invitation), name, phone; ordered by survey, stratum, id.
        """

    @abc.abstractmethod
    async def reminder_counts(self, survey_id: str | None = None) -> dict[int, int]:
        """Respondent id → number of reminders recorded for them and not withdrawn (queued,
        handed over or sent: a queued reminder leaves unless it is withdrawn, and the due
        rules count it too), of ``survey_id`` or of every survey; respondents never reminded
        are absent."""
