"""The durable, paced outbox: every message a bot sends goes through the database.

Handlers only enqueue (in the same transaction as the answer they reply to); one sender per
bot drains the queue within the platform's limits. Replies to people who are answering
(priority 0) go before bulk sends such as reminders (priority 10). Messages to one chat
leave in order, one at a time; different chats are sent concurrently, because a real Bot
API round trip from Vietnam takes a tenth of a second or more.

Several processes may send for one bot (``bot/processes.py``): each row is claimed by one of
them (``Storage.claim_message``, with a lease), a chat's messages leave one at a time whichever
process sends them, each process sends at its share of the bot's rate and first looks at the
chats that hash to it (``share``).

Reminders are not put in the outbox by the pass that decides them: they wait queued in the
database, and a sender given a ``feed`` (``bot.reminders.ReminderFeed``) asks it for more
whenever fewer than two seconds' worth of bulk messages (at its rate) are pending, so they are
rendered just before they leave and flow at the bot's pace behind the replies. The sender only
calls the feed; what to hand over, and the SQL, are the feed's and the storage's.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import socket
import time
from typing import Any, Awaitable, Callable, Protocol

from storage import QueuedMessage, Storage

log = logging.getLogger(__name__)

REPLY = 0
#: Replies to what could not be used (junk, a wrong code, an unclear answer): behind real answers'
#: replies, ahead of bulk sends, and coalesced (one pending per chat), so a chat sending junk
#: neither waits minutes for its next question nor delays everyone else's replies.
ERROR_REPLY = 5
BULK = 10

#: The platform counts requests as they arrive, which is a few milliseconds after we send them
#: and not always the same few: the per-chat rate runs this much under the configured one...
_SAFETY = 0.98
#: ...and the per-bot window is this much longer than a second (30 in 1.03 s is 97% of 30/s).
_WINDOW_MARGIN = 0.03
#: Pending messages read per look at the queue.
_LOOK_AHEAD = 200
#: The feed is asked for this many seconds' worth of bulk messages (at the bot's rate) whenever
#: fewer than that many are pending: enough that the bot never waits for a hand-over, few enough
#: that a text is seconds old when it leaves, and one hand-over (a write) per that many seconds.
_FEED_SECONDS = 2.0

#: A feed that keeps failing (a locked or full disk, say) is logged with its traceback once, then
#: at most this often, so that the log still shows the replies going out around it.
_FEED_FAILURE_LOG_SECONDS = 60.0


# -- what a transport reports ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sent:
    result: Any = None


@dataclasses.dataclass(frozen=True)
class RetryAfter:
    seconds: float


@dataclasses.dataclass(frozen=True)
class Blocked:
    """The person blocked the bot (Telegram 403): nothing more can reach them."""

    error: str


@dataclasses.dataclass(frozen=True)
class Transient:
    """A network or server error: worth trying again later."""

    error: str


@dataclasses.dataclass(frozen=True)
class MaybeSent:
    """The request reached the platform, or may have, and its answer was lost (cut half-way, the
    connection dropped, a read timeout): the message is probably in the person's chat. Never
    resent (the platforms have no idempotency key): the row becomes *unknown*, as after a crash
    mid-send, and the person is shown their question again on their next message
    (``bot/network_failures.py`` says which failures are which)."""

    error: str


@dataclasses.dataclass(frozen=True)
class Rejected:
    """The platform refused this message for good (a 400): retrying cannot help."""

    error: str


@dataclasses.dataclass(frozen=True)
class Unauthorized:
    """The platform refused the bot's token (401, or 404 for a token it does not know): the
    problem is the bot's, not the message's, so the whole sender pauses before trying again."""

    error: str


Outcome = Sent | RetryAfter | Blocked | Transient | MaybeSent | Rejected | Unauthorized


class Transport(Protocol):
    async def send(self, method: str, payload: dict[str, Any]) -> Outcome: ...


#: Adds up to ``room`` bulk messages of the sender's bot to the outbox; returns how many it added.
Feed = Callable[[int], Awaitable[int]]

#: How long a claimed message is this process's to send: a process that dies mid-send leaves it
#: in "sending", and once this has passed and its heartbeat has lapsed it becomes "unknown".
SEND_LEASE_SECONDS = 10.0
#: A message of a chat another process owns is anyone's once it has waited this long. The owners
#: are recomputed at every heartbeat (a dead process's chats move once its lease lapses), so this
#: is only a safety net for a live owner whose sender is stuck; short, it would let two processes'
#: per-chat buckets send to one chat at once.
STEAL_AFTER_SECONDS = 30.0
#: How often a sender with peers looks at the queue when nothing woke it: a reply enqueued by
#: another process reaches this one's queue only through the database.
_PEER_POLL_SECONDS = 0.1
#: Of a bot's rate, what several processes sending for it take between them (``_apply_share``).
_PEERS_SHARE = 0.95


# -- rate limits -------------------------------------------------------------------------------


class SlidingWindow:
    """At most `count` events in any `window` seconds: the rule the platform enforces per bot."""

    def __init__(self, count: int, window: float, clock: Callable[[], float]):
        self.count = max(1, count)
        self.window = window
        self.clock = clock
        self.times: collections.deque[float] = collections.deque()

    def delay(self) -> float:
        now = self.clock()
        while self.times and now - self.times[0] >= self.window:
            self.times.popleft()
        if len(self.times) < self.count:
            return 0.0
        return self.window - (now - self.times[0])

    def take(self) -> None:
        self.times.append(self.clock())


class TokenBucket:
    """`rate` per second sustained, `burst` at once: the per-chat rule."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]):
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.at = clock()

    def delay(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclasses.dataclass(frozen=True)
class Pace:
    per_second: float = 30.0
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    max_in_flight: int = 16
    max_attempts: int = 8


@dataclasses.dataclass
class OutboxStats:
    sent: int = 0
    retry_after: int = 0
    blocked: int = 0
    transient: int = 0
    rejected: int = 0
    unauthorized: int = 0
    maybe_sent: int = 0


def feed_room(pace: Pace) -> int:
    """How many bulk messages a sender asks its feed for, and the fewest pending before it asks again."""
    return max(1, min(_LOOK_AHEAD, math.ceil(_FEED_SECONDS * pace.per_second)))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class OutboxSender:
    def __init__(self, storage: Storage, channel: str, bot: str, transport: Transport, pace: Pace = Pace(), *,
                 on_blocked: Callable[[QueuedMessage], Awaitable[None]] | None = None, feed: Feed | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], dt.datetime] = utc_now,
                 holder: str | None = None, share: Callable[[], Any] | None = None):
        self.storage = storage
        self.channel = channel
        self.bot = bot
        self.transport = transport
        self.pace = pace
        self.on_blocked = on_blocked
        self.feed = feed
        self.feed_room = feed_room(pace)
        self.clock = clock
        self.wall = wall
        self.stats = OutboxStats()
        #: Who claims the rows this sender sends (the process's id among its peers).
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}"
        #: This process's ``bot.processes.Share`` of the bot (None: the only sender).
        self.share = share
        self._count = 1
        # Two views of the per-bot limit: `_planned` paces how fast sends are started (in priority
        # order), `_on_wire` is checked just before each request leaves, after the database write
        # that precedes it, so that a slow commit cannot bunch requests together.
        self._planned = SlidingWindow(max(1, int(pace.per_second)), 1.0, clock)
        self._on_wire = SlidingWindow(max(1, int(pace.per_second)), 1.0 + _WINDOW_MARGIN, clock)
        self._per_chat: dict[str, TokenBucket] = {}
        self._busy_chats: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._paused_until = 0.0
        self._wake = asyncio.Event()
        self._feed_failures = 0
        self._feed_failure_logged = 0.0

    def wake(self) -> None:
        """Something was enqueued: look at the queue now rather than at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        recovered = await self.storage.recover_abandoned(self.wall().isoformat())
        if recovered:
            log.warning("%s/%s: %d message(s) were being sent at a crash; not resent", self.channel,
                        self.bot, recovered)
        while not stop.is_set():
            wait = await self.pump()
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            idle = 0.5 if self._count <= 1 else _PEER_POLL_SECONDS
            await asyncio.wait({waiter, stopper}, timeout=idle if wait is None else max(wait, 0.001),
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Wait for the sends already started (used at shutdown and by tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def pump(self) -> float | None:
        """Start every send the limits allow now; returns how long until the next could start."""
        now = self.clock()
        if self._paused_until > now:
            return self._paused_until - now
        share = self.share() if self.share is not None else None
        if share is not None and not self._apply_share(share):
            return 0.5
        due = await self._due()
        if self.feed is not None and await self._top_up(due):
            due = await self._due()
        # A send in flight while this pump read and asked its feed may have been refused (429)
        # meanwhile: the pause holds for what this pump read too (the refused row itself the
        # claim keeps back, as it is not due again before its retry_after).
        if self._paused_until > (now := self.clock()):
            return self._paused_until - now
        if not due:
            return None
        next_wait: float | None = None
        held: set[str] = set()
        # A reply held only because its chat's previous message is still in flight will be free
        # within one round trip; bulk sends must not take the bot's budget from it meanwhile.
        waiting_priority: int | None = None
        for message in due:
            chat = message.chat_id
            if share is not None and not share.owns(chat) and not self._stale(message):
                continue  # another process's chat, for now
            if waiting_priority is not None and message.priority > waiting_priority:
                break
            if chat in self._busy_chats or chat in held:
                if chat in self._busy_chats and waiting_priority is None:
                    waiting_priority = message.priority
                held.add(chat)  # later messages of this chat wait for the earlier one: order per chat
                continue
            bucket = self._per_chat.setdefault(chat, TokenBucket(
                self.pace.per_chat_per_second * _SAFETY, self.pace.per_chat_burst, self.clock))
            chat_wait = bucket.delay()
            if chat_wait > 0:
                held.add(chat)
                next_wait = chat_wait if next_wait is None else min(next_wait, chat_wait)
                continue
            bot_wait = self._planned.delay()
            if bot_wait > 0 or len(self._tasks) >= self.pace.max_in_flight:
                return bot_wait or 0.005
            self._planned.take()
            self._busy_chats.add(chat)
            held.add(chat)
            task = asyncio.create_task(self._send(message, bucket))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return next_wait if next_wait is not None else (0.0 if len(due) == _LOOK_AHEAD else None)

    def _apply_share(self, share: Any) -> bool:
        """Pace at this process's share of the bot's rate; False while it must not send yet."""
        if share.count != self._count:
            self._count = share.count
            # Each process's requests reach the platform with delays of their own, which one
            # process's window margin cannot see: several take 1/n of 95% of the rate between them.
            rate = self.pace.per_second * (_PEERS_SHARE if share.count > 1 else 1.0)
            self._planned.count = self._on_wire.count = max(1, int(rate / share.count))
        return share.sending

    def _stale(self, message: QueuedMessage) -> bool:
        try:
            waited = self.wall() - dt.datetime.fromisoformat(message.created_at)
        except (TypeError, ValueError):
            return True
        return waited >= dt.timedelta(seconds=STEAL_AFTER_SECONDS)

    async def _due(self) -> list[QueuedMessage]:
        return await self.storage.due_messages(self.channel, self.bot, self.wall().isoformat(), _LOOK_AHEAD)

    async def _top_up(self, due: list[QueuedMessage]) -> int:
        """Ask the feed for more bulk messages if few are pending; returns how many it added.

        A full look-ahead means replies enough for several seconds wait: the feed is not asked
        then, and reminders keep waiting where they are. A failing feed is logged and asked
        again at the next pump: it must not stop the replies."""
        if len(due) >= _LOOK_AHEAD or sum(1 for message in due if message.priority >= BULK) >= self.feed_room:
            return 0
        try:
            added = await self.feed(self.feed_room)
        except Exception as error:  # noqa: BLE001
            self._feed_failed(error)
            return 0
        if self._feed_failures:
            log.warning("%s/%s: handing queued reminders over works again after %d failure(s)", self.channel,
                        self.bot, self._feed_failures)
            self._feed_failures = 0
        return added

    def _feed_failed(self, error: Exception) -> None:
        self._feed_failures += 1
        now = self.clock()
        if self._feed_failures == 1:
            self._feed_failure_logged = now
            log.exception("%s/%s: handing queued reminders over failed; replies still go out, reminders wait",
                          self.channel, self.bot)
        elif now - self._feed_failure_logged >= _FEED_FAILURE_LOG_SECONDS:
            self._feed_failure_logged = now
            log.error("%s/%s: handing queued reminders over still fails (%d times so far): %s", self.channel,
                      self.bot, self._feed_failures, error)

    async def _send(self, message: QueuedMessage, chat_bucket: TokenBucket) -> None:
        try:
            await self._send_one(message, chat_bucket)
        except Exception:  # noqa: BLE001 - a task's exception nobody awaits would only say "never retrieved"
            # Only a storage failure gets here (every transport answer is an outcome): the message
            # stays where the database has it, and a restart recovers a *sending* one as unknown.
            log.exception("%s/%s: message %d to chat %s: recording its outcome failed", self.channel,
                          self.bot, message.id, message.chat_id)
        finally:
            self._busy_chats.discard(message.chat_id)
            self._wake.set()

    async def _send_one(self, message: QueuedMessage, chat_bucket: TokenBucket) -> None:
        storage = self.storage
        at = self.wall()
        lease = (at + dt.timedelta(seconds=SEND_LEASE_SECONDS)).isoformat()
        if not await storage.claim_message(message, self.holder, at.isoformat(), lease):
            return  # no longer pending since it was read (withdrawn, sent by another process, or
            # put back for a later retry), or another message of its chat is in flight from another
            # process: the next pump sees
        # Only this task sends to this chat now, so checking and taking cannot race.
        while (wait := max(chat_bucket.delay(), self._on_wire.delay())) > 0:
            await asyncio.sleep(wait)
        chat_bucket.take()
        self._on_wire.take()
        outcome = await self._outcome(message)
        at = self.wall()
        backoff = min(300.0, 2.0 ** message.attempts)
        retry_at = (at + dt.timedelta(seconds=backoff)).isoformat()
        may_retry = message.attempts + 1 < self.pace.max_attempts
        match outcome:
            case Sent(result):
                self.stats.sent += 1
                await storage.mark_sent(message.id, at.isoformat(),
                                        None if result is None else json.dumps(result, ensure_ascii=False))
            case RetryAfter(seconds):
                # The limit is per bot: every chat waits, not just this one.
                self.stats.retry_after += 1
                self._paused_until = max(self._paused_until, self.clock() + seconds)
                await storage.mark_retry(message.id, at.isoformat(),
                                         (at + dt.timedelta(seconds=seconds)).isoformat(), "429")
            case Blocked(error):
                self.stats.blocked += 1
                await storage.mark_failed(message.id, at.isoformat(), error)
                if self.on_blocked is not None:
                    await self.on_blocked(message)
            case Unauthorized(error) if may_retry:
                # Every other message of this bot would be refused the same way: they all wait.
                self.stats.unauthorized += 1
                self._paused_until = max(self._paused_until, self.clock() + backoff)
                log.error("%s/%s: the platform refused the bot's token (%s); sending paused for %.0f s",
                          self.channel, self.bot, error, backoff)
                await storage.mark_retry(message.id, at.isoformat(), retry_at, error)
            case MaybeSent(error):
                self.stats.maybe_sent += 1
                log.warning("%s/%s: message %d to chat %s may have been delivered (%s); marked unknown, not resent",
                            self.channel, self.bot, message.id, message.chat_id, error)
                await storage.mark_unknown(message.id, at.isoformat(), error)
            case Transient(error) if may_retry:
                self.stats.transient += 1
                await storage.mark_retry(message.id, at.isoformat(), retry_at, error)
            case Transient(error) | Rejected(error) | Unauthorized(error):
                self.stats.rejected += 1
                log.error("%s/%s: message %d to chat %s dropped: %s", self.channel, self.bot, message.id,
                          message.chat_id, error)
                await storage.mark_failed(message.id, at.isoformat(), error)

    async def _outcome(self, message: QueuedMessage) -> Outcome:
        """The transport's outcome; an exception it did not classify (a bug, a library's surprise)
        becomes a transient failure with its reason, so the message is retried a bounded number of
        times and then failed, never left in *sending*."""
        try:
            return await self.transport.send(message.method, json.loads(message.payload))
        except Exception as error:  # noqa: BLE001
            log.exception("%s/%s: sending message %d raised instead of reporting an outcome", self.channel,
                          self.bot, message.id)
            return Transient(f"{type(error).__name__}: {error}")
