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
        assert [r.method for r in sends_to(h.emulator, group.id)] == ["leaveChat"]
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
