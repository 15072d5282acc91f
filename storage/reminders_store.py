"""Reminders: who is due one, queuing them and handing them over to the outbox.

Tables written here: ``reminders`` (and ``outbox`` rows of handed-over reminders).
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from .records import ReminderHandOver, ReminderTexts
from .sqlite_hops import SQLiteRepository


# The dispositions reminders go to (``enqueue_due_reminders``, ``hand_over_reminders``); moving
# to any other withdraws the reminders not sent yet.
REMINDED = ("contacted", "started")


def _julianday(iso: str) -> float:
    """SQLite's julianday() of an ISO time (computed once instead of per row)."""
    with sqlite3.connect(":memory:") as conn:
        return conn.execute("SELECT julianday(?)", (iso,)).fetchone()[0]


def text_payload(chat_id: str, text: str) -> str:
    """A text message's payload when the caller gives no builder of its channel's own."""
    return json.dumps({"chat_id": chat_id, "text": text}, ensure_ascii=False, separators=(",", ":"))


# Who is due a reminder (see surveys/reminders.py for the rules, bot/reminders.py for the pass).
# Fielded members of the survey in disposition contacted/started, with a chat on one of the
# running bots (the most recently linked: {chat}); last activity = the later of their latest
# session's updated_at and that chat's linked_at (compared with julianday(), so any UTC offset
# works); k = reminders recorded since that activity, total = reminders recorded in all. Due when
# k and total are under the policy's limits, activity + after_days[k] <= now ({days} is NULL
# once k is past the offsets) and, for k > 0, the previous reminder was queued at least
# after_days[k] - after_days[k-1] days ago ({gaps}). {picks} takes each bot's due rows, oldest
# activity first, up to the bot's limit (a UNION ALL of one ``ORDER BY … LIMIT`` per bot: a
# row_number() window over all rows cost a fifth of a second per 100,000), straight into
# ``reminders``: SQLite buffers the selection before inserting, since it reads that table too.
# {in_strata} is empty, or keeps the members of the strata given (a unit-scoped coordinator's).
#: LIMIT for a bot without one: the largest integer, as both databases understand it (PostgreSQL
#: refuses SQLite's -1).
_NO_LIMIT = 2**63 - 1

_DUE_REMINDERS = """
WITH a AS (
    SELECT r.id AS rid, l.channel AS channel, l.bot AS bot,
        CASE WHEN s.id IS NULL THEN l.linked_at WHEN julianday(s.updated_at) >= julianday(l.linked_at)
             THEN s.updated_at ELSE l.linked_at END AS activity_at
    FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id
    {chat}
    LEFT JOIN sessions s ON s.id = (SELECT max(x.id) FROM sessions x
                                    WHERE x.respondent_id = r.id AND x.form_id = r.form_id)
    WHERE sm.survey_id = :survey AND r.disposition IN {reminded}{in_strata}
),
b AS MATERIALIZED (
    SELECT a.*, julianday(a.activity_at) AS act_jd,
        (SELECT count(*) FROM reminders x
            WHERE x.respondent_id = a.rid AND x.survey_id = :survey) AS total,
        (SELECT count(*) FROM reminders x WHERE x.respondent_id = a.rid
            AND x.survey_id = :survey AND x.activity_at = a.activity_at) AS k
    FROM a
),
c AS (
    SELECT b.*, b.act_jd + ({days}) AS due_jd
    FROM b
    WHERE b.total < :max AND b.act_jd + ({days}) <= :now_jd
        AND (b.k = 0 OR (SELECT max(julianday(x.enqueued_at)) FROM reminders x WHERE x.respondent_id = b.rid
                         AND x.survey_id = :survey AND x.activity_at = b.activity_at) + ({gaps})
                        <= :now_jd)
)
INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at, channel, bot)
{picks}
"""



# A bot's queued reminders, oldest first, with what handing one over needs: the person's
# disposition and form, their chat on that bot (a lookup in UNIQUE (channel, bot, respondent_id),
# cheaper than carrying the chat on every row of a 100,000-reminder pass), and their latest
# session's id and language. {surveys} is a list of placeholders. Two senders of one bot in two
# processes each take other reminders: SQLite's write lock makes them take turns; on PostgreSQL
# the rows read are claimed (the comment is SQL there: storage/pg_dialect.py).
_QUEUED_REMINDERS = """
SELECT q.id, q.respondent_id, q.survey_id, r.disposition, r.form_id, l.chat_id, s.id AS session_id,
    json_extract(s.state, '$.language') AS language
FROM reminders q JOIN respondents r ON r.id = q.respondent_id
LEFT JOIN chat_links l ON l.channel = q.channel AND l.bot = q.bot AND l.respondent_id = q.respondent_id
LEFT JOIN sessions s ON s.id = (SELECT max(x.id) FROM sessions x
                                WHERE x.respondent_id = r.id AND x.form_id = r.form_id)
WHERE q.channel = ? AND q.bot = ? AND q.outbox_id IS NULL AND q.withdrawn_at IS NULL
    AND q.survey_id IN ({surveys})
ORDER BY q.id LIMIT ? /*postgresql: FOR UPDATE OF q SKIP LOCKED*/
"""


