"""Retention (`khaosat purge`, and the same pass in `khaosat run`), the privacy texts as data, and
consent records that reproduce the exact text shown. Real SQLite, the real command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from fieldwork.conversations import Conversations
from fieldwork.privacy import retention_pass
from storage import OutgoingMessage, open_storage
from surveys import engine
from surveys.privacy import PrivacyNotice, PrivacyPolicy, add_working_days, deadlines, defaults, notice_of
from surveys.project import SurveyError, parse_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from surveys.xlsform import load_questionnaire
from tests.survey_toml import survey_toml

ROOT = Path(__file__).resolve().parents[1]
ZONE = dt.timezone(dt.timedelta(hours=7))
FORM = """\
| survey |
|        | type    | name | label::Tiếng Việt (vi) | label::English (en) | required |
|        | integer | q1   | Câu 1                  | Question 1          | yes      |
|        | integer | q2   | Câu 2                  | Question 2          | yes      |
| settings |
|          | form_id  | version | form_title | default_language |
|          | ret_form | t1      | Thử        | Tiếng Việt (vi)  |
"""
SURVEY = survey_toml("ret-2026", "Thử lưu giữ", "ret_form", extra="[privacy]\nretention_days = 30\n")
OPENED = dt.datetime(2026, 8, 2, 9, 0, tzinfo=ZONE)


async def fielded(tmp_path: Path, db: Path | str | None = None) -> tuple[Path | str, list[int]]:
    """Three people of a closed-on-31-August survey: names and phones, codes, chats, messages,
    and answers from the first; and one walk-in of open mode (chat only). ``db``: where (an
    SQLite path by default, or a PostgreSQL URL)."""
    db = db or tmp_path / "r.sqlite"
    form_path = tmp_path / "form.md"
    form_path.write_text(FORM, encoding="utf-8")
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit,name,phone\n" + "".join(f"a{i},citizen,xa-a,Người {i},+8490000000{i}\n"
                                                            for i in range(3)), encoding="utf-8")
    project = parse_survey(SURVEY)
    at = OPENED.isoformat()
    async with await open_storage(db) as storage:
        await store_survey(storage, project, SURVEY, "survey.toml", at)
        await import_frame_file(storage, project, frame, at)
        await draw_sample(storage, project, 1, at)
        conversations = Conversations(storage)
        form = load_questionnaire(form_path)
        await conversations.register(form, form_path.read_bytes(), "form.md", OPENED)
        ids = sorted(m.respondent_id for m in await storage.sample_members(project.id, "main"))
        for n, rid in enumerate(ids):
            await storage.issue_invitation(rid, "link", f"hash-{rid}", at)
            await storage.link_chat("telegram", "t", str(1000 + n), rid, at)
            await storage.log_link_attempt("telegram", "t", str(1000 + n), "linked", at, key=f"attempt-{rid}")
            await storage.enqueue([OutgoingMessage("telegram", "t", str(1000 + n), "sendMessage",
                                                   '{"chat_id": %d, "text": "Câu 1"}' % (1000 + n),
                                                   dedupe_key=f"m-{rid}", respondent_id=rid)], at)
        # Someone who came through an open code: not in the sample, named by their Telegram user id.
        walk_in = await storage.add_respondent("telegram:t:user:42", form_id="ret_form", stratum="citizen/xa-a", at=at)
        await storage.link_chat("telegram", "t", "42", walk_in.id, at)
        record, _ = await conversations.open_for(ids[0], form, "telegram", None, OPENED)
        for n, event in enumerate([engine.Start(at=OPENED), engine.Reply("yes", at=OPENED),
                                   engine.Reply("7", at=OPENED)]):
            await conversations.handle(record.id, event, f"e{n}")
        sent = await storage.due_messages("telegram", "t", at, 10)
        for message in sent:
            await storage.mark_sending(message.id, at)
            await storage.mark_sent(message.id, at, "{\"ok\": true}")
    return db, ids


async def purge(db: Path, *args: str):
    """`khaosat purge`, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, main, ["purge", "--db", str(db), *args])


