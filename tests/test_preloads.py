"""Preloads from the sample frame: a form reads the sampled person's unit, group, stratum and frame
columns as `instance('respondent')/root/item/unit`. Answered end to end on Telegram and on Zalo through
the real clients against the emulators, exported, and tried with `khaosat try --frame/--preload`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bot.invitations import code_hash, new_link_code, new_typed_code
from exporters.table import export_frame
from storage import FrameRow, SampleMemberInput, SampleStratum, Storage
from surveys import codec
from surveys import engine as E
from surveys.expressions import ExpressionError, parse
from surveys.xlsform import load_questionnaire
from surveys.xpath_functions import rewrite_paths
from surveys.project import parse_survey, store_survey
from survey_toml import survey_toml
from tests.test_chat_scenarios import emulators, has, now, running, settle

PRELOAD = Path(__file__).parent / "forms" / "preload.md"
ROOT = Path(__file__).parent.parent
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def test_the_form_lists_the_attributes_it_reads_and_a_session_keeps_only_those() -> None:
    form = load_questionnaire(PRELOAD)
    assert form.preloads == ("district", "province", "stratum", "unit_name") and form.warnings == ()
    state = E.new_session(form, None, {"unit_name": "Phường Bến Nghé", "district": "Quận 1", "stratum": "s1",
                                       "group": "g", "phone": "0912345678", "size": 3})
    assert state.preloads == {"unit_name": "Phường Bến Nghé", "district": "Quận 1", "stratum": "s1"}
    assert codec.decode_state(codec.encode_state(state)) == state  # stored with the session
    step = E.step(form, E.step(form, state, E.Start(AT)).state, E.Choose("yes", 1, AT))
    assert step.say[-1].text == "Quý vị đánh giá thế nào về Phường Bến Nghé (Quận 1)?"
    # A stratum read by a relevance: 'pilot' people are not asked why.
    pilot = E.new_session(form, None, {"unit_name": "Xã A", "stratum": "pilot"})
    state = E.step(form, E.step(form, pilot, E.Start(AT)).state, E.Choose("yes", 1, AT)).state
    done = E.step(form, state, E.Reply("1", AT))
    assert done.state.status is E.Status.COMPLETED and done.state.answers["why"] is E.NOT_APPLICABLE
    assert done.state.answers["district"] == ""  # not in the frame: empty, as ODK reads a missing node


def test_a_respondent_path_reads_the_session_preloads_and_is_never_remembered_across_sessions() -> None:
    expression = parse(rewrite_paths("concat(instance('respondent')/root/item/unit, '/', "
                                     "instance( \"respondent\" ) / root / item / group)"))
    from surveys.expressions import Environment
    assert expression.evaluate(Environment(preloads={"unit": "U1", "group": "G"})) == "U1/G"
    assert expression.evaluate(Environment()) == "/"
    assert not expression.answers_only  # the engine's per-form memo must not share it between people
    with pytest.raises(ExpressionError):  # another secondary instance without a key is not a preload
        parse(rewrite_paths("instance('units')/root/item/name"))


def _frame() -> tuple[list[FrameRow], list[SampleMemberInput]]:
    rows = [FrameRow(f"F{n}", "citizen", unit, unit, orjson.dumps({"district": district}).decode())
            for n, (unit, district) in enumerate((("xa-a", "Quận 1"), ("xa-b", "Huyện Cần Giờ")))]
    return rows, [SampleMemberInput(row.frame_id, row.group, "preload", row.stratum, 0.5) for row in rows]


async def _invite(storage: Storage, respondent_id: int) -> tuple[str, str]:
    typed, link = new_typed_code(), new_link_code()
    await storage.issue_invitation(respondent_id, "typed", code_hash(typed), now().isoformat())
    await storage.issue_invitation(respondent_id, "link", code_hash(link), now().isoformat())
    return typed, link


async def test_sampled_people_see_their_own_unit_on_telegram_and_zalo_and_it_is_exported(tmp_path, database):
    async with emulators(tmp_path, database, (PRELOAD,)) as bots:
        async with running(bots) as storage:
            today = now().date()
            source = survey_toml("sv", "Khảo sát thử", "preload", communes=("a", "b"),
                                 opens=(today - dt.timedelta(days=1)).isoformat(),
                                 closes=(today + dt.timedelta(days=30)).isoformat())
            await store_survey(storage, parse_survey(source), source, "survey.toml", now().isoformat())
            rows, members = _frame()
            strata = [SampleStratum("citizen", unit, 2, 1, 0) for unit in ("xa-a", "xa-b")]
            await storage.record_sample("sv", members, strata, source="imported", seed=None, frame_sha256=None,
                                        params="{}", at=now().isoformat(), frame=rows)
            people = {m.frame_id: m.respondent_id for m in await storage.sample_members("sv")}
            for channel, frame_id, chat in (("telegram", "F0", 8100), ("zalo", "F1", 8101)):
                typed, link = await _invite(storage, people[frame_id])
                if channel == "telegram":
                    user = bots.telegram.user(chat)
                    await user.start(link)
                else:
                    user = bots.zalo.user(f"zl-{chat}")
                    await user.send_text(typed)
                await user.wait_for(has("đồng ý tham gia"))
                await user.send_text("1")
                unit, district = ("Xã A", "Quận 1") if frame_id == "F0" else ("Xã B", "Huyện Cần Giờ")
                await user.wait_for(has(f"đánh giá thế nào về {unit} ({district})?"))
                await user.send_text("1")
                await user.wait_for(has(f"chưa hài lòng với {unit}?"))
                await user.send_text("Phải chờ lâu")
                await user.wait_for(has(f"Cảm ơn ý kiến của quý vị về {unit}, Tỉnh."))
            await settle(storage)
            table = await export_frame(storage, "preload")
    df = table.df.sort_values("respondent")
    assert sorted(df["unit"]) == ["Xã A", "Xã B"] and list(df["province"]) == ["Tỉnh"] * 2
    assert sorted(df["district"]) == ["Huyện Cần Giờ", "Quận 1"]
    assert list(df["why"]) == ["Phải chờ lâu"] * 2


def _try(*arguments: str, replies: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "try", str(PRELOAD), *arguments], input=replies,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_khaosat_try_takes_the_preloads_from_a_frame_row_or_flags(tmp_path):
    frame = tmp_path / "frame.csv"
    frame.write_text("frame_id,group,unit_name,stratum,district,name,phone\n"
                     "A1,dv,Phường Bến Nghé,s1,Quận 1,Nguyễn Văn A,0912345678\n", encoding="utf-8")
    result = _try("--frame", str(frame), "--frame-id", "A1", "--preload", "district=Q.1", replies="yes\n2\n")
    assert result.returncode == 0, result.stderr
    assert "Quý vị đánh giá thế nào về Phường Bến Nghé (Q.1)?" in result.stdout  # a flag wins over the row
    assert "Cảm ơn ý kiến của quý vị về Phường Bến Nghé, ." in result.stdout  # no province given: empty
    missing = _try("--preload", "unit_name=Xã A", replies="yes\n2\n")
    assert missing.returncode == 0 and "district, province, stratum, not given" in missing.stderr
    for arguments, message in ((("--frame", str(frame), "--frame-id", "Z9"), "no row has frame_id 'Z9'"),
                               (("--preload", "unit"), "--preload 'unit': write it as NAME=VALUE"),
                               (("--frame", str(frame)), "--frame and --frame-id go together")):
        refused = _try(*arguments, replies="")
        assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr
