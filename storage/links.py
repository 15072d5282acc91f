"""Links and invitations: respondents (and their personal rows), invitation codes, the chats
linked to a respondent, and the attempts to link one.

Tables written here: ``respondents`` (also by ``fieldwork`` when a sample is fielded, through
``insert_respondent``), ``respondent_personal``, ``invitations``, ``chat_links``,
``link_attempts``.
"""

from __future__ import annotations

import abc
import dataclasses
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Protocol

from .errors import AmbiguousPhone, InvitationRevoked, InvitationUsed, LinkConflict, NotFound
from .records import Invitation, Personal, Respondent
from .sqlite_hops import SQLiteRepository, one_row


# Crockford base32: no I, L, O, U, so pseudonyms survive being read aloud or retyped.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _new_pseudonym() -> str:
    return "R" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(10))


RESPONDENT_COLUMNS = (
    "id, external_id, pseudonym, created_at, form_id, stratum, disposition, disposition_at"
)
RESPONDENT_COLUMNS_R = ", ".join(f"r.{c.strip()}" for c in RESPONDENT_COLUMNS.split(","))


_INVITATION_COLUMNS = (
    "id, respondent_id, kind, code_hash, created_at, revoked_at, used_at, used_channel,"
    " used_bot, used_chat"
)


def respondent_by_external_id(
    conn: sqlite3.Connection, external_id: str
) -> Respondent | None:
    row = one_row(
        conn,
        f"SELECT {RESPONDENT_COLUMNS} FROM respondents WHERE external_id = ?",
        (external_id,),
    )
    return Respondent(**dict(row)) if row is not None else None


def insert_respondent(
    conn: sqlite3.Connection,
    external_id: str,
    form_id: str | None,
    stratum: str | None,
    at: str,
) -> Respondent:
    pseudonym = _new_pseudonym()
    while one_row(conn, "SELECT 1 FROM respondents WHERE pseudonym = ?", (pseudonym,)):
        pseudonym = _new_pseudonym()
    cursor = conn.execute(
        "INSERT INTO respondents (external_id, pseudonym, created_at, form_id, stratum)"
        " VALUES (?, ?, ?, ?, ?)",
        (external_id, pseudonym, at, form_id, stratum),
    )
    return Respondent(cursor.lastrowid, external_id, pseudonym, at, form_id, stratum)


def require_respondent(conn: sqlite3.Connection, respondent_id: int) -> Respondent:
    row = one_row(
        conn, f"SELECT {RESPONDENT_COLUMNS} FROM respondents WHERE id = ?", (respondent_id,)
    )
    if row is None:
        raise NotFound(f"respondent {respondent_id}")
    return Respondent(**dict(row))


class Links(Protocol):
    """The links aggregate's storage: the contract every backend keeps."""

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

    @abc.abstractmethod
    async def count_bot_link_attempts(
        self, channel: str, bot: str, outcomes: Sequence[str], since: str
    ) -> int:
        """How many attempts with any of ``outcomes`` every chat of the bot made at or after ``since``.

        For the bot-wide brute-force limit (failed codes per minute, from any number of chats).
        """


