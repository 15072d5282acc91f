"""A send whose answer was lost on the way back is never sent twice; one that never left is retried.

Against the real emulators over HTTP, on both transports and both databases: the platform
delivers the message and then the connection breaks half-way through its answer, or the answer
never comes before the client's read timeout — the message is in the person's chat once, the
row is *unknown*, nothing resends it, and the person's next message gets their question shown
again. The platform unreachable (the connection refused: nothing was written) is retried and
delivered once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import aiohttp
import pytest

from emulator_helpers import FakeClock
from test_chat_scenarios import arrive, emulators, has, running, settle
from test_outbox_failures import TELEGRAM_TOKEN, ZALO_TOKEN, one_round, outbox_rows
from test_outbox_failures import Platform as _Platform

from bot.network_failures import network_outcome
from bot.outbox import MaybeSent, OutboxSender, Pace, Transient
from storage import open_storage

AT = "2026-11-02T08:00:00+00:00"
#: The clients' whole-request timeout: short, so that a hanging answer ends the test soon.
CLIENT_TIMEOUT = 1


def Platform(channel: str) -> _Platform:  # noqa: N802 - used as the class it returns
    """test_outbox_failures' platform, with clients that give up after CLIENT_TIMEOUT."""
    return _Platform(channel, timeout=CLIENT_TIMEOUT)


def sender_at(storage, platform: _Platform, wall: dt.datetime, clock: FakeClock) -> OutboxSender:
    sender = OutboxSender(storage, platform.channel, "b", platform.transport, Pace(max_attempts=5), clock=clock)
    sender.wall = lambda: wall
    return sender


LOSSES = {
    "cut": lambda emulator: emulator.deliver_then_cut("sendMessage"),
    "timeout": lambda emulator: emulator.deliver_then_hang("sendMessage"),
    # The emulator's old reset: the answer cut half-way with nothing done. From the client's side it
    # is the same as "cut" (a 200 begun, then the connection gone), so it is unknown too.
    "cut-undelivered": lambda emulator: emulator.answer_next(
        "sendMessage", body=json.dumps({"ok": True, "result": {"message_id": 7}}), reset=True),
}


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
async def test_a_send_whose_answer_was_lost_is_unknown_and_never_sent_again(database, channel, loss):
    async with Platform(channel) as platform, await open_storage(database) as storage:
        LOSSES[loss](platform.emulator)
        await storage.enqueue([platform.message("Câu 1/10")], AT)
        clock, wall = FakeClock(), dt.datetime.fromisoformat(AT)
        await one_round(sender_at(storage, platform, wall, clock))
        [(state, attempts, error)] = await outbox_rows(storage)
        assert (state, attempts) == ("unknown", 1), (state, error)
        assert "maybe delivered" in error and TELEGRAM_TOKEN not in error and ZALO_TOKEN not in error, error
        # Later, and from a new sender (a restart): nothing sends it again.
        clock.advance(3600)
        await one_round(sender_at(storage, platform, wall + dt.timedelta(hours=1), clock))
        assert platform.send_requests() == 1
        assert platform.received("Câu 1/10") == (0 if loss == "cut-undelivered" else 1)
        assert [row[0] for row in await outbox_rows(storage)] == ["unknown"]


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
async def test_a_send_refused_before_anything_was_written_is_retried_and_delivered_once(database, channel):
    async with Platform(channel) as platform, await open_storage(database) as storage:
        await storage.enqueue([platform.message("Câu 1/10")], AT)
        clock, wall = FakeClock(), dt.datetime.fromisoformat(AT)
        await platform.emulator.go_offline()
        await one_round(sender_at(storage, platform, wall, clock))
        [(state, attempts, error)] = await outbox_rows(storage)
        assert (state, attempts) == ("pending", 1) and "not sent" in error, (state, error)
        await platform.emulator.come_back()
        [queued] = await storage.due_messages(channel, "b", "9999", 10)
        clock.advance(600)
        await one_round(sender_at(storage, platform, dt.datetime.fromisoformat(queued.not_before), clock))
        assert [row[0] for row in await outbox_rows(storage)] == ["sent"]
        assert platform.received("Câu 1/10") == 1 and platform.send_requests() == 1


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
async def test_a_question_whose_answer_was_cut_is_shown_again_on_the_next_message(tmp_path, database, channel):
    """Under ``khaosat run``: the next question reaches the person once, its answer is lost, and
    whatever they send next gets the question again (the path a crash mid-send takes)."""
    async with emulators(tmp_path, database) as bots:
        emulator = bots.telegram_emulator if channel == "telegram" else bots.zalo_emulator
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, channel, "P-cut", 7301)
            # The reply is a greeting, then the question: the question is the one whose answer is cut.
            emulator.deliver_then_cut("sendMessage", when=lambda params: "bao nhiêu tuổi" in str(params.get("text")))
            await user.send_text("1")
            await user.wait_for(has("bao nhiêu tuổi"))
            await settle(storage)
            assert (await storage.outbox_counts())["unknown"] == 1
            assert sum("bao nhiêu tuổi" in (m.text or "") for m in user.received) == 1  # once, not resent
            await user.send_text("ba")
            await user.wait_for(has("bao nhiêu tuổi"))
            await settle(storage)
            again = await storage._fetchall(  # noqa: SLF001 - which path sent it is the point
                "SELECT state FROM outbox WHERE respondent_id = ? AND dedupe_key LIKE '%:again#%'", (respondent_id,))
            assert [tuple(row) for row in again] == [("sent",)]


# -- the failures no emulator fault produces on loopback, classified as aiohttp raises them -------

URL = f"http://127.0.0.1:1/bot{TELEGRAM_TOKEN}/sendMessage"


@pytest.mark.parametrize(("error", "retried"), [
    (aiohttp.ClientOSError(32, f"Can not write request body for {URL}"), True),  # a request cut short
    (aiohttp.ConnectionTimeoutError(f"Connection timeout to host {URL}"), True),
    (aiohttp.ServerDisconnectedError(), False),  # it may have read and acted on the request
    (aiohttp.ClientOSError(104, "Connection reset by peer"), False),
    (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), False),
    (asyncio.TimeoutError(), False),  # aiohttp's total timeout does not say in which phase it fired
])
def test_only_a_request_that_cannot_have_reached_the_platform_is_retried(error, retried):
    outcome = network_outcome(error)
    assert isinstance(outcome, Transient if retried else MaybeSent), outcome
    assert TELEGRAM_TOKEN not in outcome.error, outcome.error
