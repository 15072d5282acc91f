"""Work that one process at a time may do, among any number on one PostgreSQL database: the
reminder pass, say. A PostgreSQL advisory lock, held by a session (one pooled connection kept
for the whole block), so that it needs no table, and a process killed while holding it frees
it: the server ends the session when the connection drops.

    async with one_at_a_time(pool, REMINDER_PASS) as mine:
        if mine:
            ...  # this process's turn; others skipped the pass (or, with wait=True, wait)

The work inside must be idempotent all the same: a holder that loses its connection mid-block
loses the lock with it, and another process may start the same work before it notices.
"""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg

#: The reminder pass (bot/reminders.py): one process queues reminders, the others skip the turn.
REMINDER_PASS = "khaosat.reminder-pass"


def lock_key(name: str) -> int:
    """The 64-bit advisory-lock key of ``name`` (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@asynccontextmanager
async def one_at_a_time(pool: asyncpg.Pool, name: str, *, wait: bool = False) -> AsyncIterator[bool]:
    """Hold the lock ``name`` for the block: True when held; False, at once, when another session
    holds it (unless ``wait``: then wait for it, and always True)."""
    key = lock_key(name)
    async with pool.acquire() as connection:
        if wait:
            await connection.execute("SELECT pg_advisory_lock($1)", key)
            held = True
        else:
            held = await connection.fetchval("SELECT pg_try_advisory_lock($1)", key)
        try:
            yield held
        finally:
            # (Were this to fail, the pool's reset of the connection unlocks all of its locks.)
            if held and not connection.is_closed():
                await connection.execute("SELECT pg_advisory_unlock($1)", key)
