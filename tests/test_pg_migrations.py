"""The one migration list on a real PostgreSQL server: the same tables, columns, indexes and
triggers as on SQLite, applied once when two processes start together, and the translated
CHECKs and triggers doing what SQLite's do."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import asyncpg
import pytest

from storage import StorageError
from storage.migrations import MIGRATIONS
from storage.migrations import migrate as migrate_sqlite
from storage.pg_migrations import migrate, schema_version, to_postgresql

#: SQLite's declared type → PostgreSQL's data_type after translation.
TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea"}


async def sqlite_schema(path) -> dict:
    async with aiosqlite.connect(path, isolation_level=None) as connection:
        await migrate_sqlite(connection)
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = {table: [(name, TYPES[kind.split()[0]], bool(notnull), bool(pk))
                           for _, name, kind, notnull, _, pk, _ in db.execute(f"PRAGMA table_xinfo({table})")]
                   for table in tables}
        indexes = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        triggers = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return {"columns": columns, "indexes": indexes, "triggers": triggers}


async def postgres_schema(connection: asyncpg.Connection) -> dict:
    rows = await connection.fetch(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'NO' AS notnull,"
        " EXISTS (SELECT 1 FROM information_schema.table_constraints t"
        "         JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)"
        "         WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name"
        "           AND k.column_name = c.column_name) AS pk"
        " FROM information_schema.columns c WHERE c.table_schema = current_schema()"
        " AND c.table_name <> 'schema_version' ORDER BY c.table_name, c.ordinal_position")
    columns: dict[str, list] = {}
    for row in rows:
        columns.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["notnull"], row["pk"]))
    indexes = {row["indexname"] for row in await connection.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    triggers = {row["trigger_name"] for row in await connection.fetch(
        "SELECT DISTINCT trigger_name FROM information_schema.triggers WHERE trigger_schema = current_schema()")}
    return {"columns": columns, "indexes": indexes, "triggers": triggers}


async def test_a_fresh_database_gets_every_table_and_column_sqlite_has(empty_postgresql_url, tmp_path):
    connection = await asyncpg.connect(empty_postgresql_url)
    try:
        await migrate(connection)
        assert await schema_version(connection) == len(MIGRATIONS)
        postgres = await postgres_schema(connection)
    finally:
        await connection.close()
    sqlite = await sqlite_schema(tmp_path / "s.sqlite")
    assert sorted(postgres["columns"]) == sorted(sqlite["columns"])
    for table, sqlite_columns in sqlite["columns"].items():
        # SQLite's rowid alias is NOT NULL in fact though PRAGMA says nullable; PostgreSQL's
        # primary keys are NOT NULL by declaration.
        expected = [(name, kind, notnull or pk, pk) for name, kind, notnull, pk in sqlite_columns]
        assert postgres["columns"][table] == expected, table
    assert sqlite["indexes"] <= postgres["indexes"]
    assert postgres["triggers"] == sqlite["triggers"]


async def test_two_processes_starting_at_once_migrate_once(empty_postgresql_url):
    connections = [await asyncpg.connect(empty_postgresql_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(connection) for connection in connections))
        assert await connections[0].fetchval("SELECT count(*) FROM schema_version") == 1
        assert await schema_version(connections[1]) == len(MIGRATIONS)
        await migrate(connections[2])  # current: nothing to do, nothing fails
    finally:
        for connection in connections:
            await connection.close()


async def test_a_newer_database_is_refused(empty_postgresql_url):
    connection = await asyncpg.connect(empty_postgresql_url)
    try:
        await migrate(connection)
        await connection.execute("UPDATE schema_version SET version = $1", len(MIGRATIONS) + 1)
        with pytest.raises(StorageError, match="newer than this khaosat"):
            await migrate(connection)
    finally:
        await connection.close()


async def test_translated_checks_and_triggers_behave_as_sqlites(empty_postgresql_url):
    connection = await asyncpg.connect(empty_postgresql_url)
    try:
        await migrate(connection)
        at = "2026-08-21T05:00:00+00:00"
        await connection.execute("INSERT INTO questionnaires VALUES ('f', '1', 'f.md', 'x'::bytea, 'h', $1)", at)
        respondent = await connection.fetchval(
            "INSERT INTO respondents (external_id, pseudonym, created_at) VALUES ('e', 'p', $1) RETURNING id", at)
        session = await connection.fetchval(
            "INSERT INTO sessions (respondent_id, form_id, form_version, channel, status, state, revision,"
            " created_at, updated_at) VALUES ($1, 'f', '1', 'telegram', 'active', '{}', 0, $2, $2) RETURNING id",
            respondent, at)
        with pytest.raises(asyncpg.CheckViolationError):  # json_valid, as on SQLite
            await connection.execute("UPDATE sessions SET state = '{not json' WHERE id = $1", session)
        event = await connection.fetchval(
            "INSERT INTO events (session_id, event_key, event, revision, at) VALUES ($1, 'k', '{}', 1, $2)"
            " RETURNING id", session, at)
        await connection.execute("INSERT INTO answers VALUES ($1, 'q', '1', 'answered', $2)", session, at)
        await connection.execute("UPDATE answers SET value = '1' WHERE session_id = $1", session)  # unchanged
        await connection.execute("UPDATE answers SET value = '2' WHERE session_id = $1", session)
        history = await connection.fetch(
            "SELECT old_value, new_value, event_id FROM answer_history ORDER BY id")
        assert [tuple(row) for row in history] == [(None, "1", event), ("1", "2", event)]
        # The reminder's generated key and an identity past rows copied in by migration 5.
        await connection.execute(
            "INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at,"
            " channel, bot) VALUES ($1, 's', 1, 2, $2, $2, $2, 'telegram', 'b')", respondent, at)
        assert await connection.fetchval("SELECT dedupe_key FROM reminders") == f"reminder:{respondent}:{at}:2"
    finally:
        await connection.close()


def test_a_statement_without_a_postgresql_form_is_named():
    with pytest.raises(StorageError, match="migration 11 .*PRAGMA"):
        to_postgresql("PRAGMA foreign_keys = OFF", 11)


async def test_an_upgrade_keeps_the_rows_and_new_ids_follow_the_copied_ones(empty_postgresql_url):
    connection = await asyncpg.connect(empty_postgresql_url)
    try:
        await migrate(connection, target=4)  # before migration 5 rebuilds the outbox
        at = "2026-08-21T05:00:00+00:00"
        await connection.execute(
            "INSERT INTO outbox (channel, bot, chat_id, method, payload, created_at, updated_at)"
            " SELECT 'telegram', 'b', 'c' || n, 'sendMessage', '{}', $1, $1 FROM generate_series(1, 3) n", at)
        await migrate(connection)
        assert await connection.fetchval("SELECT string_agg(chat_id, ',' ORDER BY id) FROM outbox") == "c1,c2,c3"
        new = await connection.fetchval(
            "INSERT INTO outbox (channel, bot, chat_id, method, payload, created_at, updated_at)"
            " VALUES ('telegram', 'b', 'c4', 'sendMessage', '{}', $1, $1) RETURNING id", at)
        assert new == 4  # not 1: the identity moved past the ids copied into the rebuilt table
    finally:
        await connection.close()
