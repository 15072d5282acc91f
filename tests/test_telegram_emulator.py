"""The local Bot API emulator, driven over real HTTP by aiogram and by raw aiohttp requests.

Rate limits and callback-query ages use a fake clock, so nothing here depends on timing except
the long-poll tests, which wait at most about a second.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from emulator_helpers import FakeClock, failing_once_webhook, post_json, serving

from bot.telegram.botapi_spec import DEFAULT_SPEC_PATH, BotApiSpec
from bot.telegram.emulator import NOT_MODIFIED, BotApiEmulator, EmulatedBot, Limits

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
# Vietnamese letters take 2-3 bytes in UTF-8, so a short label can exceed callback_data's 64 bytes.
VIETNAMESE_LETTERS_30 = "ảạẳặẩậẻẹểệỉịỏọổộởợủụửựỷỵấầếềễỗ"  # 30 characters, 90 bytes
VIETNAMESE_LABEL = "Nộp hồ sơ trực tuyến trên Cổng Dịch vụ công quốc gia"  # 52 characters, 71 bytes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock):
    async with serving(BotApiEmulator(clock=clock)) as emulator:
        yield emulator


@pytest.fixture
def account(emulator: BotApiEmulator) -> EmulatedBot:
    return emulator.add_bot(TOKEN, "khaosat_test_bot")


@pytest.fixture
async def bot(emulator: BotApiEmulator, account: EmulatedBot):
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url)))
    yield bot
    await bot.session.close()


@pytest.fixture
def spec() -> BotApiSpec:
    spec = BotApiSpec.load()
    if spec is None:
        pytest.skip(f"Bot API spec not found at {DEFAULT_SPEC_PATH} (../shared/telegram-bot-api/api.json "
                    "next to the repository); spec checks need it")
    return spec


async def raw_call(emulator: BotApiEmulator, method: str, *, token: str = TOKEN, **params: Any) -> tuple[int, dict]:
    """POST a JSON body, as non-aiogram clients do."""
    async with aiohttp.ClientSession() as session:
        return await post_json(session, emulator.base_url, token, method, params)


def keyboard(*labels_and_data: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)]
                                                 for t, d in labels_and_data])


async def started_user(account: EmulatedBot, bot: Bot, **kwargs: Any):
    """A user who has opened the chat, with that /start already consumed by the bot."""
    user = account.user(**kwargs)
    update_id = await user.start()
    await bot.get_updates(offset=update_id + 1, timeout=0)
    return user


# --- basics ------------------------------------------------------------------------------------


async def test_get_me_through_aiogram(bot: Bot):
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "khaosat_test_bot")


async def test_unknown_token_is_401_and_unknown_method_is_404(emulator: BotApiEmulator, account: EmulatedBot):
    assert (await raw_call(emulator, "getMe", token="999:nope"))[0] == 401
    status, body = await raw_call(emulator, "sendFax", chat_id=1)
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert (await raw_call(emulator, "GETME"))[0] == 200  # method names are case-insensitive


async def test_message_keyboard_and_callback_query_via_get_updates(bot: Bot, account: EmulatedBot):
    user = account.user(first_name="Lan")
    start_id = await user.start("inv_AB12")
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == start_id
    assert update.message.text == "/start inv_AB12"
    assert update.message.entities[0].type == "bot_command" and update.message.entities[0].length == 6
    assert update.message.chat.id == update.message.from_user.id == user.id

    sent = await bot.send_message(user.id, "Anh/chị có hài lòng không?",
                                  reply_markup=keyboard(("Có", "q1:yes"), ("Không", "q1:no")))
    assert user.received[-1].message_id == sent.message_id
    assert user.inline_buttons() == [("Có", "q1:yes"), ("Không", "q1:no")]

    press_id = await user.press("Có")
    assert press_id > start_id
    [update] = await bot.get_updates(offset=start_id + 1, timeout=0)
    query = update.callback_query
    assert (update.update_id, query.data, query.from_user.id) == (press_id, "q1:yes", user.id)
    assert query.message.message_id == sent.message_id
    assert query.message.reply_markup.inline_keyboard[0][0].text == "Có"

    assert await bot.answer_callback_query(query.id, text="Đã ghi nhận")
    assert user.callback_answers == [{"callback_query_id": query.id, "text": "Đã ghi nhận", "show_alert": False}]
    assert account.stats.callback_answers == 1 and account.stats.sent == 1


async def test_press_by_callback_data_on_an_older_message(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    first = await bot.send_message(user.id, "Câu 1", reply_markup=keyboard(("A", "q1:a")))
    await bot.send_message(user.id, "Câu 2", reply_markup=keyboard(("B", "q2:b")))
    await user.press("q1:a", message=user.received[0])
    [update] = await bot.get_updates(timeout=0)
    assert update.callback_query.message.message_id == first.message_id
    with pytest.raises(LookupError):
        await user.press("Không có nút này")


async def test_get_updates_offset_limit_and_negative_offset(bot: Bot, account: EmulatedBot):
    user = account.user()
    ids = [await user.start(), await user.send_text("một"), await user.send_text("hai")]
    assert [u.update_id for u in await bot.get_updates(limit=1, timeout=0)] == ids[:1]
    assert [u.update_id for u in await bot.get_updates(limit=1, timeout=0)] == ids[:1]  # not confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=ids[0] + 1, timeout=0)] == ids[1:]
    assert [u.update_id for u in await bot.get_updates(offset=-1, timeout=0)] == ids[2:]
    assert account.pending_update_count == 1


async def test_long_poll_wakes_up_on_a_new_update_and_times_out_empty(bot: Bot, account: EmulatedBot):
    user = account.user()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    while account.poll_generation == 0:  # until the poll is parked in the emulator
        await asyncio.sleep(0.01)
    began = time.monotonic()
    update_id = await user.start()
    updates = await asyncio.wait_for(poll, 2)
    assert [u.update_id for u in updates] == [update_id]
    assert time.monotonic() - began < 1

    began = time.monotonic()
    assert await bot.get_updates(offset=update_id + 1, timeout=1) == []
    assert time.monotonic() - began >= 0.9


async def test_a_second_poller_ends_the_first_with_409(bot: Bot, account: EmulatedBot):
    first = asyncio.create_task(bot.get_updates(timeout=5))
    while account.poll_generation == 0:
        await asyncio.sleep(0.01)
    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_redeliver_gives_the_same_update_again(bot: Bot, account: EmulatedBot):
    user = account.user()
    update_id = await user.send_text("xin chào")
    [update] = await bot.get_updates(timeout=0)
    assert await bot.get_updates(offset=update_id + 1, timeout=0) == []
    await account.redeliver(update_id)
    [again] = await bot.get_updates(offset=update_id + 1, timeout=0)
    assert again.update_id == update_id and again.message.text == update.message.text
    assert await bot.get_updates(offset=update_id + 1, timeout=0) == []


# --- webhooks ----------------------------------------------------------------------------------


def _reply_in_body(update: dict[str, Any]) -> dict[str, Any]:
    """The webhook's answer: a sendMessage call for the text "reply-in-body", else nothing."""
    if "message" in update and update["message"].get("text") == "reply-in-body":
        return {"method": "sendMessage", "chat_id": update["message"]["chat"]["id"],
                "text": "trả lời trong webhook"}
    return {}


