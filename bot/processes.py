"""Several ``khaosat run`` processes on one database: heartbeats, the outbox's shares, chat turns.

Every process registers itself (``storage/coordination.py``) and beats every
``HEARTBEAT_SECONDS``; it counts as gone ``PROCESS_LEASE_SECONDS`` after its last beat.

**Outbox: who sends which row.** Any process may send any row of the bots it runs: a row is
claimed with ``Storage.claim_message`` (pending → sending, by this process, until the outbox's
send lease ends), which only one claimer wins and which refuses a row while another
message of its chat is in flight (order per chat, across processes). To keep claims from colliding
and a chat's messages on one process (its per-chat rate is then kept by one token bucket), the live
processes of a bot split its chats by a stable hash (``Share.owns``), recomputed at every beat (a
dead process's chats move to the others once its lease lapses); a row pending longer than the
outbox's steal delay (both in ``bot/outbox.py``) is anyone's, in case a live owner's sender is stuck. A
process that dies mid-send leaves its row in *sending*; once the row's lease has passed and the
process's heartbeat has lapsed, any live process turns it into *unknown* (``recover_abandoned``):
never resent, as after a crash, and the person's question is shown again.

**The per-bot rate, shared.** Each live process sending for a bot sends at ``1/n`` of the bot's
rate, ``n`` read from the heartbeats. Chosen over a table of per-second send slots because it
costs no write per message (slots would be one more contended write for every message, on one
hot row per bot, across all processes). Its price: a process whose chats have nothing to send
leaves its share unused while another's chats queue, so a bot's chats are split evenly by hash
and the slack is at most one process's share for as long as the load is uneven. A newcomer sends
nothing until its peers have seen it (two beats), so the shares never add up to more than the
rate; a process that dies leaves its share unused until its lease lapses.

**Chat turns.** With webhooks behind a load balancer two processes may receive updates of one
chat; with ``[process] shared_chats = true`` the chat core takes a lease on the chat
(``SharedChatLocks``) around each update, so they are handled one at a time. (Polling splits
updates per bot: one process polls a bot, and the in-process ``ChatLocks`` suffice.) Event keys and
the session's revision still make a redelivered update change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import zlib
from dataclasses import dataclass
from typing import Awaitable, Callable

from bot.chat.surveys import ChatLocks
from aiohttp import web

from storage import Storage

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
PROCESS_LEASE_SECONDS = 5.0
#: A chat's turn lapses after this long even if its holder still beats (an update stuck that
#: long); a killed holder's turn is free as soon as its heartbeat lapses.
CHAT_TURN_SECONDS = 30.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def default_process_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def bot_key(channel: str, bot: str) -> str:
    return f"{channel}/{bot}"


@dataclass(frozen=True)
class Share:
    """This process's part of one bot's sending: its place among the bot's live senders."""

    index: int = 0
    count: int = 1
    #: False until the peers have seen this process (it then sends nothing).
    sending: bool = True

    def owns(self, chat_id: str) -> bool:
        return self.count <= 1 or zlib.crc32(chat_id.encode()) % self.count == self.index


