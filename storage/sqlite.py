"""``Storage`` on one SQLite file: the composition of the aggregates' SQLite repositories.

Each aggregate's SQL is in its own module (the map is in ``storage/README.md``); they share one
connection through ``Hops`` (``sqlite_hops.py``: one worker thread, calls grouped into hops,
group commit). ``SQLiteStorage`` only delegates, so every ``Storage`` method is callable on it as
before; new code may take the repository it needs instead (``storage.sessions`` …).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .base import Storage
from .coordination import SQLiteCoordination
from .deliveries import SQLiteDeliveries
from .fieldwork import SQLiteFieldwork
from .links import SQLiteLinks
from .outbox import SQLiteOutbox
from .privacy import SQLitePrivacy
from .paper_entries import SQLitePaperEntries
from .media import SQLiteMedia
from .personal_rekey import SQLitePersonalRekey
from .questionnaires import SQLiteQuestionnaires
from .quotas import SQLiteQuotas
from .reminders_store import SQLiteReminders
from .sessions import SQLiteSessions
from .surveys import SQLiteSurveys
from .sqlite_hops import SYNCHRONOUS, Hops, SQLiteThread, open_connection

__all__ = ["SYNCHRONOUS", "SQLiteStorage"]

T = TypeVar("T")


class _Delegate:
    """A ``Storage`` method that is the same method of one of the repositories."""

    def __init__(self, repository: str) -> None:
        self.repository = repository

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, storage: Any, owner: type | None = None) -> Any:
        if storage is None:
            return self
        return getattr(getattr(storage, self.repository), self.name)


class SQLiteStorage(Storage):
    """``Storage`` on one SQLite file. Create with ``await SQLiteStorage.open(path)``."""

    def __init__(self, db: SQLiteThread) -> None:
        self._db = db
        self._hops = Hops(db)
        self.questionnaires = SQLiteQuestionnaires(self._hops)
        self.links = SQLiteLinks(self._hops)
        self.outbox = SQLiteOutbox(self._hops)
        self.sessions = SQLiteSessions(self._hops)
        self.surveys = SQLiteSurveys(self._hops)
        self.fieldwork = SQLiteFieldwork(self._hops)
        self.quotas = SQLiteQuotas(self._hops)
        self.reminders = SQLiteReminders(self._hops)
        self.deliveries = SQLiteDeliveries(self._hops)  # reads only: what reached a person (outbox)
        self.privacy = SQLitePrivacy(self._hops)
        self.paper = SQLitePaperEntries(self._hops)  # paper forms and their typed entries
        self.coordination = SQLiteCoordination(self._hops)
        # media: files sent for media questions (storage/media.py)
        self.media = SQLiteMedia(self._hops)
        # pgrekey: names and phones re-encrypted with the current key (khaosat rekey, storage/personal_rekey.py)
        self.personal_rekey = SQLitePersonalRekey(self._hops)

    @classmethod
    async def open(cls, path: str | os.PathLike[str], synchronous: str = "full") -> SQLiteStorage:
        """Open (creating the file and its directory if needed) and migrate; ``synchronous`` is
        "full" or "normal" (``sqlite_hops.open_connection``)."""
        return cls(await open_connection(path, synchronous))

    async def close(self) -> None:
        await self._hops.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the worker thread in a hop of its own (benchmarks, tests)."""
        return await self._hops.run(fn, *args)

    async def database_file(self) -> str | None:
        """The file behind this storage (None in memory), so that a reader can open its own
        connection (exports in a worker thread or process)."""
        rows = await self._hops.fetchall("PRAGMA database_list")
        return next((row[2] for row in rows if row[1] == "main" and row[2]), None)

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A read for tests that check what is stored."""
        return await self._hops.fetchall(sql, params)

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self._hops.fetchone(sql, params)

    # questionnaires.py
    save_questionnaire = _Delegate("questionnaires")
    get_questionnaire = _Delegate("questionnaires")
    list_questionnaires = _Delegate("questionnaires")

    # links.py
    ensure_respondent = _Delegate("links")
    get_respondent = _Delegate("links")
    add_respondent = _Delegate("links")
    personal = _Delegate("links")
    respondent_by_phone = _Delegate("links")
    list_respondents = _Delegate("links")
    set_respondent_form = _Delegate("links")
    issue_invitation = _Delegate("links")
    revoke_invitations = _Delegate("links")
    find_invitation = _Delegate("links")
    active_invitation = _Delegate("links")
    use_invitation = _Delegate("links")
    link_chat = _Delegate("links")
    linked_respondent = _Delegate("links")
    chats_of = _Delegate("links")
    log_link_attempt = _Delegate("links")
    count_link_attempts = _Delegate("links")

    # outbox.py
    enqueue = _Delegate("outbox")
    due_messages = _Delegate("outbox")
    mark_sending = _Delegate("outbox")
    mark_sent = _Delegate("outbox")
    mark_retry = _Delegate("outbox")
    mark_failed = _Delegate("outbox")
    recover_outbox = _Delegate("outbox")
    outbox_counts = _Delegate("outbox")
    chat_reached = _Delegate("outbox")

    # sessions.py
    open_session = _Delegate("sessions")
    current_session = _Delegate("sessions")
    get_session = _Delegate("sessions")
    latest_session = _Delegate("sessions")
    list_sessions = _Delegate("sessions")
    apply_step = _Delegate("sessions")
    answers = _Delegate("sessions")
    answer_history = _Delegate("sessions")
    events = _Delegate("sessions")
    linked_session = _Delegate("sessions")

    # surveys.py
    save_survey = _Delegate("surveys")
    get_survey = _Delegate("surveys")
    list_surveys = _Delegate("surveys")
    survey_versions = _Delegate("surveys")
    import_frame = _Delegate("surveys")
    frame_rows = _Delegate("surveys")
    frame_references = _Delegate("surveys")
    frame_sizes = _Delegate("surveys")

    # fieldwork.py
    set_disposition = _Delegate("fieldwork")
    disposition_history = _Delegate("fieldwork")
    record_sample = _Delegate("fieldwork")
    sample_info = _Delegate("fieldwork")
    sample_strata = _Delegate("fieldwork")
    sample_members = _Delegate("fieldwork")
    replace_member = _Delegate("fieldwork")
    replaceable_members = _Delegate("fieldwork")
    status_counts = _Delegate("fieldwork")
    completes_since = _Delegate("fieldwork")
    disposition_counts = _Delegate("fieldwork")
    unreached_members = _Delegate("fieldwork")

    # quotas.py
    quota_member = _Delegate("quotas")
    reserve_quota_slot = _Delegate("quotas")
    complete_quota_slot = _Delegate("quotas")
    release_quota_slot = _Delegate("quotas")
    release_stale_quota_slots = _Delegate("quotas")
    quota_counts = _Delegate("quotas")

    # reminders_store.py
    enqueue_due_reminders = _Delegate("reminders")
    hand_over_reminders = _Delegate("reminders")
    queued_reminders = _Delegate("reminders")
    reminders_of = _Delegate("reminders")
    reminder_counts = _Delegate("reminders")

    # hardening: links.py, the bot-wide limit on failed code attempts
    count_bot_link_attempts = _Delegate("links")

    # privacy.py
    record_consent = _Delegate("privacy")
    consents_of = _Delegate("privacy")
    open_rights_request = _Delegate("privacy")
    active_rights_request = _Delegate("privacy")
    rights_requests = _Delegate("privacy")
    erase_respondent = _Delegate("privacy")
    requests_to_notify = _Delegate("privacy")
    close_rights_request = _Delegate("privacy")
    purge_contact_data = _Delegate("privacy")
    privacy_log = _Delegate("privacy")

    # webmore: links.py, the web's limit on wrong codes from everyone together
    count_channel_link_attempts = _Delegate("links")

    # outbox.py: several processes (claims with a lease, and rows of processes that are gone)
    claim_message = _Delegate("outbox")
    recover_abandoned = _Delegate("outbox")

    # coordination.py
    heartbeat = _Delegate("coordination")
    leave = _Delegate("coordination")
    live_processes = _Delegate("coordination")
    take_lease = _Delegate("coordination")
    release_lease = _Delegate("coordination")

    # surveys.py (forms branch): preloads of a sampled person's frame row
    respondent_frame_row = _Delegate("surveys")

    # outbox: a send whose answer was lost (it may have been delivered) becomes unknown, not retried
    mark_unknown = _Delegate("outbox")
