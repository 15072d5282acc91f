"""Rank and randomized choice lists answered end to end on Telegram and on Zalo, through the real
clients against the emulators: a rank picked button by button (a stale press on an earlier prompt,
back taking back the last pick) and typed at once on Zalo (bad orders refused politely), a
randomized list shown in the session's order on both channels, an optional rank stopped early."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from storage import Storage
from surveys import codec
from surveys import engine as E
from surveys.xlsform import load_questionnaire
from tests.test_chat_scenarios import arrive, emulators, has, running, settle

RANKING = Path(__file__).parent / "forms" / "ranking.md"
STALE = "Câu hỏi đó đã qua; xin quý vị trả lời câu hỏi hiện tại."


async def session_of(storage: Storage, respondent_id: int):
    session = await storage.latest_session(respondent_id, "ranking")
    answers = {name: codec.decode_value(a.value) for name, a in (await storage.answers(session.id)).items()}
    return session, answers, codec.decode_state(session.state)


async def shown_order(storage: Storage, respondent_id: int) -> list[tuple[str, str]]:
    """(name, label) of the options on screen as the engine renders them from the stored session."""
    _, _, state = await session_of(storage, respondent_id)
    prompt = E.current_prompt(load_questionnaire(RANKING), state)
    return [(o.name, o.label) for o in prompt.options]


async def test_a_rank_and_a_shuffled_list_on_telegram(database, tmp_path):
    async with emulators(tmp_path, database, (RANKING,)) as bots:
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, "telegram", "R-tg", 8100, "ranking")
            await user.send_text("1")
            first = await user.wait_for(has("lựa chọn thứ 1"))
            assert [label for label, _ in user.inline_buttons(first)] == [
                "Thủ tục", "Thời gian chờ", "Thái độ cán bộ", "Chi phí"]
            await user.press("Thời gian chờ", first)
            second = await user.wait_for(has("lựa chọn thứ 2"))
            assert "đã xếp: 1. Thời gian chờ" in second.text
            assert [label for label, _ in user.inline_buttons(second)] == ["Thủ tục", "Thái độ cán bộ", "Chi phí",
                                                                         "⬅ Quay lại"]
            # The first prompt keeps only its pick, ticked; pressed again (a double tap): stale.
            assert user.inline_buttons(first) == [("✓ Thời gian chờ", user.inline_buttons(first)[0][1])]
            await user.press("✓ Thời gian chờ", first)
            await asyncio.sleep(0.3)
            await settle(storage)
            assert user.callback_answers[-1].get("text") == STALE
            assert (await session_of(storage, respondent_id))[2].draft == ("thoi_gian",)
            await user.press("⬅ Quay lại", second)  # takes back the last pick
            await user.wait_for(has("Đã bỏ lựa chọn thứ 1 (“Thời gian chờ”)"))
            again = await user.wait_for(has("lựa chọn thứ 1"))
            await user.press("Thái độ cán bộ", again)
            await user.press("Thủ tục", await user.wait_for(has("lựa chọn thứ 2")))
            third = await user.wait_for(has("lựa chọn thứ 3"))
            assert [label for label, _ in user.inline_buttons(third)][:2] == ["Thời gian chờ", "Chi phí"]
            await user.press("Chi phí", third)  # the last one left takes rank 4 by itself
            channel = await user.wait_for(has("kênh nào"))
            order = await shown_order(storage, respondent_id)
            assert [label for label, _ in user.inline_buttons(channel)][:4] == [label for _, label in order]
            await user.press("Zalo", channel)
            ranks = await user.wait_for(has("Xếp hạng các kênh"))
            rank_order = await shown_order(storage, respondent_id)
            assert [label for label, _ in user.inline_buttons(ranks)][:4] == [label for _, label in rank_order]
            assert "✔ Xong" in [label for label, _ in user.inline_buttons(ranks)]  # optional: may stop early
            await user.press(rank_order[0][1], ranks)
            await user.press("✔ Xong", await user.wait_for(has("lựa chọn thứ 2")))
            await user.wait_for(has("bao nhiêu tuổi"))
            await user.send_text("40")
            await user.wait_for(has("hoàn thành"))
            await settle(storage)
            session, answers, state = await session_of(storage, respondent_id)
            assert session.status == "completed"
            assert answers["priorities"] == ("thai_do", "thu_tuc", "chi_phi", "thoi_gian")
            assert answers["channel"] == "zalo" and answers["channels_rank"] == (rank_order[0][0],)
            assert answers["age"] == 40 and len(state.seed) == 16  # drawn by the chat core with Start


def numbered(text: str) -> dict[str, int]:
    """label → number of the options listed in a Zalo prompt ("  2. Zalo")."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\. (.+)$", text, re.MULTILINE)}


async def test_a_rank_typed_at_once_and_a_shuffled_list_on_zalo(database, tmp_path):
    async with emulators(tmp_path, database, (RANKING,)) as bots:
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, "zalo", "R-zl", 8200, "ranking")
            await user.send_text("1")
            first = await user.wait_for(has("lựa chọn thứ 1"))
            assert numbered(first.text) == {"Thủ tục": 1, "Thời gian chờ": 2, "Thái độ cán bộ": 3, "Chi phí": 4}
            assert "ví dụ 4 1 2 3" in first.text
            await user.send_text("2")
            second = await user.wait_for(has("lựa chọn thứ 2"))
            assert numbered(second.text) == {"Thủ tục": 1, "Thái độ cán bộ": 3, "Chi phí": 4}  # numbers kept
            await user.send_text("quay lại")
            await user.wait_for(has("Đã bỏ lựa chọn thứ 1"))
            for typed, error in (("3 1 9", "Chưa nhận ra câu trả lời “3 1 9”"), ("3 3 1", "chỉ xếp một lần")):
                await user.send_text(typed)
                await user.wait_for(has(error))
                await settle(storage)
                _, answers, state = await session_of(storage, respondent_id)
                assert state.draft == () and "priorities" not in answers  # nothing changed
            await user.send_text("3 1 4")  # the whole order at once; the one left is last
            channel = await user.wait_for(has("kênh nào"))
            order = await shown_order(storage, respondent_id)
            shown = numbered(channel.text)
            assert [label for label, _ in sorted(shown.items(), key=lambda item: item[1])] == [l for _, l in order]
            await user.send_text(str(shown["Zalo"]))  # the number as shown, in the shuffled order
            await user.wait_for(has("Xếp hạng các kênh"))
            rank_order = await shown_order(storage, respondent_id)
            await user.send_text("2")
            await user.wait_for(has("lựa chọn thứ 2"))
            await user.send_text("bỏ qua")  # optional: stops with the ranks given
            await user.wait_for(has("bao nhiêu tuổi"))
            await user.send_text("40")
            await user.wait_for(has("hoàn thành"))
            await settle(storage)
            session, answers, _ = await session_of(storage, respondent_id)
            assert session.status == "completed"
            assert answers["priorities"] == ("thai_do", "thu_tuc", "chi_phi", "thoi_gian")
            assert answers["channel"] == "zalo" and answers["channels_rank"] == (rank_order[1][0],)