class SQLiteLinks(SQLiteRepository):
    """``Links`` on SQLite."""

    async def ensure_respondent(self, external_id: str, at: str) -> Respondent:
        def body(conn: sqlite3.Connection) -> Respondent:
            existing = respondent_by_external_id(conn, external_id)
            if existing is not None:
                return existing
            return insert_respondent(conn, external_id, None, None, at)

        return await self._write(body)

    async def get_respondent(self, respondent_id: int) -> Respondent:
        return await self._read(require_respondent, respondent_id)

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
        def body(conn: sqlite3.Connection) -> Respondent:
            existing = respondent_by_external_id(conn, external_id)
            if existing is not None:
                return existing
            respondent = insert_respondent(conn, external_id, form_id, stratum, at)
            if name is not None or phone is not None:
                conn.execute(
                    "INSERT INTO respondent_personal (respondent_id, name, phone)"
                    " VALUES (?, ?, ?)",
                    (respondent.id, name, phone),
                )
            return respondent

        return await self._write(body)

    async def personal(self, respondent_id: int) -> Personal:
        def body(conn: sqlite3.Connection) -> Personal:
            if not one_row(conn, "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)):
                raise NotFound(f"respondent {respondent_id}")
            row = one_row(
                conn,
                "SELECT name, phone FROM respondent_personal WHERE respondent_id = ?",
                (respondent_id,),
            )
            return Personal(**dict(row)) if row is not None else Personal()

        return await self._read(body)

    async def respondent_by_phone(self, phone: str) -> Respondent | None:
        rows = await self._fetchall(
            f"SELECT {RESPONDENT_COLUMNS_R} FROM respondents r"
            " JOIN respondent_personal p ON p.respondent_id = r.id"
            " WHERE p.phone = ? ORDER BY r.id LIMIT 2",
            (phone,),
        )
        if len(rows) > 1:
            raise AmbiguousPhone(f"several respondents have phone {phone}")
        return Respondent(**dict(rows[0])) if rows else None

    async def list_respondents(self, form_id: str | None = None) -> list[Respondent]:
        if form_id is None:
            rows = await self._fetchall(
                f"SELECT {RESPONDENT_COLUMNS} FROM respondents ORDER BY id"
            )
        else:
            rows = await self._fetchall(
                f"SELECT {RESPONDENT_COLUMNS} FROM respondents WHERE form_id = ? ORDER BY id",
                (form_id,),
            )
        return [Respondent(**dict(row)) for row in rows]

    async def set_respondent_form(
        self, respondent_id: int, form_id: str, stratum: str | None, at: str
    ) -> Respondent:
        def body(conn: sqlite3.Connection) -> Respondent:
            require_respondent(conn, respondent_id)
            conn.execute(
                "UPDATE respondents SET form_id = ?, stratum = ? WHERE id = ?",
                (form_id, stratum, respondent_id),
            )
            return require_respondent(conn, respondent_id)

        return await self._write(body)

    async def issue_invitation(
        self, respondent_id: int, kind: str, code_hash: str, at: str
    ) -> Invitation:
        def body(conn: sqlite3.Connection) -> Invitation:
            require_respondent(conn, respondent_id)
            conn.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
                (at, respondent_id, kind),
            )
            cursor = conn.execute(
                "INSERT INTO invitations (respondent_id, kind, code_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (respondent_id, kind, code_hash, at),
            )
            return Invitation(cursor.lastrowid, respondent_id, kind, code_hash, at)

        return await self._write(body)

    async def revoke_invitations(self, respondent_id: int, at: str) -> int:
        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND revoked_at IS NULL",
                (at, respondent_id),
            )
            return cursor.rowcount

        return await self._write(body)

    async def find_invitation(self, code_hash: str) -> Invitation | None:
        row = await self._fetchone(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE code_hash = ?", (code_hash,)
        )
        return Invitation(**dict(row)) if row is not None else None

    async def active_invitation(self, respondent_id: int, kind: str) -> Invitation | None:
        row = await self._fetchone(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations"
            " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
            (respondent_id, kind),
        )
        return Invitation(**dict(row)) if row is not None else None

    async def use_invitation(
        self, invitation_id: int, channel: str, bot: str, chat_id: str, at: str
    ) -> Invitation:
        chat_id = str(chat_id)

        def body(conn: sqlite3.Connection) -> Invitation:
            row = one_row(
                conn,
                f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = ?",
                (invitation_id,),
            )
            if row is None:
                raise NotFound(f"invitation {invitation_id}")
            invitation = Invitation(**dict(row))
            if invitation.used_at is not None:
                if (invitation.used_channel, invitation.used_bot, invitation.used_chat) == (
                    channel, bot, chat_id,
                ):
                    return invitation
                raise InvitationUsed(
                    f"invitation {invitation_id} was already used at {invitation.used_at}"
                    " from another chat"
                )
            if invitation.revoked_at is not None:
                raise InvitationRevoked(
                    f"invitation {invitation_id} was revoked at {invitation.revoked_at}"
                )
            conn.execute(
                "UPDATE invitations SET used_at = ?, used_channel = ?, used_bot = ?,"
                " used_chat = ? WHERE id = ?",
                (at, channel, bot, chat_id, invitation_id),
            )
            return dataclasses.replace(
                invitation, used_at=at, used_channel=channel, used_bot=bot, used_chat=chat_id
            )

        return await self._write(body)

    async def link_chat(
        self, channel: str, bot: str, chat_id: str, respondent_id: int, at: str
    ) -> None:
        chat_id = str(chat_id)

        def body(conn: sqlite3.Connection) -> None:
            require_respondent(conn, respondent_id)
            row = one_row(
                conn,
                "SELECT respondent_id FROM chat_links"
                " WHERE channel = ? AND bot = ? AND chat_id = ?",
                (channel, bot, chat_id),
            )
            if row is not None:
                if row["respondent_id"] == respondent_id:
                    return
                raise LinkConflict(
                    f"{channel} chat {chat_id} on bot {bot!r} is linked to another respondent"
                )
            if one_row(
                conn,
                "SELECT 1 FROM chat_links WHERE channel = ? AND bot = ? AND respondent_id = ?",
                (channel, bot, respondent_id),
            ):
                raise LinkConflict(
                    f"respondent {respondent_id} is linked to another {channel} chat"
                    f" on bot {bot!r}"
                )
            conn.execute(
                "INSERT INTO chat_links (channel, bot, chat_id, respondent_id, linked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel, bot, chat_id, respondent_id, at),
            )

        await self._write(body)

    @staticmethod
    def _linked_respondent(
        conn: sqlite3.Connection, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        row = one_row(
            conn,
            f"SELECT {RESPONDENT_COLUMNS_R} FROM chat_links l"
            " JOIN respondents r ON r.id = l.respondent_id"
            " WHERE l.channel = ? AND l.bot = ? AND l.chat_id = ?",
            (channel, bot, str(chat_id)),
        )
        return Respondent(**dict(row)) if row is not None else None

    async def linked_respondent(
        self, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        return await self._read(self._linked_respondent, channel, bot, chat_id)

    async def chats_of(self, respondent_id: int) -> list[tuple[str, str, str]]:
        rows = await self._fetchall(
            "SELECT channel, bot, chat_id FROM chat_links WHERE respondent_id = ?"
            " ORDER BY linked_at, channel, bot, chat_id",
            (respondent_id,),
        )
        return [tuple(row) for row in rows]

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
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO link_attempts (channel, bot, chat_id, outcome, detail, at, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (channel, bot, str(chat_id), outcome, detail, at, key),
            )
            return cursor.rowcount == 1

        return await self._write(body)

    async def count_link_attempts(
        self, channel: str, bot: str, chat_id: str, outcome: str, since: str
    ) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM link_attempts"
            " WHERE channel = ? AND bot = ? AND chat_id = ? AND outcome = ? AND at >= ?",
            (channel, bot, str(chat_id), outcome, since),
        )
        return row[0]

    async def count_bot_link_attempts(
        self, channel: str, bot: str, outcomes: Sequence[str], since: str
    ) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM link_attempts"
            f" WHERE channel = ? AND bot = ? AND at >= ? AND outcome IN ({', '.join('?' * len(outcomes))})",
            (channel, bot, since, *outcomes),
        )
        return row[0]