class Peers:
    """This process among the live ``khaosat run`` processes on the database."""

    def __init__(self, storage: Storage, bots: list[str], name: str | None = None, *,
                 wall: Callable[[], dt.datetime] = utc_now):
        self.storage = storage
        self.bots = bots
        self.name = name or default_process_name()
        self.id = f"{self.name}:{secrets.token_hex(4)}"
        self.wall = wall
        self.started_at: dt.datetime | None = None
        self.shares: dict[str, Share] = {}
        self.beats = 0
        self.recovered = 0

    def share(self, key: str) -> Share:
        return self.shares.get(key, Share(sending=self.beats > 0))

    async def beat(self) -> None:
        """Renew this process's lease and read who else is alive; recompute the shares."""
        now = self.wall()
        if self.started_at is None:
            self.started_at = now
        await self.storage.heartbeat(self.id, self.name, self.bots, now.isoformat(),
                                     (now + dt.timedelta(seconds=PROCESS_LEASE_SECONDS)).isoformat())
        live = await self.storage.live_processes(now.isoformat())
        settled = now - self.started_at >= dt.timedelta(seconds=2 * HEARTBEAT_SECONDS)
        shares = {}
        for key in self.bots:
            senders = [p.id for p in live if key in p.bots]
            if self.id not in senders:  # our own row not read back (clock skew): alone for now
                senders = [self.id]
            shares[key] = Share(senders.index(self.id), len(senders), settled or len(senders) == 1)
        if shares != self.shares and self.beats:
            log.info("senders now %s", ", ".join(f"{k}: {s.index + 1} of {s.count}" for k, s in shares.items()))
        self.shares = shares
        self.beats += 1

    async def run(self, stop: asyncio.Event, on_recovered: Callable[[], Awaitable[None]]) -> None:
        """Beat until ``stop``; recover the outbox rows of processes that are gone meanwhile."""
        while not stop.is_set():
            try:
                await self.beat()
                recovered = await self.storage.recover_abandoned(self.wall().isoformat())
                if recovered:
                    self.recovered += recovered
                    log.warning("%d message(s) were being sent by a process that is gone; marked unknown, not resent",
                                recovered)
                    await on_recovered()
            except Exception:  # noqa: BLE001 - a failed beat is tried again; three in a row and peers count us gone
                log.exception("heartbeat failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
        with contextlib.suppress(Exception):
            await self.storage.leave(self.id)


class _ChatTurn:
    def __init__(self, locks: SharedChatLocks, chat_id: str):
        self.locks = locks
        self.chat_id = chat_id
        self.local = locks.local[chat_id]
        self.name = f"chat:{locks.channel}:{locks.bot}:{chat_id}"

    async def __aenter__(self) -> None:
        await self.local.acquire()
        try:
            pause = 0.005
            while not await self.locks.storage.take_lease(
                    self.name, self.locks.holder, (now := utc_now()).isoformat(),
                    (now + dt.timedelta(seconds=CHAT_TURN_SECONDS)).isoformat()):
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.1)
        except BaseException:
            self.local.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.locks.storage.release_lease(self.name, self.locks.holder)
        finally:
            self.local.release()


class SharedChatLocks:
    """``ChatLocks`` across processes: a chat's update is handled by one process at a time.

    In the process, the chat's ``asyncio.Lock`` (updates wait in order, no database write while
    they wait); then a lease on the chat in the database, taken with backoff and given up after
    the update. A process killed mid-update holds the chat until its heartbeat lapses
(``PROCESS_LEASE_SECONDS``).
    """

    def __init__(self, storage: Storage, holder: str, channel: str, bot: str):
        self.storage = storage
        self.holder = holder
        self.channel = channel
        self.bot = bot
        self.local = ChatLocks()

    def __getitem__(self, chat_id: str) -> _ChatTurn:
        return _ChatTurn(self, chat_id)

    def __len__(self) -> int:
        return len(self.local)


async def serve_health(address: str, peers: Peers, storage: Storage, started: Callable[[], bool]) -> web.AppRunner:
    """/healthz: the process answers (its event loop runs). /readyz: the database answers within
    two seconds and every bot has started; 503 otherwise. Both JSON, with the process's name."""

    def body(**fields: object) -> dict[str, object]:
        return {"process": peers.name, "pid": os.getpid(), "id": peers.id, **fields}

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(body(status="alive"))

    async def readyz(request: web.Request) -> web.Response:
        problems = []
        try:
            live = await asyncio.wait_for(storage.live_processes(utc_now().isoformat()), 2.0)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", said in the answer
            live = []
            problems.append(f"database: {type(error).__name__}: {error}".rstrip(": "))
        if not started():
            problems.append("bots: starting")
        status = 200 if not problems else 503
        return web.json_response(body(status="ready" if status == 200 else "not ready", problems=problems,
                                      live_processes=len(live)), status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    await web.TCPSite(runner, host, int(port)).start()
    return runner
