"""Privacy: the consents people gave (with the exact text shown), their rights requests, the
erasure that fulfils one, and the retention purge of a closed survey's contact data.

Tables written here: ``privacy_texts``, ``consents``, ``rights_requests``, ``privacy_log``
(migration 11). Erasure and retention are the one place that deletes another aggregate's rows
(answers, sessions, personal data, chat links, invitations, outbox texts): they do it in ONE
transaction each, through the functions below, so a crash leaves a person either whole or gone.
A chat's consent is written the other way round: the step write (``sessions.py``) inserts it
through ``insert_consents``, in the transaction of the step that accepts the consent screen.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .fieldwork import move_disposition
from .links import require_respondent
from .records import ConsentRecord
from .reminders_store import withdraw_reminders
from .sqlite_hops import SQLiteRepository, all_rows, one_row

#: A request's life: open (the person withdrew; nothing more is sent to them) → fulfilled (their
#: data erased; they are still to be told) → closed (told, and their chat links deleted).
REQUEST_STATES = ("open", "fulfilled", "closed")
_REQUEST_COLUMNS = ("id, respondent_id, kind, channel, bot, language, opened_at, acknowledge_by, handle_by, status,"
                    " fulfilled_at, fulfilled_by, notified_at")


@dataclass(frozen=True)
class RightsRequest:
    id: int
    respondent_id: int
    kind: str
    channel: str
    bot: str
    language: str
    opened_at: str
    acknowledge_by: str
    handle_by: str
    status: str
    fulfilled_at: str | None
    fulfilled_by: str | None
    notified_at: str | None


@dataclass(frozen=True)
class Consent:
    respondent_id: int
    version: str
    sha256: str
    language: str
    channel: str
    at: str
    text: str


def _log(conn: sqlite3.Connection, action: str, actor: str, at: str, *, request_id: int | None = None,
         survey_id: str | None = None, detail: dict | None = None) -> None:
    conn.execute("INSERT INTO privacy_log (request_id, survey_id, action, actor, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                 (request_id, survey_id, action, actor, json.dumps(detail or {}, ensure_ascii=False), at))


def _request(conn: sqlite3.Connection, where: str, params: Sequence) -> RightsRequest | None:
    row = one_row(conn, f"SELECT {_REQUEST_COLUMNS} FROM rights_requests WHERE {where} ORDER BY id DESC LIMIT 1",
                  params)
    return RightsRequest(*row) if row is not None else None


def _chats(conn: sqlite3.Connection, respondent_ids: Sequence[int]) -> list[tuple]:
    return [tuple(row) for respondent_id in respondent_ids for row in all_rows(
        conn, "SELECT channel, bot, chat_id FROM chat_links WHERE respondent_id = ?", (respondent_id,))]


def _forget_chats(conn: sqlite3.Connection, respondent_ids: Sequence[int], counts: dict[str, int],
                  keep_pending: bool) -> None:
    """Chat links, the link attempts from those chats, and the chat ids and texts of the
    messages already sent to them (a message still to be sent keeps its chat id if asked)."""
    for channel, bot, chat_id in _chats(conn, respondent_ids):
        counts["link_attempts"] += conn.execute(
            "DELETE FROM link_attempts WHERE channel = ? AND bot = ? AND chat_id = ?", (channel, bot, chat_id)).rowcount
    for respondent_id in respondent_ids:
        counts["chats"] += conn.execute("DELETE FROM chat_links WHERE respondent_id = ?", (respondent_id,)).rowcount
        counts["messages"] += conn.execute(
            "UPDATE outbox SET chat_id = '', payload = '{}' WHERE respondent_id = ? AND chat_id <> ''"
            + (" AND state NOT IN ('pending', 'sending')" if keep_pending else ""), (respondent_id,)).rowcount


def _forget_contact(conn: sqlite3.Connection, respondent_ids: Sequence[int], counts: dict[str, int]) -> None:
    for respondent_id in respondent_ids:
        row = one_row(conn, "SELECT name, phone FROM respondent_personal WHERE respondent_id = ?", (respondent_id,))
        if row is not None:
            counts["names"] += row[0] is not None
            counts["phones"] += row[1] is not None
            conn.execute("DELETE FROM respondent_personal WHERE respondent_id = ?", (respondent_id,))
        counts["codes"] += conn.execute("DELETE FROM invitations WHERE respondent_id = ?", (respondent_id,)).rowcount
        # Open mode names a respondent by the messenger's user id: that is personal too.
        counts["accounts"] += conn.execute(
            "UPDATE respondents SET external_id = 'erased:' || id WHERE id = ?"
            " AND (external_id LIKE 'telegram:%' OR external_id LIKE 'zalo:%')", (respondent_id,)).rowcount


def _counts() -> dict[str, int]:
    return dict.fromkeys(("names", "phones", "frame_people", "chats", "codes", "accounts", "link_attempts",
                          "messages", "sessions", "answers", "media"), 0)


def _purge_counts(conn: sqlite3.Connection, survey_id: str, respondent_ids: Sequence[int]) -> dict[str, int]:
    """What ``purge_contact_data`` would delete, counted without writing (the dry run)."""
    counts = _counts()
    counts["frame_people"] = one_row(conn, "SELECT count(*) FROM frame_personal WHERE survey_id = ?", (survey_id,))[0]
    for respondent_id in respondent_ids:
        row = one_row(conn, "SELECT count(name), count(phone) FROM respondent_personal WHERE respondent_id = ?",
                      (respondent_id,))
        counts["names"] += row[0]
        counts["phones"] += row[1]
        counts["codes"] += one_row(conn, "SELECT count(*) FROM invitations WHERE respondent_id = ?", (respondent_id,))[0]
        counts["accounts"] += one_row(
            conn, "SELECT count(*) FROM respondents WHERE id = ? AND (external_id LIKE 'telegram:%'"
            " OR external_id LIKE 'zalo:%')", (respondent_id,))[0]
        counts["chats"] += one_row(conn, "SELECT count(*) FROM chat_links WHERE respondent_id = ?", (respondent_id,))[0]
        counts["messages"] += one_row(conn, "SELECT count(*) FROM outbox WHERE respondent_id = ? AND chat_id <> ''",
                                      (respondent_id,))[0]
        counts["media"] += one_row(conn, "SELECT count(*) FROM answer_media WHERE session_id IN"
                                         " (SELECT id FROM sessions WHERE respondent_id = ?)", (respondent_id,))[0]
    for channel, bot, chat_id in _chats(conn, respondent_ids):
        counts["link_attempts"] += one_row(
            conn, "SELECT count(*) FROM link_attempts WHERE channel = ? AND bot = ? AND chat_id = ?",
            (channel, bot, chat_id))[0]
    return counts


def insert_consents(conn: sqlite3.Connection, consents: Sequence[ConsentRecord]) -> int:
    """Store consents inside the caller's write transaction: each text once per sha256 in
    ``privacy_texts``, each consent once per key. Returns how many consents were new.

    The one insert of consents: ``record_consent`` runs it alone (a paper form's), and the step
    write (``sessions.py``) runs it with the step that accepts a consent screen, so the session
    never becomes active without the record of what the person accepted. Rare (once per
    person), so a statement per row."""
    recorded = 0
    for consent in consents:
        conn.execute("INSERT INTO privacy_texts (sha256, version, language, channel, text, first_at)"
                     " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                     (consent.sha256, consent.version, consent.language, consent.channel, consent.text, consent.at))
        recorded += conn.execute(
            "INSERT INTO consents (respondent_id, text_sha256, version, channel, at, key)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (consent.respondent_id, consent.sha256, consent.version, consent.channel, consent.at,
             consent.key)).rowcount
    return recorded


class Privacy(Protocol):
    """The privacy aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def record_consent(self, respondent_id: int, *, version: str, sha256: str, language: str, channel: str,
                             text: str, at: str, key: str) -> bool:
        """Store that the respondent accepted the consent screen, with the exact text shown (kept
        once per sha256 in ``privacy_texts``), its version, language, channel and time. False and
        nothing written when ``key`` was recorded before."""

    @abc.abstractmethod
    async def consents_of(self, respondent_id: int) -> list[Consent]:
        """The respondent's consents, oldest first, each with the text exactly as shown."""

    @abc.abstractmethod
    async def open_rights_request(self, respondent_id: int, *, kind: str, channel: str, bot: str, language: str,
                                  at: str, acknowledge_by: str, handle_by: str) -> tuple[RightsRequest, bool]:
        """Open a withdraw-and-delete request, in ONE transaction that also stops every message to
        the person: their pending outbox messages end 'failed' ("withdrawn: rights request"),
        their reminders are withdrawn and their disposition becomes "refused". A person with a
        request not yet closed gets that one back (second value False) and nothing is written."""

    @abc.abstractmethod
    async def active_rights_request(self, respondent_id: int) -> RightsRequest | None:
        """The person's request that is open or fulfilled (not yet closed), if any."""

    @abc.abstractmethod
    async def rights_requests(self, *, survey_id: str | None = None, form_ids: Sequence[str] = (),
                              request_id: int | None = None) -> list[RightsRequest]:
        """Requests newest first: of a survey's sample members or of people answering one of
        ``form_ids`` (open mode), or the one ``request_id``; all when no filter is given."""

    @abc.abstractmethod
    async def erase_respondent(self, request_id: int, actor: str, at: str, *,
                               silent_channels: Sequence[str] = ()) -> dict[str, int] | None:
        """Fulfil an open request: delete the person's sessions, events, answers and their history,
        quota slot, name and phone (also in the frame), invitation codes, and the texts of the
        messages sent to them; the request becomes "fulfilled" (or "closed" at once when no chat
        is left to tell them; chats on ``silent_channels``, which cannot write first, are
        forgotten at once). Returns what was deleted; None (nothing written) if the request is
        not open. Logged in ``privacy_log``."""

    @abc.abstractmethod
    async def requests_to_notify(self, channel: str, bot: str) -> list[tuple[RightsRequest, str]]:
        """Fulfilled requests whose person has a chat on this bot: (request, chat id). The bot the
        request was made on answers it; another bot only when the person has no chat left there."""

    @abc.abstractmethod
    async def close_rights_request(self, request_id: int, at: str) -> bool:
        """The person was told: delete their chat links (and what those chats left behind);
        the request becomes "closed". False when it was not "fulfilled"."""

    @abc.abstractmethod
    async def purge_contact_data(self, survey_id: str, respondent_ids: Sequence[int], at: str, *,
                                 dry_run: bool) -> dict[str, int]:
        """Retention: delete the names and phones of the survey's frame and of ``respondent_ids``,
        their chat links, invitation codes, link attempts and the chat ids and texts of sent
        messages; answers stay, under pseudonyms. Returns the counts (what would go, with
        ``dry_run``, which writes nothing). A second pass finds nothing: idempotent."""

    @abc.abstractmethod
    async def privacy_log(self, *, request_id: int | None = None, survey_id: str | None = None) -> list[dict]:
        """The audit trail of requests and purges, oldest first."""


class SQLitePrivacy(SQLiteRepository):
    """``Privacy`` on SQLite."""

    async def record_consent(self, respondent_id: int, *, version: str, sha256: str, language: str, channel: str,
                             text: str, at: str, key: str) -> bool:
        consent = ConsentRecord(respondent_id, version, sha256, language, channel, text, at, key)
        return await self._write(lambda conn: insert_consents(conn, [consent]) == 1)

    async def consents_of(self, respondent_id: int) -> list[Consent]:
        rows = await self._fetchall(
            "SELECT c.respondent_id, c.version, c.text_sha256, t.language, c.channel, c.at, t.text"
            " FROM consents c JOIN privacy_texts t ON t.sha256 = c.text_sha256"
            " WHERE c.respondent_id = ? ORDER BY c.id", (respondent_id,))
        return [Consent(*row) for row in rows]

    async def open_rights_request(self, respondent_id: int, *, kind: str, channel: str, bot: str, language: str,
                                  at: str, acknowledge_by: str, handle_by: str) -> tuple[RightsRequest, bool]:
        def body(conn: sqlite3.Connection) -> tuple[RightsRequest, bool]:
            existing = _request(conn, "respondent_id = ? AND status <> 'closed'", (respondent_id,))
            if existing is not None:
                return existing, False
            respondent = require_respondent(conn, respondent_id)
            request_id = conn.execute(
                "INSERT INTO rights_requests (respondent_id, kind, channel, bot, language, opened_at, acknowledge_by,"
                " handle_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                (respondent_id, kind, channel, bot, language, at, acknowledge_by, handle_by)).lastrowid
            stopped = conn.execute(
                "UPDATE outbox SET state = 'failed', error = 'withdrawn: rights request', updated_at = ?"
                " WHERE respondent_id = ? AND state = 'pending'", (at, respondent_id)).rowcount
            withdraw_reminders(conn, respondent_id, "rights request", at)
            if respondent.disposition != "refused":
                move_disposition(conn, respondent, "refused", at, reason=f"consent withdrawn (rights request {request_id})",
                                 key=f"rights:{request_id}")
            _log(conn, "opened", f"{channel}:{bot}", at, request_id=request_id,
                 detail={"kind": kind, "messages_withdrawn": stopped})
            return _request(conn, "id = ?", (request_id,)), True
        return await self._write(body)

    async def active_rights_request(self, respondent_id: int) -> RightsRequest | None:
        return await self._read(lambda conn: _request(conn, "respondent_id = ? AND status <> 'closed'",
                                                      (respondent_id,)))

    async def rights_requests(self, *, survey_id: str | None = None, form_ids: Sequence[str] = (),
                              request_id: int | None = None) -> list[RightsRequest]:
        columns = ", ".join(f"q.{c.strip()}" for c in _REQUEST_COLUMNS.split(","))
        if request_id is not None:
            where, params = "q.id = ?", [request_id]
        elif survey_id is None:
            where, params = "1 = 1", []
        else:
            marks = ", ".join("?" * len(form_ids)) or "NULL"
            where = ("q.respondent_id IN (SELECT respondent_id FROM sample_members WHERE survey_id = ?"
                     " AND respondent_id IS NOT NULL) OR (q.respondent_id IN (SELECT id FROM respondents"
                     f" WHERE form_id IN ({marks})) AND q.respondent_id NOT IN (SELECT respondent_id FROM"
                     " sample_members WHERE respondent_id IS NOT NULL))")
            params = [survey_id, *form_ids]
        rows = await self._fetchall(f"SELECT {columns} FROM rights_requests q WHERE {where} ORDER BY q.id DESC",
                                    params)
        return [RightsRequest(*row) for row in rows]

    async def erase_respondent(self, request_id: int, actor: str, at: str, *,
                               silent_channels: Sequence[str] = ()) -> dict[str, int] | None:
        def body(conn: sqlite3.Connection) -> dict[str, int] | None:
            request = _request(conn, "id = ?", (request_id,))
            if request is None or request.status != "open":
                return None
            who, counts = request.respondent_id, _counts()
            sessions = [row[0] for row in all_rows(conn, "SELECT id FROM sessions WHERE respondent_id = ?", (who,))]
            for session_id in sessions:
                counts["media"] += conn.execute("DELETE FROM answer_media WHERE session_id = ?",
                                                (session_id,)).rowcount
                conn.execute("DELETE FROM answer_history WHERE session_id = ?", (session_id,))
                counts["answers"] += conn.execute("DELETE FROM answers WHERE session_id = ?", (session_id,)).rowcount
                conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
                conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            counts["sessions"] = len(sessions)
            conn.execute("DELETE FROM quota_slots WHERE respondent_id = ?", (who,))
            member = one_row(conn, "SELECT survey_id, frame_id FROM sample_members WHERE respondent_id = ?", (who,))
            if member is not None:
                counts["frame_people"] += conn.execute(
                    "DELETE FROM frame_personal WHERE survey_id = ? AND frame_id = ?", tuple(member)).rowcount
            _forget_contact(conn, [who], counts)
            # The messages already sent lose their texts now; the chats stay until the person is told.
            counts["messages"] += conn.execute(
                "UPDATE outbox SET payload = '{}' WHERE respondent_id = ? AND state NOT IN ('pending', 'sending')",
                (who,)).rowcount
            for channel, bot, chat_id in _chats(conn, [who]):
                if channel in silent_channels:
                    counts["link_attempts"] += conn.execute(
                        "DELETE FROM link_attempts WHERE channel = ? AND bot = ? AND chat_id = ?",
                        (channel, bot, chat_id)).rowcount
                    counts["chats"] += conn.execute("DELETE FROM chat_links WHERE channel = ? AND bot = ? AND chat_id = ?",
                                                    (channel, bot, chat_id)).rowcount
            told = bool(_chats(conn, [who]))
            conn.execute("UPDATE rights_requests SET status = ?, fulfilled_at = ?, fulfilled_by = ? WHERE id = ?",
                         ("fulfilled" if told else "closed", at, actor, request_id))
            _log(conn, "fulfilled", actor, at, request_id=request_id, detail=counts)
            if not told:
                _log(conn, "closed", actor, at, request_id=request_id, detail={"told": False})
            return counts
        return await self._write(body)

    async def requests_to_notify(self, channel: str, bot: str) -> list[tuple[RightsRequest, str]]:
        columns = ", ".join(f"q.{c.strip()}" for c in _REQUEST_COLUMNS.split(","))
        rows = await self._fetchall(
            f"SELECT {columns}, l.chat_id FROM rights_requests q JOIN chat_links l ON l.respondent_id = q.respondent_id"
            " WHERE q.status = 'fulfilled' AND l.channel = ? AND l.bot = ?"
            # The bot the request was made on tells the person; another only when that chat is gone.
            " AND ((q.channel = l.channel AND q.bot = l.bot) OR NOT EXISTS (SELECT 1 FROM chat_links o"
            " WHERE o.respondent_id = q.respondent_id AND o.channel = q.channel AND o.bot = q.bot))"
            " ORDER BY q.id", (channel, bot))
        return [(RightsRequest(*row[:-1]), row[-1]) for row in rows]

    async def close_rights_request(self, request_id: int, at: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            request = _request(conn, "id = ?", (request_id,))
            if request is None or request.status != "fulfilled":
                return False
            counts = _counts()
            _forget_chats(conn, [request.respondent_id], counts, keep_pending=True)
            conn.execute("UPDATE rights_requests SET status = 'closed', notified_at = ? WHERE id = ?", (at, request_id))
            _log(conn, "closed", "bot", at, request_id=request_id,
                 detail={"told": True, "chats": counts["chats"], "link_attempts": counts["link_attempts"]})
            return True
        return await self._write(body)

    async def purge_contact_data(self, survey_id: str, respondent_ids: Sequence[int], at: str, *,
                                 dry_run: bool) -> dict[str, int]:
        if dry_run:
            return await self._read(_purge_counts, survey_id, respondent_ids)

        def body(conn: sqlite3.Connection) -> dict[str, int]:
            counts = _counts()
            counts["frame_people"] = conn.execute(
                "DELETE FROM frame_personal WHERE survey_id = ?", (survey_id,)).rowcount
            _forget_contact(conn, respondent_ids, counts)
            _forget_chats(conn, respondent_ids, counts, keep_pending=False)
            # Photos and voices show who a person is, as a name does: they go with the contact data
            # (the answer keeps the file's name, exported without a file).
            for respondent_id in respondent_ids:
                counts["media"] += conn.execute("DELETE FROM answer_media WHERE session_id IN"
                                                " (SELECT id FROM sessions WHERE respondent_id = ?)",
                                                (respondent_id,)).rowcount
            if any(counts.values()):
                _log(conn, "retention_purge", "retention", at, survey_id=survey_id, detail=counts)
            return counts
        return await self._write(body)

    async def privacy_log(self, *, request_id: int | None = None, survey_id: str | None = None) -> list[dict]:
        rows = await self._fetchall(
            "SELECT request_id, survey_id, action, actor, detail, at FROM privacy_log"
            " WHERE (request_id = ? OR ? IS NULL) AND (survey_id = ? OR ? IS NULL) ORDER BY id",
            (request_id, request_id, survey_id, survey_id))
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]
