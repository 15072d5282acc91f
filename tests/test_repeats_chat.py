"""A household roster answered end to end on Telegram and on Zalo, through the real clients against the
emulators: a count from an earlier answer, a nested repeat, "add another?" typed and pressed, going
back across an instance, and the same answers stored per instance on both channels."""

from __future__ import annotations

from pathlib import Path

from storage import Storage
from surveys import codec
from tests.test_chat_scenarios import arrive, emulators, has, running, settle

ROSTER = Path(__file__).parent / "forms" / "roster.md"


#: (reply, what the next message says); "[Có, thêm]" presses that button on Telegram (typed on Zalo).
CONVERSATION = [
    ("1", "mấy người"), ("2", "Tên người thứ 1?"), ("An", "Giới tính của An?"), ("1", "Tuổi của An?"),
    ("40", "An đi khám bệnh mấy lần"), ("1", "Chi phí lần khám thứ 1 của An"), ("150", "Tên người thứ 2?"),
    ("quay lại", "hiện tại: 150"), ("175,5", "Tên người thứ 2?"), ("Bình", "Giới tính của Bình?"),
    ("2", "Tuổi của Bình?"), ("8", "Bình đi khám bệnh mấy lần"), ("0", "trồng cây gì"),
    ("Lúa", "thêm một “Cây trồng” nữa"), ("[Có, thêm]", "trồng cây gì"), ("Ngô", "thêm một “Cây trồng” nữa"),
    ("không", "Hộ có 2 người: An, Bình."),
]

EXPECTED = {
    "hh_size": 2, "member[1]/name": "An", "member[1]/sex": "1", "member[1]/age": 40, "member[1]/visits": 1,
    "member[1]/visit[1]/cost": 175.5, "member[2]/name": "Bình", "member[2]/sex": "2", "member[2]/age": 8,
    "member[2]/visits": 0, "crop[1]/crop_name": "Lúa", "crop[2]/crop_name": "Ngô", "members": 2,
    "names": "An, Bình", "total_cost": 175.5, "first_name": "An", "oldest": 40,
}


async def stored(storage: Storage, respondent_id: int) -> tuple[dict, dict, str]:
    session = await storage.latest_session(respondent_id, "roster")
    answers = {name: codec.decode_value(a.value) for name, a in (await storage.answers(session.id)).items()}
    state = codec.decode_state(session.state)
    return answers, dict(state.instances), session.status


async def test_a_roster_is_answered_the_same_on_telegram_and_zalo(database, tmp_path):
    async with emulators(tmp_path, database, (ROSTER,)) as bots:
        async with running(bots) as storage:
            outcomes = []
            for index, channel in enumerate(("telegram", "zalo")):
                respondent_id, user = await arrive(bots, storage, channel, f"H-{channel}", 8000 + index, "roster")
                for reply, expected in CONVERSATION:
                    if reply.startswith("[") and channel == "telegram":
                        prompt = user.received[-1]
                        await user.press(reply[1:-1], prompt)
                    else:
                        await user.send_text(reply.strip("[]"))
                    await user.wait_for(has(expected))
                await settle(storage)
                answers, instances, status = await stored(storage, respondent_id)
                assert status == "completed", (channel, status)
                assert {name: answers.get(name) for name in EXPECTED} == EXPECTED, channel
                assert instances == {"member": 2, "member[1]/visit": 1, "member[2]/visit": 0, "crop": 2}
                texts = [m.text or "" for m in user.received]
                assert any("Thành viên (2)" in text for text in texts), channel  # the instance is named
                outcomes.append({k: v for k, v in answers.items() if k not in ("start", "end", "today")})
            assert outcomes[0] == outcomes[1]