async def test_retention_purges_contact_data_after_close_and_keeps_answers(tmp_path):
    db, ids = await fielded(tmp_path)
    # Before 31 August + 30 days the data is kept, whatever the command says.
    early = await purge(db, "--at", "2026-09-30T23:00:00+07:00")
    assert early.exit_code == 0, early.output
    assert "ret-2026: kept until 01/10/2026" in early.output
    dry = await purge(db, "--dry-run", "--at", "2026-10-01T08:00:00+07:00")
    assert dry.exit_code == 0, dry.output
    assert ("ret-2026: would delete 3 names, 3 phones, 3 frame rows with name/phone, 4 chat links (chat ids), "
            "3 invitation codes, 1 messenger account ids, 3 link attempts") in dry.output
    assert "Dry run: nothing was deleted." in dry.output
    async with await open_storage(db) as storage:
        assert (await storage.personal(ids[0])).name == "Người 0"  # the dry run deleted nothing
        assert len(await storage.chats_of(ids[1])) == 1
        session = await storage.latest_session(ids[0], "ret_form")
        answers_before = {k: v.value for k, v in (await storage.answers(session.id)).items()}
    done = await purge(db, "--at", "2026-10-01T08:00:00+07:00")
    assert done.exit_code == 0, done.output
    assert "ret-2026: deleted 3 names, 3 phones, 3 frame rows" in done.output
    async with await open_storage(db) as storage:
        for rid in ids:
            assert (await storage.personal(rid)).name is None and (await storage.personal(rid)).phone is None
            assert await storage.chats_of(rid) == []
        assert await storage._fetchall("SELECT 1 FROM invitations") == []
        assert await storage._fetchall("SELECT 1 FROM frame_personal") == []
        assert await storage._fetchall("SELECT 1 FROM link_attempts") == []
        assert await storage._fetchall("SELECT 1 FROM outbox WHERE chat_id <> '' OR payload LIKE '%chat_id%'") == []
        # Answers stay, under the pseudonym.
        session = await storage.latest_session(ids[0], "ret_form")
        assert {k: v.value for k, v in (await storage.answers(session.id)).items()} == answers_before
        assert answers_before["q1"] == "7"
        walk_in = (await storage.list_respondents("ret_form"))[-1]
        assert walk_in.external_id == f"erased:{walk_in.id}" and await storage.chats_of(walk_in.id) == []
        (entry,) = await storage.privacy_log(survey_id="ret-2026")
        assert entry["action"] == "retention_purge" and entry["detail"]["names"] == 3
    # Idempotent: a second pass (the hourly one in `khaosat run`, here its function) finds nothing.
    async with await open_storage(db) as storage:
        (again,) = await retention_pass(storage, dt.datetime(2026, 10, 2, 8, tzinfo=ZONE), dry_run=False)
        assert again.due and not any(again.counts.values())
        assert len(await storage.privacy_log(survey_id="ret-2026")) == 1
    again = await purge(db, "--at", "2026-10-03T08:00:00+07:00")
    assert "deleted 0 names, 0 phones" in again.output


async def test_unknown_surveys_and_requests_are_one_clear_line(tmp_path):
    db, _ids = await fielded(tmp_path)
    result = await purge(db, "--survey", "khong-co", "--dry-run")
    assert result.exit_code == 1
    assert "--survey khong-co: no such survey" in result.output and "Traceback" not in result.output
    unknown = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "fulfil", "99", "--db", str(db)])
    assert unknown.exit_code == 1 and "rights request 99: no such request" in unknown.output
    listed = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "requests", "--db", str(db)])
    assert listed.exit_code == 0 and "No requests." in listed.output
    async with await open_storage(db) as storage:
        request, _ = await storage.open_rights_request(_ids[1], kind="withdraw_delete", channel="zalo", bot="z",
                                                       language="vi", at=OPENED.isoformat(),
                                                       acknowledge_by="2026-08-04", handle_by="2026-08-17")
    listed = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "requests", "--survey", "ret-2026",
                                                                "--db", str(db)])
    assert listed.output.split()[0] == str(request.id) and "handle by 2026-08-17" in listed.output
    wrong = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "requests", "--survey", "khac",
                                                               "--db", str(db)])
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output


# -- the texts as data ------------------------------------------------------------------------------

def test_consent_states_purpose_controller_retention_rights_and_abroad_per_channel():
    project = parse_survey(survey_toml("t", "Thử", "f", extra='[organiser]\nname = "Sở Nội vụ tỉnh A"\n'
                                                              '[privacy]\nretention_days = 90\n'))
    notice = notice_of(project, "")
    for language, words in {"vi": ("Mục đích", "Sở Nội vụ tỉnh A", "90 ngày", "/stop", "/xoa", "91/2025/QH15",
                                   "356/2025/NĐ-CP"),
                            "en": ("Purpose", "Sở Nội vụ tỉnh A", "90 days", "/stop", "/delete", "91/2025/QH15",
                                   "356/2025/NĐ-CP")}.items():
        telegram, zalo = notice.consent(language, "telegram"), notice.consent(language, "zalo")
        assert all(word in telegram.text for word in words), (language, telegram.text)
        assert ("nước ngoài" if language == "vi" else "abroad") in telegram.text
        assert ("nước ngoài" if language == "vi" else "abroad") not in zalo.text
        assert telegram.sha256 != zalo.sha256 and telegram.version == zalo.version == defaults()["version"]
        assert notice.consent(language, "telegram") == telegram  # the same inputs give the same text
    vi = notice.consent("vi", "telegram").text
    assert "quý vị" in vi.casefold() and not re.search(r"\bbạn\b", vi.casefold()) and '"' not in vi  # house style
    assert vi.endswith("Quý vị có đồng ý tham gia không?")


