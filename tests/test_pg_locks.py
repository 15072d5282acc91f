"""One process at a time on PostgreSQL (storage/pg_locks.py): two sessions never both hold the
lock, a waiting one gets it when the holder is done, and a holder killed with -9 frees it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg

from storage.pg_locks import REMINDER_PASS, lock_key, one_at_a_time

ROOT = Path(__file__).resolve().parents[1]


async def test_two_connections_never_hold_the_lock_at_once(postgresql_url):
    first, second = [await asyncpg.create_pool(postgresql_url, min_size=1, max_size=2) for _ in range(2)]
    try:
        async with one_at_a_time(first, REMINDER_PASS) as mine:
            assert mine
            async with one_at_a_time(second, REMINDER_PASS) as theirs:
                assert not theirs
            async with one_at_a_time(second, "another task") as other:
                assert other  # locks by name: another task is not blocked
        async with one_at_a_time(second, REMINDER_PASS) as theirs:
            assert theirs  # released at the end of the first block
            async with one_at_a_time(first, REMINDER_PASS) as mine:
                assert not mine
    finally:
        await first.close()
        await second.close()


async def test_a_waiting_process_gets_the_lock_when_the_holder_is_done(postgresql_url):
    first, second = [await asyncpg.create_pool(postgresql_url, min_size=1, max_size=2) for _ in range(2)]
    order: list[str] = []
    holding = asyncio.Event()
    try:
        async def holder():
            async with one_at_a_time(first, REMINDER_PASS):
                holding.set()
                # Done only once the other is seen waiting on the server for this very lock.
                while not await first.fetchval(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
                    await asyncio.sleep(0.01)
                order.append("first done")

        async def waiter():
            await holding.wait()
            async with one_at_a_time(second, REMINDER_PASS, wait=True) as mine:
                assert mine
                order.append("second in")

        await asyncio.wait_for(asyncio.gather(holder(), waiter()), 60)  # a hang guard, not a timing goal
        assert order == ["first done", "second in"]
    finally:
        await first.close()
        await second.close()


async def test_a_holder_killed_with_sigkill_frees_the_lock(postgresql_url):
    script = textwrap.dedent(f"""
        import asyncio, sys, asyncpg
        async def main():
            connection = await asyncpg.connect({postgresql_url!r})
            assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", {lock_key(REMINDER_PASS)})
            print("held", flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pool = await asyncpg.create_pool(postgresql_url, min_size=1, max_size=1)
    try:
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == "held"
        async with one_at_a_time(pool, REMINDER_PASS) as mine:
            assert not mine
        child.kill()
        child.wait()
        async with one_at_a_time(pool, REMINDER_PASS, wait=True) as mine:  # the server freed it
            assert mine
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        await pool.close()
