"""storage/pg_connection.py on a real server: the stores' ``?`` and ``:name`` statements run as
written, string literals and casts untouched; a wrong URL is a clear StorageError without its
password; and the test server can be one given by KHAOSAT_TEST_POSTGRES_URL."""

from __future__ import annotations

import asyncpg
import pytest

from storage import StorageError
from storage.pg_connection import PostgresTransactions, open_pool, postgresql_query, redacted
from tests.postgres_server import PostgresServer


def test_parameters_are_numbered_once_per_name_typed_by_value_and_never_inside_literals():
    assert postgresql_query("SELECT ? , '?', ?::text", (1, "2")) == ("SELECT $1::bigint , '?', $2::text::text", [1, "2"])
    assert postgresql_query("SELECT :a, ':b', :a::int, :c", {"a": 1, "c": 3, "b": 9}) == (
        "SELECT $1::bigint, ':b', $1::bigint::int, $2::bigint", [1, 3])
    # A None takes the type its place needs; a bool is 0 or 1, as SQLite stores it.
    assert postgresql_query("SELECT ?, ?, ?, ?", (None, True, 0.5, b"x")) == (
        "SELECT NULL, $1::bigint, $2::float8, $3::bytea", [1, 0.5, b"x"])
    assert postgresql_query("SELECT a.rowid FROM a WHERE x IN (SELECT value FROM json_each(:s))", {"s": "[]"}) == (
        "SELECT a.ctid FROM a WHERE x IN (SELECT value FROM json_array_elements_text(CAST($1::text AS json)))", ["[]"])
    with pytest.raises(StorageError, match="2 parameters in the statement, 1 given"):
        postgresql_query("SELECT ?, ?", (1,))


async def test_statements_run_as_the_sqlite_stores_write_them(postgresql_url):
    pool = await open_pool(postgresql_url)
    try:
        tx = PostgresTransactions(pool)
        count, first = await tx.execute("INSERT INTO console_audit (at, action, detail) VALUES (?, ?, '?')",
                                        ("2026-08-21T05:00:00+00:00", "login"))
        assert count == 1 and isinstance(first, int)
        async with tx.write() as db:
            await db.execute("INSERT INTO console_audit (at, action) VALUES (:at, :action)",
                             {"at": "2026-08-21T06:00:00+07:00", "action": "logout"})
            changed = await db.execute("UPDATE console_audit SET detail = :d WHERE action = :a", {"d": "x", "a": "login"})
        assert changed.rowcount == 1
        row = await tx.fetchone("SELECT count(*), min(julianday(at)) FROM console_audit WHERE detail = ? OR id > ?",
                                ("x", first))
        assert row[0] == 2 and row[1] == pytest.approx(2461273.4583333335)  # SQLite's julianday of 23:00 UTC
        with pytest.raises(ZeroDivisionError):
            async with tx.write() as db:
                await db.execute("DELETE FROM console_audit")
                raise ZeroDivisionError
        assert (await tx.fetchone("SELECT count(*) FROM console_audit"))[0] == 2  # rolled back
    finally:
        await pool.close()


async def test_a_server_that_cannot_be_reached_is_a_storage_error_without_the_password(postgres_server):
    url = postgres_server.admin_url.replace("postgres@", "nobody:s3cret@").rsplit("/", 1)[0] + "/nowhere"
    with pytest.raises(StorageError) as refused:
        await open_pool(url)
    assert "s3cret" not in str(refused.value) and "***" in str(refused.value)
    assert redacted("postgresql://u@h/d") == "postgresql://u@h/d"


async def test_an_existing_server_given_by_url_serves_the_tests(postgres_server):
    given = PostgresServer(postgres_server.admin_url)  # as KHAOSAT_TEST_POSTGRES_URL makes it
    url = await given.create_database(migrated=True)
    try:
        connection = await asyncpg.connect(url)
        assert await connection.fetchval("SELECT version FROM schema_version") > 0
        await connection.close()
    finally:
        await given.drop_database(url)
        await given.drop_database(given.url_of(given._template))