@pytest.fixture
async def webhook_server():
    """A local webhook endpoint that fails its first delivery, then records updates in order."""
    async with failing_once_webhook("/hook", "X-Telegram-Bot-Api-Secret-Token", _reply_in_body) as server:
        yield server


async def test_webhook_delivery_with_secret_retry_order_and_409(bot: Bot, account: EmulatedBot, webhook_server):
    url, received = webhook_server
    user = account.user()
    ids = [await user.start(), await user.send_text("hai"), await user.send_text("reply-in-body")]
    assert await bot.set_webhook(url, secret_token="s3cr3t-Token_1")
    got = [await asyncio.wait_for(received.get(), 3) for _ in ids]
    assert [update["update_id"] for update, _ in got] == ids  # first attempt failed, order kept
    assert {secret for _, secret in got} == {"s3cr3t-Token_1"}
    reply = await user.wait_for(timeout=3)  # the webhook answered with a sendMessage call
    assert reply.text == "trả lời trong webhook"

    info = await bot.get_webhook_info()
    assert info.url == url and info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)

    assert await bot.delete_webhook()
    later = await user.send_text("sau khi xoá webhook")
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [later]


async def test_set_webhook_checks_url_and_secret(bot: Bot):
    with pytest.raises(TelegramBadRequest, match="unallowed characters"):
        await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="có dấu")
    with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
        await bot.set_webhook("http://example.org/hook")
    with pytest.raises(TelegramBadRequest, match="ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://example.org:8080/hook")