def withdraw_reminders(conn: sqlite3.Connection, respondent_id: int, because: str, at: str) -> None:
    """Stop the person's reminders not sent yet: those still queued (no message yet) and
    those whose message is pending in the outbox, which ends 'failed' ("withdrawn: <status>"),
    unsent. Not deleted: a sender may hold the message's id already, and a deleted highest
    id would be given to the next message."""
    unsent = conn.execute(
        "SELECT q.id, q.outbox_id FROM reminders q LEFT JOIN outbox o ON o.id = q.outbox_id"
        " WHERE q.respondent_id = ? AND q.withdrawn_at IS NULL"
        " AND (q.outbox_id IS NULL OR o.state = 'pending')", (respondent_id,)).fetchall()
    if not unsent:
        return
    conn.executemany("UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE id = ?",
                     [(at, because, reminder_id) for reminder_id, _ in unsent])
    conn.executemany("UPDATE outbox SET state = 'failed', error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                     [(f"withdrawn: {because}", at, message_id) for _, message_id in unsent
                      if message_id is not None])


class Reminders(Protocol):
    """The reminders aggregate's storage: the contract every backend keeps."""

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
        strata: Collection[str] | None = None,
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

        ``strata``: only members of these stratum keys (``sample_members.stratum``) are
        considered, in the same statement (e.g. the strata a unit-scoped coordinator sees); an
        empty collection queues nobody; None (the default): the whole survey, as above.
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
        payload: Callable[[str, str], str] | None = None,
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
        ``method`` at ``priority``, payload ``payload(chat_id, text)`` (the channel's own: the
        caller's; without it ``{"chat_id", "text"}`` with the chat id as stored, as text) to the
        person's chat on this bot and ``respondent_id``, the text
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
    async def reminder_counts(self, survey_id: str | None = None) -> dict[int, int]:
        """Respondent id → number of reminders recorded for them and not withdrawn (queued,
        handed over or sent: a queued reminder leaves unless it is withdrawn, and the due
        rules count it too), of ``survey_id`` or of every survey; respondents never reminded
        are absent."""


class SQLiteReminders(SQLiteRepository):
    """``Reminders`` on SQLite."""

    async def enqueue_due_reminders(
        self,
        survey_id: str,
        *,
        after_days: Sequence[int],
        max_count: int,
        now: str,
        limits: Mapping[tuple[str, str], int | None],
        at: str,
        strata: Collection[str] | None = None,
    ) -> int:
        # The policy's offsets as SQL literals (ints): CASE k ... END is NULL once k >= len(after_days).
        steps = [int(d) for d in after_days]
        days = " ".join(f"WHEN {k} THEN {d}" for k, d in enumerate(steps))
        gaps = " ".join(f"WHEN {k} THEN {d - steps[k - 1]}" for k, d in enumerate(steps) if k)
        days = f"CASE b.k {days} END" if days else "NULL"
        gaps = f"CASE b.k {gaps} END" if gaps else "NULL"
        # Bots in (channel, bot) order: the reminders are numbered in that order, each bot's oldest first.
        bots = sorted(limits.items())
        if not bots or (strata is not None and not strata):
            return 0
        params: dict[str, Any] = {
            "survey": survey_id,
            "max": max_count,
            "now_jd": _julianday(now),
            "at": at,
        }
        in_strata = ""
        if strata is not None:  # one JSON array parameter, whatever the number of strata
            in_strata = " AND sm.stratum IN (SELECT value FROM json_each(:strata))"
            params["strata"] = json.dumps(sorted(set(strata)), ensure_ascii=False)
        for i, ((channel, bot), limit) in enumerate(bots):
            params.update({f"c{i}": channel, f"b{i}": bot, f"n{i}": _NO_LIMIT if limit is None else int(limit)})
        if len(bots) == 1:  # one link per (bot, person): a lookup in the UNIQUE (channel, bot, respondent_id)
            chat = "JOIN chat_links l ON l.channel = :c0 AND l.bot = :b0 AND l.respondent_id = r.id"
        else:
            either = " OR ".join(f"(l2.channel = :c{i} AND l2.bot = :b{i})" for i in range(len(bots)))
            chat = ("JOIN chat_links l ON l.rowid = (SELECT l2.rowid FROM chat_links l2 WHERE l2.respondent_id = r.id"
                    f" AND ({either}) ORDER BY l2.linked_at DESC, l2.rowid DESC LIMIT 1)")
        picks = "\nUNION ALL\n".join(
            "SELECT * FROM (SELECT c.rid, :survey, c.total + 1, c.k, c.activity_at,"
            " strftime('%Y-%m-%dT%H:%M:%S+00:00', c.due_jd), :at, c.channel, c.bot"
            f" FROM c WHERE c.channel = :c{i} AND c.bot = :b{i} ORDER BY c.act_jd, c.rid LIMIT :n{i}) AS pick{i}"
            for i in range(len(bots)))
        insert = _DUE_REMINDERS.format(chat=chat, days=days, gaps=gaps, picks=picks, reminded=repr(REMINDED),
                                      in_strata=in_strata)

        def body(conn: sqlite3.Connection) -> int:
            # A reminder already recorded fails the whole pass (rolled back) rather than queue twice.
            conn.execute(insert, params)
            # changes(), not rowcount: sqlite3 counts no statement that starts with WITH.
            return conn.execute("SELECT changes()").fetchone()[0]

        return await self._write(body)

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
        payload: Callable[[str, str], str] | None = None,
    ) -> ReminderHandOver:
        surveys = sorted(set(texts) - set(stopped))
        select = _QUEUED_REMINDERS.format(surveys=", ".join("?" * len(surveys)))
        asked = {survey: {form_id: frozenset(names) for form_id, names in wording.asked.items()}
                 for survey, wording in texts.items()}

        build = payload or text_payload

        def body(conn: sqlite3.Connection) -> ReminderHandOver:
            # A stopped survey's reminders all at once: batch by batch, a closed survey's 100,000
            # would hold the sender (and the replies behind it) for as many transactions.
            stopped_count = sum(conn.execute(
                "UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE channel = ? AND bot = ?"
                " AND outbox_id IS NULL AND withdrawn_at IS NULL AND survey_id = ?",
                (at, because, channel, bot, survey)).rowcount for survey, because in stopped.items())
            if limit <= 0 or not surveys:
                return ReminderHandOver(withdrawn=stopped_count)
            queued = conn.execute(select, (channel, bot, *surveys, limit)).fetchall()
            sessions = sorted({row["session_id"] for row in queued if row["session_id"] is not None})
            answered: dict[int, list[str]] = {}
            if sessions:
                for session_id, question in conn.execute(
                        f"SELECT session_id, question FROM answers WHERE session_id IN ({', '.join('?' * len(sessions))})"
                        " AND status = 'answered'", sessions):
                    answered.setdefault(session_id, []).append(question)
            withdrawn: list[tuple[str, str, int]] = []
            handed_over = 0
            for row in queued:
                survey = row["survey_id"]
                because = (row["disposition"] if row["disposition"] not in REMINDED
                           else "no chat" if row["chat_id"] is None else None)
                if because is not None:
                    withdrawn.append((at, because, row["id"]))
                    continue
                form_id = row["form_id"]
                questions = asked[survey].get(form_id or "", frozenset())
                progress = sum(1 for name in answered.get(row["session_id"], ()) if name in questions)
                text = texts[survey].render(row["language"] or None, form_id or None, progress)
                message_payload = build(row["chat_id"], text)
                message_id = conn.execute(
                    "INSERT INTO outbox (channel, bot, chat_id, method, payload, priority, respondent_id,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel, bot, row["chat_id"], method, message_payload, priority, row["respondent_id"], at, at),
                ).lastrowid
                conn.execute("UPDATE reminders SET outbox_id = ? WHERE id = ?", (message_id, row["id"]))
                handed_over += 1
            conn.executemany("UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE id = ?", withdrawn)
            return ReminderHandOver(handed_over, stopped_count + len(withdrawn), len(queued) == limit)

        return await self._write(body)

    async def queued_reminders(self, channel: str | None = None, bot: str | None = None) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM reminders WHERE outbox_id IS NULL AND withdrawn_at IS NULL"
            " AND (? IS NULL OR channel = ?) AND (? IS NULL OR bot = ?)",
            (channel, channel, bot, bot),
        )
        return row[0]

    async def reminders_of(self, respondent_id: int) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT survey_id, number, step, activity_at, due_at, enqueued_at, channel, bot, dedupe_key, outbox_id,"
            " withdrawn_at, withdrawn_because FROM reminders WHERE respondent_id = ? ORDER BY id",
            (respondent_id,),
        )
        return [dict(row) for row in rows]

    async def reminder_counts(self, survey_id: str | None = None) -> dict[int, int]:
        rows = await self._fetchall(
            "SELECT respondent_id, count(*) FROM reminders WHERE (? IS NULL OR survey_id = ?)"
            " AND withdrawn_at IS NULL GROUP BY respondent_id",
            (survey_id, survey_id),
        )
        return {row[0]: row[1] for row in rows}