def test_a_survey_may_replace_the_texts_and_bad_values_name_the_key():
    own = parse_survey(survey_toml("t", "Thử", "f", extra='[privacy]\nversion = "2027.2"\n'
                                                          'consent = { vi = "Đồng ý cho {title}? ({controller})" }\n'
                                                          'controller = "UBND tỉnh B"\n'))
    shown = notice_of(own, "").consent("vi", "zalo")
    assert (shown.text, shown.version) == ("Đồng ý cho Thử? (UBND tỉnh B)", "2027.2")
    with pytest.raises(SurveyError) as refused:
        parse_survey(survey_toml("t", "Thử", "f", extra='[privacy]\nretention_days = -3\nconsent = "Xin {ten}"\n'
                                                         'colour = "red"\n'))
    text = str(refused.value)
    assert "privacy.retention_days" in text and "privacy.consent.vi: unknown placeholder" in text
    assert "privacy.colour: unknown key" in text
    # A project stored before [privacy] keeps its hash (its JSON has no privacy key).
    plain = parse_survey(survey_toml("t", "Thử", "f"))
    assert plain.privacy == PrivacyPolicy() and '"privacy"' not in plain.to_json()
    assert type(plain).from_json(own.to_json()) == own


def test_deadlines_come_from_the_data_file():
    table = defaults()["deadlines"]
    assert (table["acknowledge_working_days"], table["handle_days"]) == (2, 15)  # Decree 356/2025/NĐ-CP
    friday = dt.date(2026, 12, 4)
    due = deadlines(friday)
    assert due.acknowledge_by == dt.date(2026, 12, 8) == add_working_days(friday, 2)  # Mon, Tue
    assert due.handle_by == dt.date(2026, 12, 19)
    assert PrivacyNotice("x").retention_days == defaults()["retention_days"]


def test_a_surveys_public_holidays_are_not_working_days_for_the_deadlines():
    """30 April and 1 May 2026 fall on a Thursday and a Friday: a request opened on Wednesday 29
    April is acknowledged by Tuesday 5 May, not by Friday 1 May; the 15 days stay calendar days."""
    project = parse_survey(survey_toml("t", "Thử", "f", extra='[privacy]\nholidays = [2026-04-30, "2026-05-01"]\n'))
    assert project.privacy.holidays == ("2026-04-30", "2026-05-01")
    assert type(project).from_json(project.to_json()) == project  # stored with the survey and read back
    opened = dt.date(2026, 4, 29)
    assert deadlines(opened).acknowledge_by == dt.date(2026, 5, 1)
    due = deadlines(opened, project.privacy.holiday_dates())
    assert due.acknowledge_by == dt.date(2026, 5, 5) and due.handle_by == dt.date(2026, 5, 14)
    with pytest.raises(SurveyError) as refused:
        parse_survey(survey_toml("t", "Thử", "f", extra='[privacy]\nholidays = ["2026-02-30", 2026-04-30T08:00:00]\n'))
    text = str(refused.value)
    assert "privacy.holidays[1]: '2026-02-30' is not a date" in text and "privacy.holidays[2]" in text
    with pytest.raises(SurveyError, match=r"privacy.holidays: must be a list of dates"):
        parse_survey(survey_toml("t", "Thử", "f", extra='[privacy]\nholidays = "30/4"\n'))


def test_no_text_cites_decree_13_as_the_law_in_force():
    """Decree 13/2023/NĐ-CP was replaced on 1 January 2026 by Law 91/2025/QH15 (and Decree 356/2025/NĐ-CP):
    no respondent- or operator-facing text, nor any code or template, may cite it. Only the history
    notes of the README and docs/privacy.md may name it, as replaced."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    citing = []
    for name in tracked:
        path = ROOT / name
        if name.startswith("tests/forms/real/") or path.suffix not in (".py", ".md", ".toml", ".html", ".csv", ".txt"):
            continue
        if name == Path(__file__).relative_to(ROOT).as_posix():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if re.search(r"13/2023", line) and not (name in ("README.md", "docs/privacy.md") and "replaced" in line):
                citing.append(f"{name}:{number}: {line.strip()}")
    assert citing == []
    for text in (defaults()["law"]["vi"], defaults()["law"]["en"]):
        assert "91/2025/QH15" in text and "356/2025/NĐ-CP" in text