# --- Telegram's limits ---------------------------------------------------------------------------


async def test_text_length_limit(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(user.id, "a" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(user.id, "   ")
    await bot.send_message(user.id, "ả" * 4096)
    assert len(user.received) == 1


async def test_callback_data_is_limited_in_bytes_not_characters(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    for data in (VIETNAMESE_LETTERS_30, VIETNAMESE_LABEL):
        assert len(data) <= 64 < len(data.encode("utf-8"))
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(user.id, "Câu hỏi", reply_markup=keyboard(("X", data)))
    assert user.received == []


async def test_at_most_100_buttons(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    buttons = [(str(i), f"b{i}") for i in range(101)]
    with pytest.raises(TelegramBadRequest, match="reply markup is too long"):
        await bot.send_message(user.id, "Chọn", reply_markup=keyboard(*buttons))
    await bot.send_message(user.id, "Chọn", reply_markup=keyboard(*buttons[:100]))
    assert len(user.inline_buttons()) == 100


async def test_label_only_inline_button_is_refused(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="chỉ có nhãn")]])
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(user.id, "Chọn", reply_markup=markup)


async def test_per_chat_burst_then_429_with_retry_after(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    results = await asyncio.gather(*(bot.send_message(user.id, f"tin {i}") for i in range(5)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, TelegramRetryAfter)]
    assert len(refused) == 2 and all(r.retry_after == 1 for r in refused)
    assert len(user.received) == 3 and account.stats.too_many_requests == 2
    clock.advance(1)
    await bot.send_message(user.id, "sau khi chờ")
    assert len(user.received) == 4


async def test_per_bot_rate_across_chats(bot: Bot, account: EmulatedBot, clock: FakeClock):
    users = [await started_user(account, bot) for _ in range(31)]
    for user in users[:30]:
        await bot.send_message(user.id, "Mời tham gia khảo sát")
    clock.advance(0.5)
    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(users[30].id, "Mời tham gia khảo sát")
    assert refused.value.retry_after == 1 and users[30].received == []
    clock.advance(0.5)
    await bot.send_message(users[30].id, "Mời tham gia khảo sát")


async def test_limits_are_configurable(clock: FakeClock):
    emulator = BotApiEmulator(clock=clock, limits=Limits(per_chat_burst=1, per_chat_per_second=0.2, text_max=10))
    account = emulator.add_bot(TOKEN, "khaosat_test_bot")
    async with serving(emulator):
        user = account.user()
        await user.start()
        assert (await raw_call(emulator, "sendMessage", chat_id=user.id, text="x" * 11))[0] == 400
        assert (await raw_call(emulator, "sendMessage", chat_id=user.id, text="1"))[0] == 200
        status, body = await raw_call(emulator, "sendMessage", chat_id=user.id, text="2")
        assert status == 429 and body["parameters"] == {"retry_after": 5}
        assert body["description"] == "Too Many Requests: retry after 5"


async def test_blocked_user_and_user_who_never_started(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    user.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user.id, "Nhắc nhở")
    [update] = await bot.get_updates(timeout=0)
    assert update.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(RuntimeError):
        await user.send_text("không gửi được khi đã chặn")
    await user.start()  # "Restart" unblocks
    await bot.send_message(user.id, "Chào mừng trở lại")
    assert account.stats.forbidden == 1

    stranger = account.user()
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(stranger.id, "Xin chào")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "Xin chào")


# --- edits, callbacks, deletes -------------------------------------------------------------------


async def test_edits_update_received_in_place(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    sent = await bot.send_message(user.id, "Câu 1/10", reply_markup=keyboard(("Tiếp", "next")))
    message = user.received[0]
    with pytest.raises(TelegramBadRequest) as same:
        await bot.edit_message_text("Câu 1/10", chat_id=user.id, message_id=sent.message_id,
                                    reply_markup=keyboard(("Tiếp", "next")))
    assert same.value.message == f"Bad Request: {NOT_MODIFIED}"

    await bot.edit_message_text("Câu 2/10", chat_id=user.id, message_id=sent.message_id,
                                reply_markup=keyboard(("Tiếp", "next")))
    assert user.received == [message] and message.text == "Câu 2/10" and message.edits == 1

    clock.advance(1)
    await bot.edit_message_text("Đã xong", chat_id=user.id, message_id=sent.message_id)
    assert message.reply_markup is None  # omitting reply_markup removes the keyboard
    clock.advance(1)
    await bot.edit_message_reply_markup(chat_id=user.id, message_id=sent.message_id,
                                        reply_markup=keyboard(("Làm lại", "again")))
    assert user.inline_buttons() == [("Làm lại", "again")] and message.edits == 3
    assert account.stats.edits == 3

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=999)


async def test_answer_callback_query_too_late_or_twice(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    await bot.send_message(user.id, "Câu hỏi", reply_markup=keyboard(("A", "a"), ("B", "b")))
    await user.press("A")
    await user.press("B")
    first, second = await bot.get_updates(timeout=0)
    late = first.callback_query
    clock.advance(16)
    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(late.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("no-such-query")

    await user.press("A")
    [update] = await bot.get_updates(offset=second.update_id + 1, timeout=0)
    assert await bot.answer_callback_query(update.callback_query.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(update.callback_query.id)


async def test_delete_message(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    sent = await bot.send_message(user.id, "Tạm thời")
    assert await bot.delete_message(user.id, sent.message_id)
    assert user.received[0].deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)


async def test_wait_for_new_and_edited_messages(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    waiting = asyncio.create_task(user.wait_for(lambda m: "Xin chào" in (m.text or "")))
    await asyncio.sleep(0)
    sent = await bot.send_message(user.id, "Xin chào Lan")
    assert (await asyncio.wait_for(waiting, 2)).message_id == sent.message_id

    clock.advance(1)
    await bot.edit_message_text("Xin chào Lan!", chat_id=user.id, message_id=sent.message_id)
    edited = await user.wait_for(lambda m: m.edits == 1, timeout=1)
    assert edited.text == "Xin chào Lan!"
    with pytest.raises(TimeoutError, match="no matching message"):
        await user.wait_for(timeout=0.05)


async def test_reply_keyboard_and_contact(bot: Bot, account: EmulatedBot, spec: BotApiSpec):
    user = await started_user(account, bot)
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Chia sẻ số điện thoại", request_contact=True)]],
                                 resize_keyboard=True, one_time_keyboard=True)
    sent = await bot.send_message(user.id, "Xác minh số điện thoại", reply_markup=markup)
    assert sent.reply_markup is None  # only inline keyboards are part of a Message
    assert user.reply_keyboard["keyboard"][0][0]["request_contact"] is True
    await user.share_contact("+84901234567")
    [update] = await bot.get_updates(timeout=0)
    assert update.message.contact.phone_number == "+84901234567"
    assert update.message.contact.user_id == user.id


async def test_html_parse_mode_is_checked_like_telegram(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    sent = await bot.send_message(user.id, "<b>Câu 1</b> &amp; hướng dẫn", parse_mode="HTML")
    assert sent.text == user.received[0].text == "Câu 1 & hướng dẫn"
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br"'):
        await bot.send_message(user.id, "dòng 1<br>dòng 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await bot.send_message(user.id, "<b>chưa đóng", parse_mode="HTML")


# --- files, actions, commands --------------------------------------------------------------------


async def test_send_document_and_photo_upload_and_file_id(bot: Bot, account: EmulatedBot, clock: FakeClock):
    user = await started_user(account, bot)
    content = b"PK\x03\x04 fake xlsx" * 100
    sent = await bot.send_document(user.id, BufferedInputFile(content, filename="báo_cáo_PAPI.xlsx"),
                                   caption="Kết quả khảo sát")
    received = user.received[0]
    assert received.document["file_name"] == "báo_cáo_PAPI.xlsx"
    assert received.document["file_size"] == len(content) and received.file_data == content
    assert received.caption == "Kết quả khảo sát"
    assert sent.document.file_id == received.document["file_id"]

    clock.advance(1)
    await bot.send_document(user.id, sent.document.file_id)
    assert user.received[1].file_data == content
    clock.advance(1)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(user.id, "not-a-file-id")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(user.id, sent.document.file_id)
    photo = await bot.send_photo(user.id, BufferedInputFile(b"\x89PNG fake", filename="bieu_do.png"))
    assert photo.photo[0].file_size == 9 and user.received[-1].photo is not None


async def test_chat_action_and_commands(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    assert await bot.send_chat_action(user.id, "typing")
    assert user.chat_actions == ["typing"]
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(user.id, "thinking")

    commands = [BotCommand(command="start", description="Bắt đầu khảo sát"),
                BotCommand(command="help", description="Trợ giúp")]
    assert await bot.set_my_commands(commands, language_code="vi")
    assert [c.command for c in await bot.get_my_commands(language_code="vi")] == ["start", "help"]
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bắt_đầu", description="x")])
    assert await bot.delete_my_commands(language_code="vi")
    assert await bot.get_my_commands(language_code="vi") == []


# --- request formats and spec checks ---------------------------------------------------------------


async def test_json_urlencoded_multipart_and_query_string_requests(emulator: BotApiEmulator, account: EmulatedBot,
                                                                   clock: FakeClock, spec: BotApiSpec):
    # The last request is refused only by the spec check (an unknown parameter): skipped without it.
    user = account.user()
    await user.start()
    url = f"{emulator.base_url}/bot{TOKEN}/sendMessage"
    markup = json.dumps({"inline_keyboard": [[{"text": "Có", "callback_data": "yes"}]]})
    form = aiohttp.FormData({"chat_id": str(user.id), "text": "multipart", "reply_markup": markup})
    form.add_field("disable_notification", "true")
    form.add_field("note", b"x", filename="x.txt")  # forces multipart/form-data
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data={"chat_id": str(user.id), "text": "urlencoded", "reply_markup": markup}) as r:
            assert r.status == 200
        async with session.get(url, params={"chat_id": str(user.id), "text": "query string"}) as r:
            assert r.status == 200
        clock.advance(1)
        async with session.post(url, data=form) as r:
            assert r.status == 400  # "note" is not a sendMessage parameter
    assert [m.text for m in user.received] == ["urlencoded", "query string"]
    assert user.received[0].reply_markup == json.loads(markup)
    assert emulator.violations == ["sendMessage: unknown parameter 'note'"]


async def test_spec_violations_are_recorded_and_refused(emulator: BotApiEmulator, account: EmulatedBot,
                                                        spec: BotApiSpec):
    user = account.user()
    await user.start()
    status, body = await raw_call(emulator, "sendMessage", chat_id=user.id, text="x", colour="red")
    assert status == 400 and body["description"] == "Bad Request: unknown parameter 'colour'"
    assert (await raw_call(emulator, "sendMessage", text="x"))[0] == 400
    assert (await raw_call(emulator, "editMessageText", chat_id=user.id, message_id="x", text="y"))[0] == 400
    bad_button = {"inline_keyboard": [[{"text": "Có", "callback": "yes"}]]}
    assert (await raw_call(emulator, "sendMessage", chat_id=user.id, text="x", reply_markup=bad_button))[0] == 400
    status, body = await raw_call(emulator, "sendPoll", chat_id=user.id, question="?", options=[])
    assert status == 400 and "not implemented" in body["description"]
    assert emulator.violations == [
        "sendMessage: unknown parameter 'colour'",
        "sendMessage: missing required parameter 'chat_id'",
        "editMessageText: message_id: expected Integer, got 'x'",
        "sendMessage: reply_markup.inline_keyboard[0][0].callback: unknown field of InlineKeyboardButton",
        "sendPoll: not implemented by the emulator",
    ]
    assert user.received == []
    assert [r.method for r in emulator.requests] == ["sendMessage", "sendMessage", "editMessageText",
                                                     "sendMessage", "sendPoll"]


async def test_every_update_and_sent_message_matches_the_spec(bot: Bot, account: EmulatedBot, spec: BotApiSpec,
                                                              emulator: BotApiEmulator, clock: FakeClock):
    user = account.user(username="lan_nguyen")
    await user.start("inv_1")
    await user.send_text("Xin chào")
    await user.share_contact("+84901234567")
    status, body = await raw_call(emulator, "sendMessage", chat_id=user.id, text="Câu 1",
                                  reply_markup={"inline_keyboard": [[{"text": "Có", "callback_data": "y"}]]})
    assert status == 200 and spec.check_object("Message", body["result"]) == []
    await user.press("Có")
    user.block()
    user.unblock()
    status, body = await raw_call(emulator, "getUpdates", allowed_updates=[], timeout=0)
    kinds = [next(k for k in update if k != "update_id") for update in body["result"]]
    assert kinds == ["message", "message", "message", "callback_query", "my_chat_member", "my_chat_member"]
    for update in body["result"]:
        assert spec.check_object("Update", update) == []
    assert emulator.violations == []


async def test_allowed_updates_filters_what_the_bot_did_not_ask_for(bot: Bot, account: EmulatedBot):
    user = await started_user(account, bot)
    await bot.send_message(user.id, "Câu hỏi", reply_markup=keyboard(("A", "a")))
    await user.press("A")
    text_id = await user.send_text("trả lời")
    updates = await bot.get_updates(allowed_updates=["message"], timeout=0)
    assert [u.update_id for u in updates] == [text_id]  # the button press was dropped


async def test_works_without_the_spec(tmp_path: Path, clock: FakeClock):
    emulator = BotApiEmulator(spec_path=tmp_path / "missing.json", clock=clock)
    emulator.add_bot(TOKEN, "khaosat_test_bot")
    async with serving(emulator):
        assert emulator.spec is None
        assert (await raw_call(emulator, "getMe"))[0] == 200
        assert (await raw_call(emulator, "getMe", unexpected=1))[0] == 200  # nothing to check against
        assert (await raw_call(emulator, "sendPoll"))[0] == 404
        assert emulator.violations == []


# --- the real aiogram dispatcher -----------------------------------------------------------------------


async def test_aiogram_dispatcher_polling_end_to_end(bot: Bot, account: EmulatedBot, emulator: BotApiEmulator):
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def on_start(message: Message) -> None:
        await message.answer("Bắt đầu khảo sát?", reply_markup=keyboard(("Đồng ý", "consent:yes")))

    @dispatcher.callback_query(F.data == "consent:yes")
    async def on_consent(query: CallbackQuery) -> None:
        await query.answer("Cảm ơn")
        await query.message.edit_text("Anh/chị đã đồng ý.")

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False,
                                                           polling_timeout=1))
    try:
        user = account.user()
        await user.start()
        question = await user.wait_for(timeout=5)
        await user.press("Đồng ý")
        await user.wait_for(lambda m: m.message_id == question.message_id and m.edits == 1, timeout=5)
        assert question.text == "Anh/chị đã đồng ý." and question.reply_markup is None
        assert user.callback_answers[0]["text"] == "Cảm ơn"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)
    assert emulator.violations == []
