"""Hardening of the chat core against what probing the running bot found (issue #18): group
chats, brute-forced codes, floods of junk, and a quota that filled while a person was away.
Against the real Telegram and Zalo emulators over HTTP on 127.0.0.1, with the real storage."""

from __future__ import annotations

import asyncio
import logging

from test_telegram_bot import LINK_CODE, harness as telegram_harness
from test_zalo_bot import TOUR, has, harness as zalo_harness


def sends_to(emulator, chat_id) -> list:
    return [r for r in emulator.requests if str(r.params.get("chat_id")) == str(chat_id)]


async def until(condition, what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {what}")


# -- 1. group chats --------------------------------------------------------------------------------


async def test_a_code_sent_in_a_telegram_group_binds_nobody_and_the_bot_leaves(tmp_path, caplog):
    async with telegram_harness(tmp_path) as h:
        respondent_id = await h.invite("S-0301", "sipas_citizen_example")
        owner, lan = h.telegram.user(6001), h.telegram.user(6002, first_name="Lan")
        group = h.telegram.group("supergroup")
        with caplog.at_level(logging.INFO, logger="bot.chat.core"):
            group.add_bot(by=owner)
            await group.say(lan, f"/start {LINK_CODE}")  # Lan's personal link, pasted in the group
            await group.say(lan, "có")
            await until(lambda: not group.bot_present, "the bot leaves the group")
            await h.settle()
        assert await h.storage.linked_respondent("telegram", "test", str(group.id)) is None
        assert group.received == [], "no consent screen (nothing at all) is sent in the group"
        assert {r.method for r in sends_to(h.emulator, group.id)} == {"leaveChat"}
        ignored = [r for r in caplog.records if str(group.id) in r.getMessage()]
        assert len(ignored) == 1, "a group's updates are logged once"
        # The code was not used up: Lan opens it in her private chat and gets her survey.
        await lan.start(LINK_CODE)
        await lan.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        assert (await h.storage.linked_respondent("telegram", "test", str(lan.id))).id == respondent_id


async def test_the_bot_leaves_a_channel_and_a_group_it_is_added_to(tmp_path):
    async with telegram_harness(tmp_path) as h:
        owner = h.telegram.user(6011)
        channel, group = h.telegram.group("channel"), h.telegram.group("group")
        channel.add_bot(by=owner)
        group.add_bot(by=owner)
        await until(lambda: not channel.bot_present and not group.bot_present, "the bot leaves both")
        await h.settle()
        assert channel.received == [] and group.received == []


async def test_the_bot_leaves_a_group_it_was_in_before_at_the_first_message_there(tmp_path):
    async with telegram_harness(tmp_path) as h:
        await h.invite("S-0302", "sipas_citizen_example")
        owner = h.telegram.user(6021)
        group = h.telegram.group("group")
        group.bot_present = True  # added while an older khaosat ran, which stayed
        await group.say(owner, f"/start {LINK_CODE}")
        await until(lambda: not group.bot_present, "the bot leaves the group")
        await h.settle()
        assert group.received == []
        assert await h.storage.linked_respondent("telegram", "test", str(group.id)) is None


async def test_a_code_sent_in_a_zalo_group_binds_nobody(tmp_path):
    async with zalo_harness(tmp_path, forms=(TOUR,)) as h:
        respondent_id, typed, _ = await h.invite("Z-0301", "tour")
        lan = h.zalo.user("lan-1")
        await lan.send_in_group("group-77", typed)
        await lan.send_in_group("group-77", "/start")
        await lan.send_text("xin chào")  # her own chat still gets the welcome: the group's turns came first
        await lan.wait_for()
        await h.settle()
        assert await h.storage.linked_respondent("zalo", "zl", "group-77") is None
        assert sends_to(h.emulator, "group-77") == []
        await lan.send_text(typed)
        await lan.wait_for(has("đồng ý tham gia"))
        assert (await h.storage.linked_respondent("zalo", "zl", "lan-1")).id == respondent_id


# -- 2. brute force from many chats --------------------------------------------------------------------


async def test_wrong_codes_from_many_chats_trip_a_bot_wide_limit_without_locking_out_honest_people(tmp_path):
    from bot.invitations import new_typed_code
    async with zalo_harness(tmp_path, forms=(TOUR,), coordinators=("coord-1",), code_failures_per_minute=5) as h:
        coordinator = h.zalo.user("coord-1")
        await coordinator.send_text("/help")  # a bot cannot write first: the coordinator opened the chat
        await coordinator.wait_for()
        _, typed_a, _ = await h.invite("Z-0401", "tour")
        _, typed_b, _ = await h.invite("Z-0402", "tour")
        guessers = [h.zalo.user(f"guesser-{n}") for n in range(6)]
        for guesser in guessers:  # six fresh chats, one wrong code each: no chat is over its own limit
            await guesser.send_text(new_typed_code())
            await guesser.wait_for(has("không đúng"))
        # A chat that already failed is not checked while the limit holds, even with a right code.
        await guessers[0].send_text(typed_a)
        await guessers[0].wait_for(has("thử lại sau vài phút"))
        assert await h.storage.linked_respondent("zalo", "zl", guessers[0].id) is None
        # Someone who has not failed still gets in with their right code.
        honest = h.zalo.user("honest-1")
        await honest.send_text(typed_b)
        await honest.wait_for(has("đồng ý tham gia"))
        # More wrong codes: the coordinators were told once, not once per attempt.
        for guesser in guessers[1:4]:
            await guesser.send_text(new_typed_code())
            await guesser.wait_for(has("thử lại sau vài phút"))
        await h.settle()
        alerts = [m for m in coordinator.received if "dò mã" in (m.text or "")]
        assert len(alerts) == 1 and "zl" in alerts[0].text
        # The right code of the throttled chat's person was not spent: it still works elsewhere.
        fresh = h.zalo.user("person-a")
        await fresh.send_text(typed_a)
        await fresh.wait_for(has("đồng ý tham gia"))


def test_code_failures_per_minute_is_checked_at_load(tmp_path):
    import pytest
    from bot.config import ConfigError, load_config
    for value in ("0", "-5", '"many"', "true", "1.5"):
        path = tmp_path / "c.toml"
        path.write_text(f'[[telegram]]\nname = "t"\ntoken = "1:x"\ncode_failures_per_minute = {value}\n',
                        encoding="utf-8")
        with pytest.raises(ConfigError, match="code_failures_per_minute"):
            load_config(path)
    path.write_text('[[telegram]]\nname = "t"\ntoken = "1:x"\ncode_failures_per_minute = 12\n', encoding="utf-8")
    assert load_config(path).bots[0].code_failures_per_minute == 12


# -- 5. a quota that filled while the person was away ---------------------------------------------------


class MovableClock:
    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


async def test_a_person_whose_released_slot_was_taken_is_told_once_and_asked_nothing_more(tmp_path):
    import datetime as dt

    from bot.invitations import code_hash, new_link_code
    from fieldwork.quotas import release_stale
    from survey_toml import survey_toml
    from surveys.project import parse_survey, store_survey
    from surveys.sampling import draw_sample, import_frame_file
    from surveys.xlsform import load_questionnaire
    from test_telegram_bot import SIPAS, answer_everything

    # After the date answer_everything types (01/11/2026), within the survey's dates.
    t0 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    clock = MovableClock(t0)
    form = load_questionnaire(SIPAS)
    async with telegram_harness(tmp_path, clock=clock) as h:
        text = survey_toml("quota-chat", "Thử hạn ngạch", form.form_id, opens="2026-11-15", closes="2026-12-31",
                           extra="""\
[quotas]
hard = true
release_after_hours = 72
[quotas.targets]
"citizen/xa-a" = 1
""")
        project = parse_survey(text)
        await store_survey(h.storage, project, text, "survey.toml", t0.isoformat())
        frame = tmp_path / "frame.csv"
        frame.write_text("id,group,unit\n" + "".join(f"a{i},citizen,xa-a\n" for i in range(3)), encoding="utf-8")
        await import_frame_file(h.storage, project, frame, t0.isoformat())
        await draw_sample(h.storage, project, 1, t0.isoformat())
        ids = sorted(m.respondent_id for m in await h.storage.sample_members(project.id, "main"))
        codes = [new_link_code() for _ in ids]
        for respondent_id, code in zip(ids, codes):
            await h.storage.issue_invitation(respondent_id, "link", code_hash(code), t0.isoformat())

        # Lan consents and answers one question, then walks away for three days: her slot is released.
        lan = h.telegram.user(7001)
        await lan.start(codes[0])
        consent = await lan.wait_for(lambda m: "đồng ý tham gia" in (m.text or "") and bool(m.inline_keyboard))
        await lan.press(lan.inline_buttons(consent)[0][1], consent)
        first = await lan.wait_for(lambda m: m.edits == 0 and bool(m.inline_keyboard))
        await lan.press(lan.inline_buttons(first)[0][1], first)
        await lan.wait_for(lambda m: m.edits == 0 and bool(m.inline_keyboard))
        await h.settle()
        clock.at = t0 + dt.timedelta(hours=73)
        assert await release_stale(h.storage, project, clock.at) == [ids[0]]
        # Minh takes the freed slot and completes: the stratum is full.
        minh = h.telegram.user(7002)
        await minh.start(codes[1])
        await answer_everything(minh, form)
        await h.settle()
        # Lan comes back and answers: she is told the quota is full...
        clock.at = t0 + dt.timedelta(hours=75)
        current = next(m for m in reversed(lan.received) if m.inline_keyboard)
        await lan.press(lan.inline_buttons(current)[0][1], current)
        await lan.wait_for(lambda m: "đủ số phiếu" in (m.text or ""))
        await h.settle()
        told = len(lan.received)
        # ...and /start, an answer or a press asks her nothing more, and says so briefly.
        for act in (lambda: lan.start(), lambda: lan.send_text("1"),
                    lambda: lan.press(lan.inline_buttons(current)[0][1], current)):
            await act()
            reply = await lan.wait_for(lambda m: m.edits == 0)
            assert not reply.inline_keyboard and "đã kết thúc" in (reply.text or ""), reply.text
        await h.settle()
        after = lan.received[told:]
        assert len(after) == 3
        assert not any("đủ số phiếu" in (m.text or "") for m in after), "the quota explanation is said once"
        assert (await h.storage.get_respondent(ids[0])).disposition == "quota_full"
        assert (await h.storage.latest_session(ids[0], form.form_id)).status != "completed"


# -- 4. floods of junk ----------------------------------------------------------------------------------


async def test_error_replies_are_coalesced_per_chat_and_wait_behind_real_replies(tmp_path):
    from bot.outbox import ERROR_REPLY, REPLY
    from storage import OutgoingMessage, open_storage

    def message(chat: str, key: str, *, error: bool) -> OutgoingMessage:
        return OutgoingMessage(channel="telegram", bot="b", chat_id=chat, method="sendMessage",
                               payload='{"text": "x"}', priority=ERROR_REPLY if error else REPLY, dedupe_key=key,
                               coalesce=error)

    async with await open_storage(tmp_path / "o.sqlite") as storage:
        at = "2026-08-02T09:00:00+07:00"
        # A flood: 50 junk messages from chat 1, each answered with an error and the question again.
        for n in range(50):
            await storage.enqueue([message("1", f"junk{n}#0", error=True), message("1", f"junk{n}#1", error=True)], at)
        await storage.enqueue([message("2", "junk-other#0", error=True)], at)
        await storage.enqueue([message("3", "answer#0", error=False)], at)
        due = await storage.due_messages("telegram", "b", "9999", 100)
        assert [(m.chat_id, m.dedupe_key) for m in due] == [
            ("3", "answer#0"),  # a real answer's reply first, though queued last
            ("1", "junk0#0"), ("1", "junk0#1"),  # one pending error reply (both parts) per chat
            ("2", "junk-other#0"),
        ]
        # Once chat 1's error reply has left, the next junk gets one again.
        for m in due[1:3]:
            assert await storage.mark_sending(m.id, at) and await storage.mark_sent(m.id, at, None)
        assert await storage.enqueue([message("1", "junk51#0", error=True)], at) == 1
        assert await storage.enqueue([message("1", "junk52#0", error=True)], at) == 0
        # Real replies are never coalesced.
        assert await storage.enqueue([message("1", f"answer{n}#0", error=False) for n in range(3)], at) == 3


async def test_a_flood_of_junk_delays_neither_the_next_question_nor_other_chats(tmp_path):
    from bot.outbox import Pace
    from test_telegram_bot import FAST
    # Per chat: one message, then one every 5 s; per bot: one a second, less than six flooding chats
    # would take. Before, 50 junk messages queued 50 error replies ahead of the next question (four
    # minutes), and everyone else's replies queued behind all of them.
    pace = Pace(per_second=1, per_chat_per_second=0.2, per_chat_burst=1)
    async with telegram_harness(tmp_path, pace=pace, limits=FAST) as h:
        flooders = []
        for n in range(6):
            await h.invite(f"S-05{n}", "sipas_citizen_example", code=f"{'C' * 11}{'d' * 10}{n}")
            user = h.telegram.user(7100 + n)
            await user.start(f"{'C' * 11}{'d' * 10}{n}")
            flooders.append(user)
        for user in flooders:
            await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or "") and bool(m.inline_keyboard), timeout=90)
        # The consent question is on screen; each sends 50 messages it cannot use.
        for user in flooders:
            for _ in range(50):
                await user.send_text("???")
        first = flooders[0]
        await first.wait_for(lambda m: m.edits == 0 and not m.inline_keyboard, timeout=30)  # one error reply
        # Someone else answering meanwhile is not held up by the floods.
        await h.invite("S-0599", "sipas_citizen_example", code="E" * 11 + "f" * 11)
        other = h.telegram.user(7199)
        await other.start("E" * 11 + "f" * 11)
        await other.wait_for(lambda m: "đồng ý tham gia" in (m.text or "") and bool(m.inline_keyboard), timeout=20)
        # The flooder answers: the next question comes after at most one more error reply.
        before = len(first.received)
        consent = next(m for m in reversed(first.received) if m.inline_keyboard)
        await first.press(first.inline_buttons(consent)[0][1], consent)
        question = await first.wait_for(lambda m: m.edits == 0 and bool(m.inline_keyboard), timeout=20)
        between = [m for m in first.received[before:] if m is not question and m.message_id < question.message_id]
        assert len(between) <= 1, [m.text for m in between]
        assert len(first.received) < 10, "a flood gets a few error replies, not one per message"
