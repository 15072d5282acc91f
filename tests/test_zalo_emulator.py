"""The local Zalo Bot Platform emulator, driven over real HTTP with a plain aiohttp client.

Rate limits use a fake clock; the long-poll tests wait at most a fraction of a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from emulator_helpers import FakeClock, failing_once_webhook, post_json, serving

from bot.zalo.emulator import (
    CHAT_NOT_STARTED,
    SECRET_HEADER,
    USER_BLOCKED,
    WEBHOOK_ACTIVE,
    EmulatedZaloBot,
    ZaloBotApiEmulator,
    ZaloLimits,
)

TOKEN = "3185630915094462771:pLkQxVbZtRsWnMcJhGfDaEyUoIqTlKr"
VIETNAMESE = "Ông/bà hài lòng với thái độ của công chức tiếp nhận hồ sơ không? "  # 65 characters


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock):
    async with serving(ZaloBotApiEmulator(clock=clock)) as emulator:
        yield emulator


@pytest.fixture
def account(emulator: ZaloBotApiEmulator) -> EmulatedZaloBot:
    return emulator.add_bot(TOKEN, "Khảo sát CCHC")


@pytest.fixture
async def api(emulator: ZaloBotApiEmulator):
    """``await api(method, **params)`` -> (HTTP status, JSON body), POSTed as JSON like the platform wants."""
    async with aiohttp.ClientSession() as session:
        async def call(method: str, token: str = TOKEN, **params: Any) -> tuple[int, dict[str, Any]]:
            return await post_json(session, emulator.base_url, token, method, params)

        call.session = session  # type: ignore[attr-defined]
        yield call


def error(body: dict[str, Any]) -> tuple[int, str]:
    assert body["ok"] is False
    return body["error_code"], body["description"]


async def test_get_me_by_post_and_get_and_unknown_token(emulator: ZaloBotApiEmulator, account, api):
    status, body = await api("getMe")
    assert status == 200 and body == {"ok": True, "result": {
        "id": "3185630915094462771", "account_name": "Khảo sát CCHC", "account_type": "BASIC",
        "can_join_groups": False}}
    async with api.session.get(f"{emulator.base_url}/bot{TOKEN}/getMe") as response:
        assert (await response.json())["result"]["account_name"] == "Khảo sát CCHC"
    status, body = await api("getMe", token="1:wrong")
    assert status == 401 and error(body) == (401, "Unauthorized")
    assert emulator.violations == []


async def test_long_poll_returns_a_new_message_and_408_after_the_timeout(account: EmulatedZaloBot, api):
    user = account.user(display_name="Nguyễn Thị Lan")
    assert len(user.id) == 20 and int(user.id, 16) >= 0
    poll = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.05)  # parked in the emulator
    began = time.monotonic()
    message_id = await user.send_text("Xin chào")
    status, body = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - began < 1
    update = body["result"]
    assert status == 200 and isinstance(update, dict)  # one update, not a list
    assert update["event_name"] == "message.text.received"
    message = update["message"]
    assert message["message_id"] == message_id and isinstance(message_id, str)
    assert message["text"] == "Xin chào"
    assert message["from"] == {"id": user.id, "display_name": "Nguyễn Thị Lan", "is_bot": False}
    assert message["chat"] == {"id": user.id, "chat_type": "PRIVATE"}
    assert isinstance(message["date"], int) and abs(message["date"] - time.time() * 1000) < 5000

    for timeout in (0.2, "0.2"):  # fractional seconds, as a number or as text
        began = time.monotonic()
        status, body = await api("getUpdates", timeout=timeout)
        assert status == 408 and error(body) == (408, "Request timeout")
        assert 0.18 <= time.monotonic() - began < 1


async def test_one_update_per_call_in_order(account: EmulatedZaloBot, api):
    user, other = account.user(), account.user(display_name="Minh")
    ids = [await user.send_text("một"), await other.send_text("hai"), await user.send_sticker(),
           await user.send_photo("https://example.org/a.jpg", caption="giấy hẹn")]
    got = [(await api("getUpdates", timeout=0))[1]["result"] for _ in ids]
    assert [u["message"]["message_id"] for u in got] == ids
    assert [u["event_name"] for u in got] == ["message.text.received", "message.text.received",
                                             "message.sticker.received", "message.image.received"]
    assert got[1]["message"]["from"]["id"] == other.id
    assert got[2]["message"]["sticker"] and got[3]["message"]["photo"] == "https://example.org/a.jpg"
    assert (await api("getUpdates", timeout=0))[0] == 408
    assert account.stats.updates_delivered == 4 and account.stats.duplicates == 0


async def test_redeliver_hands_the_same_message_out_again(account: EmulatedZaloBot, api):
    user = account.user()
    message_id = await user.send_text("1")
    first = (await api("getUpdates", timeout=0))[1]["result"]
    assert (await api("getUpdates", timeout=0))[0] == 408
    await account.redeliver(message_id)
    again = (await api("getUpdates", timeout=0))[1]["result"]
    assert again == first
    assert (await api("getUpdates", timeout=0))[0] == 408
    assert account.stats.duplicates == 1
    with pytest.raises(LookupError):
        await account.redeliver("no-such-message")


async def test_spontaneous_duplicates_give_each_message_twice(emulator: ZaloBotApiEmulator,
                                                              account: EmulatedZaloBot, api):
    emulator.duplicate_probability = 1.0
    user = account.user()
    ids = [await user.send_text("a"), await user.send_text("b")]
    got = []
    while (answer := await api("getUpdates", timeout=0))[0] == 200:
        got.append(answer[1]["result"]["message"]["message_id"])
    assert Counter(got) == {ids[0]: 2, ids[1]: 2}  # duplicates are not duplicated again
    assert got[:2] == ids  # a duplicate comes later, after what was already waiting


@pytest.fixture
async def webhook_server():
    """A local webhook that fails its first delivery, then records (body, secret header) in order."""
    async with failing_once_webhook("/zalo", SECRET_HEADER, lambda body: {"ok": True}) as server:
        yield server


async def test_webhook_delivery_with_secret_and_no_polling_meanwhile(account: EmulatedZaloBot, api, webhook_server):
    url, received = webhook_server
    user = account.user()
    assert error((await api("setWebhook", url=url, secret_token="short"))[1]) == (
        400, "secret_token must be 8-256 characters")
    assert error((await api("setWebhook", url="http://example.org/zalo", secret_token="s3cr3t-Token"))[1])[0] == 400
    parked = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.05)

    status, body = await api("setWebhook", url=url, secret_token="s3cr3t-Token")
    assert status == 200 and body["result"]["url"] == url
    assert error((await asyncio.wait_for(parked, 2))[1]) == (409, WEBHOOK_ACTIVE)  # a waiting poll ends
    assert error((await api("getUpdates", timeout=0))[1]) == (409, WEBHOOK_ACTIVE)
    info = (await api("getWebhookInfo"))[1]["result"]
    assert info["url"] == url and isinstance(info["updated_at"], int)

    ids = [await user.send_text("một"), await user.send_text("hai")]
    got = [await asyncio.wait_for(received.get(), 3) for _ in ids]
    assert [body["result"]["message"]["message_id"] for body, _ in got] == ids  # first POST failed, order kept
    assert all(body["ok"] is True and body["result"]["event_name"] == "message.text.received" for body, _ in got)
    assert {secret for _, secret in got} == {"s3cr3t-Token"}
    assert account.webhook_errors == ["webhook answered 500 Internal Server Error"]

    assert (await api("deleteWebhook"))[0] == 200
    assert (await api("getWebhookInfo"))[1]["result"]["url"] == ""
    later = await user.send_text("ba")
    assert (await api("getUpdates", timeout=0))[1]["result"]["message"]["message_id"] == later


async def test_send_message_text_limit_and_other_sends(account: EmulatedZaloBot, api):
    user = account.user()
    await user.send_text("hi")
    status, body = await api("sendMessage", chat_id=user.id, text="x" * 2001)
    assert status == 400 and error(body) == (400, "text too long")
    status, body = await api("sendMessage", chat_id=user.id, text=VIETNAMESE * 30 + "x" * 50)  # 2000 characters
    assert status == 200 and set(body["result"]) == {"message_id", "date"}
    assert user.received[-1].text.startswith("Ông/bà") and user.received[-1].kind == "text"
    assert user.received[-1].message_id == body["result"]["message_id"]
    assert (await api("sendMessage", chat_id=user.id, text=" "))[0] == 400

    assert (await api("sendPhoto", chat_id=user.id, photo="https://example.org/qr.png", caption="Mã QR"))[0] == 200
    assert (await api("sendSticker", chat_id=user.id, sticker="abc123"))[0] == 200
    assert (await api("sendChatAction", chat_id=user.id, action="typing"))[1] == {"ok": True, "result": True}
    assert (await api("sendChatAction", chat_id=user.id, action="dancing"))[0] == 400
    assert (await api("sendPhoto", chat_id=user.id, photo="qr.png"))[0] == 400
    assert [(m.kind, m.photo, m.caption, m.sticker) for m in user.received[1:]] == [
        ("photo", "https://example.org/qr.png", "Mã QR", None), ("sticker", None, None, "abc123")]
    assert user.chat_actions == ["typing"]
    assert account.stats.sent == 3 and account.stats.bad_requests == 4


async def test_the_bot_cannot_write_first_nor_to_someone_who_blocked_it(account: EmulatedZaloBot, api):
    silent = account.user()  # exists, but never wrote
    for chat_id in (silent.id, "0123456789abcdef0123"):
        status, body = await api("sendMessage", chat_id=chat_id, text="Mời tham gia khảo sát")
        assert status == 403 and error(body) == (403, CHAT_NOT_STARTED)

    user = account.user()
    await user.send_text("chào")
    user.block()
    status, body = await api("sendMessage", chat_id=user.id, text="Câu 1")
    assert status == 403 and error(body) == (403, USER_BLOCKED)
    assert (await api("sendChatAction", chat_id=user.id, action="typing"))[0] == 403
    with pytest.raises(RuntimeError, match="blocked"):
        await user.send_text("x")
    user.unblock()
    assert (await api("sendMessage", chat_id=user.id, text="Câu 1"))[0] == 200
    assert account.stats.forbidden == 4 and account.stats.sent == 1


async def test_rate_limits_answer_429_with_retry_after(account: EmulatedZaloBot, api, clock: FakeClock):
    user = account.user()
    await user.send_text("chào")
    for _ in range(3):  # the default burst per chat
        assert (await api("sendMessage", chat_id=user.id, text="ok"))[0] == 200
    status, body = await api("sendMessage", chat_id=user.id, text="too fast")
    assert status == 429 and body == {"ok": False, "error_code": 429, "description": "Too many requests",
                                      "parameters": {"retry_after": 1}}
    clock.advance(1)
    assert (await api("sendMessage", chat_id=user.id, text="ok again"))[0] == 200
    assert account.stats.too_many_requests == 1 and len(user.received) == 4


async def test_per_bot_limit_without_retry_after(clock: FakeClock):
    emulator = ZaloBotApiEmulator(limits=ZaloLimits(per_bot_per_second=2, per_chat_burst=5, retry_after_hint=False),
                                  clock=clock)
    async with serving(emulator):
        account = emulator.add_bot(TOKEN, "b")
        users = [account.user() for _ in range(3)]
        for user in users:
            await user.send_text("hi")
        async with aiohttp.ClientSession() as session:
            statuses, bodies = [], []
            for user in users:
                status, body = await post_json(session, emulator.base_url, TOKEN, "sendMessage",
                                               {"chat_id": user.id, "text": "Câu 1"})
                statuses.append(status)
                bodies.append(body)
        assert statuses == [200, 200, 429] and "parameters" not in bodies[2]


async def test_calls_off_the_parameter_table_are_violations(emulator: ZaloBotApiEmulator, account, api):
    user = account.user()
    await user.send_text("chào")
    status, body = await api("sendMessage", chat_id=user.id, text="Câu 1", parse_mode="HTML")
    assert status == 400 and error(body) == (400, "unknown parameter parse_mode")
    assert (await api("sendMessage", text="Câu 1"))[0] == 400
    assert (await api("sendMessage", chat_id=int(user.id, 16), text="Câu 1"))[0] == 400
    assert (await api("sendKeyboard", chat_id=user.id))[0] == 404
    async with api.session.get(f"{emulator.base_url}/bot{TOKEN}/sendMessage") as response:
        assert response.status == 400
    async with api.session.post(f"{emulator.base_url}/bot{TOKEN}/sendMessage", data={"chat_id": user.id}) as response:
        assert response.status == 400
    assert emulator.violations == [
        "sendMessage: unknown parameter parse_mode",
        "sendMessage: missing parameter chat_id",
        "sendMessage: parameter chat_id must be a string, got int",
        "sendKeyboard: unknown method",
        "sendMessage: called with GET; the platform expects POST with a JSON body",
        "sendMessage: body sent as application/x-www-form-urlencoded, not JSON",
    ]
    assert user.received == [] and account.stats.bad_requests == 5
    assert [r.status for r in emulator.requests if r.method == "sendMessage"] == [400] * 5


async def test_wait_for_consumes_in_order_and_times_out(account: EmulatedZaloBot, api, clock: FakeClock):
    user = account.user()
    await user.send_text("chào")
    for text in ("Câu 1", "Câu 2", "Câu 3"):
        await api("sendMessage", chat_id=user.id, text=text)
    assert (await user.wait_for()).text == "Câu 1"  # arrived before the call: not missed
    assert (await user.wait_for(lambda m: m.text == "Câu 3", timeout=1)).text == "Câu 3"  # skips Câu 2
    with pytest.raises(TimeoutError, match="no matching message"):
        await user.wait_for(timeout=0.05)  # Câu 2 was consumed by the skip

    waiting = asyncio.create_task(user.wait_for(lambda m: "Cảm ơn" in (m.text or "")))
    await asyncio.sleep(0)
    clock.advance(10)  # past the per-chat burst
    await api("sendMessage", chat_id=user.id, text="Câu 4")
    await api("sendMessage", chat_id=user.id, text="Cảm ơn ông/bà")
    assert (await asyncio.wait_for(waiting, 2)).text == "Cảm ơn ông/bà"


async def test_stop_ends_a_parked_poll_and_a_hung_up_poll_takes_nothing(account: EmulatedZaloBot, api,
                                                                        emulator: ZaloBotApiEmulator):
    user = account.user()
    abandoned = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    abandoned.cancel()  # the bot shut down its poller mid-poll
    await asyncio.gather(abandoned, return_exceptions=True)
    await asyncio.sleep(0.05)
    message_id = await user.send_text("đừng mất")
    await asyncio.sleep(0.05)
    assert (await api("getUpdates", timeout=0))[1]["result"]["message"]["message_id"] == message_id

    parked = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    began = time.monotonic()
    await emulator.stop()
    status, _ = await asyncio.wait_for(parked, 2)
    assert status == 408 and time.monotonic() - began < 1
