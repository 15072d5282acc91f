"""Paper mode end to end on a real database: print the forms (HTML, and PDF with Chromium), type
answers for some of them twice with one difference, resolve it, and find the answers in the export
with mode = paper; skip instructions in words; status and progress show response rates by mode."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fieldwork import Refused
from fieldwork.paper import find_form, form_state, print_forms, save_entry
from fieldwork.paper_entry import check
from storage import open_storage
from surveys.phrasing import Phraser
from surveys.xlsform import load_questionnaire

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "surveys" / "templates"
FORMS = ROOT / "tests" / "forms" / "survey"
ZONE = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 8, 21, 12, 0, tzinfo=ZONE)
T0 = "2026-07-01T08:00:00+07:00"

#: A complete, valid SIPAS answer as typed from paper: codes as printed (co = 1, khong = 2 …).
ANSWERS = {
    "doi_tuong": "1", "linh_vuc": "2", "co_quan": "1", "ngay_nhan_ket_qua": "01/08/2026", "kenh": "2 1",
    "co_gop_y": "2", "tc_cho_ngoi": "3", "tc_trang_thiet_bi": "3", "tc_truc_tuyen": "4", "tc_thong_tin": "4",
    "tt_cong_khai": "1", "tt_ho_so_dung_qd": "4", "tt_phi_dung_qd": "4", "tt_thoi_han": "4",
    "tt_so_lan_di_lai": "1", "cc_lich_su": "5", "cc_lang_nghe": "5", "cc_huong_dan": "5", "cc_tuan_thu": "5",
    "kq_dung_hen": "1", "kq_dung_quy_dinh": "4", "kq_thong_tin": "4", "hai_long_chung": "4", "nam_sinh": "1980",
    "gioi_tinh": "1", "hoc_van": "2",
}


async def build_survey(tmp_path: Path, db: Path | str | None = None) -> tuple[object, Path | str]:
    """The test survey with its questionnaires loaded and a sample drawn (nobody invited yet), in
    ``db`` (an SQLite file by default, or a PostgreSQL URL)."""
    from fieldwork.surveys import check_survey, store_checked
    from surveys.sampling import draw_sample, import_frame_file

    db = db or tmp_path / "paper.sqlite"
    frame = tmp_path / "frame.csv"
    rows = ["id,group,unit,name,phone"]
    for unit, size in {"xa-a": 120, "xa-b": 80, "xa-c": 40}.items():
        rows += [f"{unit}-{i:03d},citizen,{unit},Người {unit} {i},09{i:08d}" for i in range(size)]
    frame.write_text("\n".join(rows) + "\n", encoding="utf-8")
    checked = check_survey(FORMS / "survey.toml", (TEMPLATES / "sipas_citizen.md", TEMPLATES / "par_index_officials.md"))
    async with await open_storage(db) as storage:
        loaded = await store_checked(storage, checked, dt.datetime.fromisoformat(T0))
        await import_frame_file(storage, loaded.project, frame, T0)
        await draw_sample(storage, loaded.project, 1, T0)
    return loaded.project, db


@pytest.fixture
async def survey(tmp_path, database):
    return await build_survey(tmp_path, database)


def test_skip_instructions_are_phrased_from_relevant():
    form = load_questionnaire(TEMPLATES / "sipas_citizen.md")
    vi, en = Phraser(form, "vi"), Phraser(form, "en")
    group = form.groups["xu_ly_gop_y"].relevant
    assert vi.condition(group) == "câu 6 = 1 (Có)"
    assert en.condition(group) == "Q6 = 1 (Yes)"
    assert vi.condition(form.question("tc_cho_ngoi").relevant) == "câu 5 có chọn 1 (Trực tiếp tại bộ phận một cửa)"
    assert vi.condition(form.question("kq_thong_tin").relevant) == "câu 20 ≠ 4 (Chưa nhận được kết quả)"
    # A shape not phrased in words falls back to the condition made readable, with question numbers.
    from surveys.expressions import parse

    odd = parse("string-length(${nam_sinh}) > 2 or ${linh_vuc} != 'khac'")
    assert vi.condition(odd) == "string-length(câu 28) > 2 hoặc câu 2 ≠ 'khac'"


async def test_paper_round_trip(survey, tmp_path):
    project, db = survey
    out = tmp_path / "printed"
    async with await open_storage(db) as storage:
        people = [m.respondent_id for m in await storage.sample_members(project.id, "main")
                  if m.stratum == "citizen/xa-b"]
        printed = await print_forms(storage, project, out, NOW, units=["xa-b"])
        assert printed.count == len(people) > 3
        page = printed.files["html"].read_text(encoding="utf-8")
        # Vietnamese first, English beneath, codes beside choices, skips in words, required marks.
        assert page.index("Quý vị trả lời phiếu này") < page.index("In what capacity")
        assert "Nếu câu 6 = 1 (Có), trả lời câu 23–26; nếu không, chuyển sang câu 27." in page
        assert "If Q6 = 1 (Yes), answer Q23–26; otherwise go to Q27." in page
        assert "Năm sinh phải từ 1920 đến 2008." in page and 'class="req"' in page
        assert page.count('<section class="paper">') == len(people)
        if shutil.which("chromium"):
            assert printed.files["pdf"].read_bytes().startswith(b"%PDF")
        codes = [row.split(",")[-1].strip() for row in
                 printed.files["csv"].read_text(encoding="utf-8-sig").splitlines()[1:]]
        assert all(re.fullmatch(r"[0-9A-Z]{4} [0-9A-Z]{4}", code) for code in codes)
        assert all(code in page for code in codes)
        # Printing again prints nobody new and keeps the first files.
        with pytest.raises(Refused):
            await print_forms(storage, project, out, NOW, units=["xa-b"])
        assert (await storage.get_respondent(people[0])).disposition == "invited"

        # Entry 1 and entry 2 of the first form differ in one answer; a third action resolves it.
        first = await find_form(storage, codes[0].lower().replace(" ", "-"))
        assert first is not None and first.respondent_id in people
        saved = await save_entry(storage, first.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        assert saved.stored and not saved.written
        with pytest.raises(Refused, match="another person"):
            await save_entry(storage, first.id, 2, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        saved = await save_entry(storage, first.id, 2, {**ANSWERS, "hai_long_chung": "5"}, "vi", account_id=2,
                                 username="binh", at=NOW)
        assert saved.stored and not saved.written and saved.differing == ("hai_long_chung",)
        state = await form_state(storage, first.id)
        assert state.next_pass == 3 and state.typed(1)["hai_long_chung"] == "4"
        saved = await save_entry(storage, first.id, 3, {**ANSWERS, "hai_long_chung": "5"}, "vi", account_id=3,
                                 username="chi", at=NOW)
        assert saved.written
        # The second form: both entries agree, so it is written at once; the third is typed once only.
        second = await find_form(storage, codes[1])
        await save_entry(storage, second.id, 1, {**ANSWERS, "co_gop_y": "1", "gy_hinh_thuc": "1", "gy_de_dang": "4",
                                                  "gy_tich_cuc": "4", "gy_kip_thoi": "3"}, "vi",
                         account_id=1, username="an", at=NOW)
        saved = await save_entry(storage, second.id, 2, {**ANSWERS, "co_gop_y": "1", "gy_hinh_thuc": "1",
                                                          "gy_de_dang": "4", "gy_tich_cuc": "4", "gy_kip_thoi": "3"},
                                 "vi", account_id=2, username="binh", at=NOW)
        assert saved.written
        third = await find_form(storage, codes[2])
        await save_entry(storage, third.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        # A value the form refuses is not stored: the engine's own message.
        refused = await save_entry(storage, third.id, 2, {**ANSWERS, "nam_sinh": "1890"}, "vi", account_id=2,
                                   username="binh", at=NOW)
        assert not refused.stored and "1920" in refused.checked.errors["nam_sinh"]
        # Writing is idempotent: the same resolution again is refused, nothing doubles.
        with pytest.raises(Refused, match="already session"):
            await save_entry(storage, first.id, 3, ANSWERS, "vi", account_id=3, username="chi", at=NOW)
        session = await storage.get_session(saved.session_id)
        assert session.channel == "paper" and session.status == "completed"
        assert (await storage.get_respondent(second.respondent_id)).disposition == "completed"
        history = await storage.disposition_history(first.respondent_id)
        assert [h["status"] for h in history][-2:] == ["started", "completed"]
        assert history[-1]["reason"].endswith("completed (paper)")  # the final disposition and its mode

    from fieldwork.data import ExportOptions, export

    csv_path = tmp_path / "answers.csv"
    async with await open_storage(db) as storage:
        await export(storage, csv_path, ExportOptions("csv", "wide", "sipas_citizen_example", "vi", False))
    table = pd.read_csv(csv_path, dtype=str, encoding="utf-8-sig")
    assert list(table["mode"]) == ["paper", "paper"]
    assert sorted(table["hai_long_chung"]) == ["4", "5"]
    by_session = table.set_index("gy_hinh_thuc", drop=False)
    assert set(table["co_gop_y"]) == {"khong", "co"} and "co" in set(by_session["gy_hinh_thuc"].dropna())


def test_checking_a_paper_entry_uses_the_forms_logic():
    form = load_questionnaire(TEMPLATES / "sipas_citizen.md")
    at = NOW
    result = check(form, {**ANSWERS, "gy_hinh_thuc": "1", "nam_sinh": "1890"}, at, "vi")
    assert result.status["gy_hinh_thuc"] == "skip" and result.ignored == ("gy_hinh_thuc",)
    assert result.errors["nam_sinh"].startswith("Năm sinh phải từ 1920 đến 2008.") and not result.ok
    # A required question refused stops the check there: what follows cannot be judged yet.
    assert result.status["gioi_tinh"] == "pending"
    unknown = check(form, {**ANSWERS, "tc_truc_tuyen": "9"}, at, "vi")
    assert "“9”" in unknown.errors["tc_truc_tuyen"] and unknown.status["tc_thong_tin"] == "pending"
    assert check(form, ANSWERS, at, "vi").ok


async def test_status_shows_rates_by_mode(survey, tmp_path):
    project, db = survey
    async with await open_storage(db) as storage:
        await print_forms(storage, project, tmp_path / "out", NOW, units=["xa-b"], pdf=False)
        code = (tmp_path / "out" / "paper-forms.csv").read_text(encoding="utf-8-sig").splitlines()[1].split(",")[-1]
        paper = await find_form(storage, code)
        await save_entry(storage, paper.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        await save_entry(storage, paper.id, 2, ANSWERS, "vi", account_id=2, username="binh", at=NOW)
    run = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db), "--at", NOW.isoformat(),
                          "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    paper_mode = next(m for m in data["modes"] if m["mode"] == "paper")
    assert paper_mode["completed"] == 1 and paper_mode["rr1"] == pytest.approx(1 / data["rows"][-1]["sampled"])
    text = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db), "--at", NOW.isoformat(),
                           "--format", "text"], capture_output=True, text=True, cwd=ROOT).stdout
    assert "Giấy: 1" in text
    table = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db), "--at", NOW.isoformat()],
                           capture_output=True, text=True, cwd=ROOT).stdout
    assert re.search(r"paper\s.*\s1\s.*\s0\s.*\s0\s.*%", table), table


def test_cli_paper_print(survey, tmp_path):
    project, db = survey
    out = tmp_path / "forms"
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", "paper", "print", "--db", str(db),
                                     "--out", str(out), *a], capture_output=True, text=True, cwd=ROOT)
    bad = run("--unit", "xa-z")
    assert bad.returncode == 1 and "no unit xa-z" in bad.stderr and not out.exists() or not any(out.iterdir())
    done = run("--unit", "xa-c", "--no-pdf")
    assert done.returncode == 0, done.stderr
    assert "Printed" in done.stdout and (out / "paper-forms.html").exists() and not (out / "paper-forms.pdf").exists()
    again = run("--unit", "xa-c", "--reissue", "--no-pdf")
    assert again.returncode == 0 and (out / "paper-forms-2.html").exists()


async def test_the_mode_column_is_in_every_export_format(survey, tmp_path):
    import pyreadstat

    from fieldwork.data import EXPORT_FORMATS, EXPORT_SUFFIX, ExportOptions, export

    project, db = survey
    async with await open_storage(db) as storage:
        await print_forms(storage, project, tmp_path / "out", NOW, units=["xa-c"], pdf=False)
        code = (tmp_path / "out" / "paper-forms.csv").read_text(encoding="utf-8-sig").splitlines()[1].split(",")[-1]
        paper = await find_form(storage, code)
        await save_entry(storage, paper.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        await save_entry(storage, paper.id, 2, ANSWERS, "vi", account_id=2, username="binh", at=NOW)
        readers = {"csv": lambda p: pd.read_csv(p, encoding="utf-8-sig"), "xlsx": lambda p: pd.read_excel(p),
                   "sav": lambda p: pyreadstat.read_sav(str(p))[0], "dta": lambda p: pd.read_stata(p),
                   "parquet": lambda p: pd.read_parquet(p)}
        for file_format in EXPORT_FORMATS:
            out = tmp_path / f"answers{EXPORT_SUFFIX[file_format]}"
            await export(storage, out, ExportOptions(file_format, "wide", "sipas_citizen_example", "vi", False))
            table = readers[file_format](out)
            assert list(table["mode"]) == ["paper"], file_format


def _forms_that_load() -> list[Path]:
    """The real forms pyxform converts (those it refuses are refused, tests/test_real_forms.py),
    the lenient ones and the tour."""
    from tests.test_real_forms import pyxform_converts

    real = [p for p in sorted((ROOT / "tests" / "forms" / "real").glob("*/*.xls*")) if pyxform_converts(p)]
    paths = real + sorted((ROOT / "tests" / "forms" / "lenient").glob("*.md")) + [ROOT / "tests" / "forms" / "tour.md"]
    return [p for p in paths if not _requires_media(p)]


def _requires_media(path: Path) -> bool:
    return any(q.type.is_media and q.required is not None and q.required.source.strip() not in ("false()", "0")
               for q in load_questionnaire(path).questions)


_PAPER_MEDIA = """| survey |
| | type | name | label | required |
| | text | shop | Name of the shop? | yes |
| | image | front | A photo of the front? | {required} |
| | audio | story | Tell it? | |
| | text | wait | Anything else? | |
"""


def test_a_media_question_is_not_on_paper_and_a_required_one_refuses_the_form(tmp_path):
    from fieldwork import Refused
    from fieldwork.paper_form import Copy, FormPrinter

    required, optional = tmp_path / "required.md", tmp_path / "optional.md"
    required.write_text(_PAPER_MEDIA.format(required="yes"), encoding="utf-8")
    optional.write_text(_PAPER_MEDIA.format(required=""), encoding="utf-8")
    with pytest.raises(Refused, match=r"requires a photo, recording or file \(front\)"):
        FormPrinter(load_questionnaire(required))
    form = load_questionnaire(optional)
    page = FormPrinter(form).copy(Copy("AAAA BBBB", "t"))
    assert page.count("Không trả lời trên giấy") == 2 and page.count('class="q"') == len(form.asked)
    result = check(form, {"shop": "Minh", "front": "ảnh", "wait": "không"}, NOW, "vi")
    assert result.ok and "front" not in result.errors


@pytest.mark.parametrize("path", _forms_that_load(), ids=lambda p: p.name)
def test_every_form_that_loads_prints_and_checks(path):
    """Real forms by others and the lenient ones (with repeats too): printing and the entry check
    never fail, and the entry screen has a field for every question printed (in each block)."""
    from fieldwork.paper_form import Copy, FormPrinter
    from fieldwork.paper_repeats import typed_fields

    form = load_questionnaire(path)
    page = FormPrinter(form).copy(Copy("AAAA BBBB", "t"))
    fields = {key for key, _ in typed_fields(form)}
    assert page.count('class="q"') == len(fields) and "${" not in page
    if not form.has_repeats:
        assert fields == {q.name for q in form.asked}
    status = check(form, {}, NOW).status
    assert fields <= set(status) and all("[" in key for key in set(status) - fields)


async def test_a_full_stratum_stops_a_paper_form_like_a_chat(survey, tmp_path):
    """Hard quota (citizen/xa-a: 20): with every slot taken, the typed form is not written, the
    person is quota-full, and the entries stay."""
    project, db = survey
    async with await open_storage(db) as storage:
        members = sorted(m.respondent_id for m in await storage.sample_members(project.id, "main")
                         if m.stratum == "citizen/xa-a")
        for rid in members[1:21]:
            assert await storage.reserve_quota_slot(project.id, "citizen/xa-a", rid, 20, T0)
        await print_forms(storage, project, tmp_path / "out", NOW, units=["xa-a"], pdf=False)
        form_code = {row.split(",")[0]: row.split(",")[-1] for row in
                     (tmp_path / "out" / "paper-forms.csv").read_text(encoding="utf-8-sig").splitlines()[1:]}
        person = await storage.get_respondent(members[0])
        paper = await find_form(storage, form_code[person.external_id])
        await save_entry(storage, paper.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        with pytest.raises(Refused, match="stratum may be full"):
            await save_entry(storage, paper.id, 2, ANSWERS, "vi", account_id=2, username="binh", at=NOW)
        assert (await storage.get_respondent(members[0])).disposition == "quota_full"
        state = await form_state(storage, paper.id)
        assert not state.written and set(state.entries) == {1, 2}


async def test_a_paper_form_prints_the_privacy_text_and_records_its_consent(survey, tmp_path):
    """The printed form carries the survey's consent text in both languages and its version; the
    written entry records that consent (channel "paper") through the chat's consent record."""
    from surveys.privacy import notice_of

    project, db = survey
    async with await open_storage(db) as storage:
        printed = await print_forms(storage, project, tmp_path / "printed", NOW, units=["xa-c"], pdf=False)
        page = printed.files["html"].read_text(encoding="utf-8")
        notice = notice_of(project, "")
        vi, en = notice.consent("vi", "paper"), notice.consent("en", "paper")
        assert "91/2025/QH15" in page and "Bên kiểm soát dữ liệu" in page and "Data controller" in page
        assert page.count(f"Phiên bản {vi.version} / Version {en.version}") == printed.count
        assert "nước ngoài" not in page  # no messenger involved
        code = printed.files["csv"].read_text(encoding="utf-8-sig").splitlines()[1].split(",")[-1].strip()
        form = await find_form(storage, code)
        assert await storage.consents_of(form.respondent_id) == []
        await save_entry(storage, form.id, 1, ANSWERS, "vi", account_id=1, username="an", at=NOW)
        saved = await save_entry(storage, form.id, 2, ANSWERS, "vi", account_id=2, username="binh", at=NOW)
        assert saved.written
        (consent,) = await storage.consents_of(form.respondent_id)
        assert (consent.channel, consent.version, consent.text) == ("paper", vi.version, vi.text)
