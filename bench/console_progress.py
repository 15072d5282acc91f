"""Benchmark the console's Progress page against `khaosat status` on the same 100,000-member survey.

The database is bench/status.py's (built once with its bulk inserts: 100,000 sample members in 100
commune strata, their disposition histories, 75,000 sessions, 3,000,000 answers; migrated to the
console's schema when first opened). In one run, alternating, it times:

* ``khaosat status --format table`` end to end in a fresh process (what a coordinator runs);
* ``GET /surveys/<id>/progress`` from the running console (the full page: strata table, totals
  per province and commune, the completes-over-time chart), signed in as an admin (all 100
  strata) and as a coordinator limited to one commune.

Goal: the page under 3× the command. Run:

    python bench/console_progress.py                 # builds /tmp/khaosat-bench-status.sqlite if absent
    python bench/console_progress.py --runs 9
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.status import NOW, SURVEY, build, time_cli  # noqa: E402
from bot.config import ConsoleConfig  # noqa: E402
from storage import open_storage  # noqa: E402

PASSWORD = "bench-password-2026"


class Server:
    """The console on its own loop in a thread, as `khaosat serve` runs it (clock fixed at NOW)."""

    def __init__(self, db: Path):
        from console.server import start_console

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.storage = self.run(open_storage(db))
        self.console = self.run(start_console(ConsoleConfig(host="127.0.0.1", port=0), self.storage, db,
                                              clock=lambda: NOW))
        self.url = self.console.url.rstrip("/")

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def accounts(self) -> None:
        from console.accounts import create_account

        async def add(stores):
            for name, role, units in (("bench-admin", "admin", ()), ("bench-xa", "coordinator", ("xa-042",))):
                if await stores.accounts.account_by_username(name) is None:
                    await create_account(stores, name, PASSWORD, role=role, at=NOW.isoformat(), surveys=(SURVEY,),
                                         units=units)
        self.run(add(self.console.stores))

    def stop(self) -> None:
        self.run(self.console.stop())
        self.run(self.storage.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


async def signed_in(url: str, username: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await session.get(f"{url}/login")).text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with session.post(f"{url}/login", data={"csrf_token": token, "username": username, "password": PASSWORD},
                            allow_redirects=False) as response:
        assert response.status == 302, await response.text()
    return session


async def time_page(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    start = time.perf_counter()
    async with session.get(f"{url}/surveys/{SURVEY}/progress") as response:
        body = await response.read()
        assert response.status == 200, body[:500]
    return time.perf_counter() - start, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/khaosat-bench-status.sqlite"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.rebuild or not args.db.is_file():
        build(args.db)
    server = Server(args.db)
    server.accounts()
    loop = asyncio.new_event_loop()
    sessions = {name: loop.run_until_complete(signed_in(server.url, name)) for name in ("bench-admin", "bench-xa")}
    times: dict[str, list[float]] = {"khaosat status --format table (new process)": [],
                                     "progress page, admin (100 strata)": [],
                                     "progress page, one commune's coordinator": []}
    sizes = {}
    try:
        for name, session in sessions.items():  # warm: templates compiled, forms parsed
            loop.run_until_complete(time_page(session, server.url))
        for _ in range(args.runs):  # alternating, so that the machine's load falls on all alike
            times["khaosat status --format table (new process)"] += time_cli(args.db, "table", 1)
            for label, name in (("progress page, admin (100 strata)", "bench-admin"),
                                ("progress page, one commune's coordinator", "bench-xa")):
                elapsed, sizes[label] = loop.run_until_complete(time_page(sessions[name], server.url))
                times[label].append(elapsed)
    finally:
        for session in sessions.values():
            loop.run_until_complete(session.close())
        server.stop()
    status = statistics.median(times["khaosat status --format table (new process)"])
    for label, values in times.items():
        median = statistics.median(values)
        size = f"  {sizes[label] / 1000:.0f} kB" if label in sizes else ""
        print(f"{label:45s} median {median * 1000:7.1f} ms  min {min(values) * 1000:7.1f}  "
              f"max {max(values) * 1000:7.1f}  = {median / status:.2f}× status{size}")


if __name__ == "__main__":
    main()
