"""Browser tests of the fieldwork and data pages: a frame with errors is shown line by line and
nothing is stored, a good one is imported, the allocation previewed and the sample drawn; an
analyst downloads SAV and XLSX exports and reads them back, uploads a design and scoring rules
and gets the scores; viewers and coordinators of other surveys or units get 403, downloads too.
Jobs run in their own processes, as in production."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pandas as pd
import pyreadstat
import pytest
from playwright.sync_api import expect

from storage import open_storage
from tests.browser.conftest import FORMS, NOW, run_async

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GOOD_FRAME = "\n".join(["id,group,unit,name,phone,gender"]
                       + [f"c{i},citizen,xa-{'abc'[i % 3]},Người {i},," for i in range(90)]
                       + ["h1,hdnd,tinh-t,Đại biểu,,", "l1,leader,xa-a,Lãnh đạo,,nam", "l2,leader,xa-a,Lãnh đạo 2,,nu"])
BAD_FRAME = "id,group,unit,name,phone,gender\nc1,citizen,xa-a,An,,\nc1,citizen,xa-zz,Bình,0123,\n"


def csv_file(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def newest_job(page, status: str):
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", re.compile("done|failed"), timeout=90_000)
    assert job.get_attribute("data-status") == status, job.inner_text()
    return job


def audit_actions(server) -> list[str]:
    return [e.action for e in reversed(server.call(lambda storage, stores: stores.audit.entries(limit=0)))]


def survey_only(tmp_path: Path) -> Path:
    from fieldwork.surveys import check_survey, store_checked

    db = tmp_path / "survey.sqlite"

    async def make():
        async with await open_storage(db) as storage:
            await store_checked(storage, check_survey(FORMS / "survey.toml"), NOW)

    run_async(make)
    return db


def test_a_broken_frame_shows_its_lines_then_a_good_one_is_drawn(page, tmp_path, console_server, log_in):
    server = console_server(survey_only(tmp_path))
    server.add_account("officer", role="coordinator", surveys=["test-2026"])
    log_in(page, server, "officer")
    page.goto(f"{server.url}/surveys/test-2026/sample")
    page.set_input_files("#frame-form input[type=file]", files=[csv_file("khung.csv", BAD_FRAME)])
    page.click("#frame-form button[type=submit]")
    failed = newest_job(page, "failed").inner_text()
    assert "khung.csv: nothing imported" in failed
    assert re.search(r"line 3, column id: .*c1", failed) and re.search(r"line 3, column unit: .*xa-zz", failed)
    assert "Traceback" not in failed
    assert server.call(lambda storage, stores: storage.frame_rows("test-2026")) == []

    page.set_input_files("#frame-form input[type=file]", files=[csv_file("khung.csv", GOOD_FRAME)])
    page.click("#frame-form button[type=submit]")
    assert "93 người; thêm 93" in newest_job(page, "done").inner_text()  # the summary in the page's language
    page.click("button[hx-get$='/sample/allocation']")
    row = page.locator("#allocation-table tr[data-stratum='citizen/xa-a']")
    expect(row).to_contain_text("30")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[:2] == ["Người dân", "Xã Á"]  # labels, not ids
    assert cells[2:6] == ["30", "20", "0.6667", "1.50"]
    token = page.locator("#draw-form input[name=csrf_token]").input_value()
    refused = page.request.post(f"{server.url}/surveys/test-2026/sample/draw", form={"csrf_token": token, "seed": "-3"})
    assert refused.status == 400 and "Seed phải là số nguyên ≥ 0." in refused.text()  # past the browser's own check
    page.fill("#draw-form input[name=seed]", "7")
    page.click("#draw-form button[type=submit]")
    assert "đã chọn 63 người" in newest_job(page, "done").inner_text()
    page.reload()
    expect(page.locator("#sample-strata tr[data-stratum='citizen/xa-b']")).to_contain_text("Người dân · Xã Bình")
    assert server.call(lambda storage, stores: storage.sample_info("test-2026")).seed == 7
    assert {"frame_upload", "sample_draw"} <= set(audit_actions(server))


@pytest.fixture
def answered(tmp_path) -> Path:
    """The export tests' database: the test survey with a drawn sample and answered sessions."""
    from tests.test_exports import build

    db = tmp_path / "answered.sqlite"
    run_async(lambda: build(db, tmp_path))
    return db


def download(page, job) -> Path:
    with page.expect_download() as info:
        job.locator("a[download]").first.click()
    return Path(info.value.path())


def test_an_analyst_downloads_sav_and_xlsx_exports_and_reads_them_back(page, answered, console_server, log_in):
    server = console_server(answered)
    server.add_account("ana", role="analyst", surveys=["test-2026"], personal=False)
    log_in(page, server, "ana")
    page.goto(f"{server.url}/surveys/test-2026/data")
    assert page.locator("#export-form input[name=personal]").count() == 0  # no personal-data access
    page.select_option("#export-form select[name=format]", "sav")
    page.click("#export-form button[type=submit]")
    sav = download(page, newest_job(page, "done"))
    frame, meta = pyreadstat.read_sav(str(sav))
    assert len(frame) == 7  # the seven answered sessions
    assert any(meta.variable_value_labels.values()) and sum(label is not None for label in meta.column_labels) > 10

    page.select_option("#export-form select[name=format]", "xlsx")
    page.select_option("#export-form select[name=layout]", "long")
    page.click("#export-form button[type=submit]")
    xlsx = download(page, newest_job(page, "done"))
    book = openpyxl.load_workbook(xlsx.open("rb"), read_only=True)
    assert len(book.sheetnames) >= 2  # the answers and the codebook
    rows = list(book[book.sheetnames[0]].iter_rows(values_only=True))
    assert len(rows) > 7 and "Nguyễn" not in str(rows)  # one row per answer, pseudonyms only

    token = page.locator("#export-form input[name=csrf_token]").input_value()
    refused = page.request.post(f"{server.url}/surveys/test-2026/data/export",
                                form={"csrf_token": token, "format": "csv", "personal": "1"})
    assert refused.status == 403
    actions = audit_actions(server)
    assert actions.count("export") == 2 and actions.count("download") == 2 and "forbidden" in actions


def test_an_analyst_uploads_a_design_and_computes_scores(page, fieldwork, console_server, log_in, tmp_path):
    from tests.test_scores import DATA, RULES

    server = console_server(fieldwork.db)
    server.add_account("ana", role="analyst", surveys=["test-2026"])
    log_in(page, server, "ana")
    page.goto(f"{server.url}/surveys/test-2026/data")
    form = "#statistics-form"
    page.select_option(f"{form} select[name=action]", "score")
    page.set_input_files(f"{form} input[name=design]", files=[{"name": "design.toml", "mimeType": "text/plain",
                                                              "buffer": b"[design]\n"}])
    page.set_input_files(f"{form} input[name=data]", files=[csv_file("data.csv", DATA.to_csv(index=False))])
    page.set_input_files(f"{form} input[name=rules]", files=[{"name": "rules.toml", "mimeType": "text/plain",
                                                             "buffer": RULES.encode()}])
    page.fill(f"{form} input[name=unit]", "unit")
    page.fill(f"{form} input[name=group]", "group")
    page.click(f"{form} button[type=submit]")
    scores = pd.read_csv(download(page, newest_job(page, "done")))
    totals = scores[scores.level == "total"].set_index("unit")["value"]
    assert totals["X"] == pytest.approx(2.0) and totals["Y"] == pytest.approx(1.6)

    # Rules that name a column the data lacks: the job says which, and offers nothing to download.
    page.select_option(f"{form} select[name=action]", "score")
    page.set_input_files(f"{form} input[name=data]", files=[csv_file("data.csv", DATA.drop(columns="q3").to_csv(
        index=False))])
    page.set_input_files(f"{form} input[name=rules]", files=[{"name": "rules.toml", "mimeType": "text/plain",
                                                             "buffer": RULES.encode()}])
    page.fill(f"{form} input[name=unit]", "unit")
    page.click(f"{form} button[type=submit]")
    failed = newest_job(page, "failed")
    assert "q3" in failed.inner_text() and failed.locator("a[download]").count() == 0


PAGES = ["sample", "invitations", "settings", "data"]


def test_viewers_and_other_scopes_get_403_on_pages_and_downloads(page, fieldwork, console_server, log_in, tmp_path):
    server = console_server(fieldwork.db)
    owner = server.add_account("ana", role="analyst", surveys=["test-2026"])
    result = tmp_path / "export.csv"
    result.write_text("a,b\n1,2\n", encoding="utf-8")

    async def finished_job(storage, stores):
        await stores.jobs.create_job("j1", "export", at=NOW.isoformat(), survey_id="test-2026", account_id=owner.id,
                                     params={})
        await stores.jobs.start_job("j1", NOW.isoformat())
        await stores.jobs.finish_job("j1", NOW.isoformat(), result_path=str(result), message="1 row")

    server.call(finished_job)
    server.add_account("viewer", role="viewer")
    server.add_account("elsewhere", role="coordinator", surveys=["other-2026"])
    server.add_account("commune", role="coordinator", surveys=["test-2026"], units=["xa-b"])
    for username, forbidden in (("viewer", PAGES), ("elsewhere", PAGES), ("commune", ["sample", "settings", "data"])):
        page.context.clear_cookies()
        log_in(page, server, username)
        for name in forbidden:
            response = page.goto(f"{server.url}/surveys/test-2026/{name}")
            assert response.status == 403, (username, name)
        response = page.request.get(f"{server.url}/jobs/j1/files/export.csv")
        assert response.status == 403, username
    page.goto(f"{server.url}/surveys/test-2026/invitations")  # the commune officer's own letters
    assert page.locator("#letters-form select[name=unit] option").all_inner_texts()[1:] == ["Xã Bình (xã, phường)"]  # the level named
    page.context.clear_cookies()
    log_in(page, server, "ana")
    response = page.request.get(f"{server.url}/jobs/j1/files/export.csv")
    assert response.status == 200 and response.text() == "a,b\n1,2\n"


def test_a_survey_file_with_a_broken_questionnaire_stores_nothing_then_loads(page, tmp_path, console_server,
                                                                           log_in):
    server = console_server(survey_only(tmp_path))
    server.add_account("officer", role="coordinator", surveys=["test-2026"])
    log_in(page, server, "officer")
    page.goto(f"{server.url}/surveys")
    toml = (FORMS / "survey.toml").read_text(encoding="utf-8").replace("Khảo sát thử 2026", "Khảo sát thử 2026 (bản 2)")
    project = {"name": "survey.toml", "mimeType": "text/plain", "buffer": toml.encode()}
    units = {"name": "units.csv", "mimeType": "text/csv", "buffer": (FORMS / "units.csv").read_bytes()}
    broken = Path(__file__).resolve().parents[1] / "forms" / "broken" / "duplicate_names.md"
    page.set_input_files("input[name=project]", files=[project])
    page.set_input_files("input[name=units]", files=[units])
    page.set_input_files("input[name=forms]", files=[str(broken)])
    page.click("form[action='/surveys/load'] button[type=submit]")
    problems = page.locator("#problems").inner_text()
    assert "Không lưu gì." in problems and "duplicate_names.md: " in problems and "row" in problems.lower()
    assert [v.version for v in server.call(lambda storage, stores: storage.survey_versions("test-2026"))] == [1]

    template = Path(__file__).resolve().parents[2] / "surveys" / "templates" / "sipas_citizen.md"
    page.set_input_files("input[name=project]", files=[project])
    page.set_input_files("input[name=units]", files=[units])
    page.set_input_files("input[name=forms]", files=[str(template)])
    page.click("form[action='/surveys/load'] button[type=submit]")
    expect(page.locator(".msg.ok")).to_contain_text("phiên bản 2")
    assert [v.version for v in server.call(lambda storage, stores: storage.survey_versions("test-2026"))] == [1, 2]
    assert "survey_load" in audit_actions(server)


def test_quota_edits_are_checked_confirmed_stored_and_audited(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("officer", role="coordinator", surveys=["test-2026"])
    log_in(page, server, "officer")
    page.goto(f"{server.url}/surveys/test-2026/settings")
    page.fill("textarea[name=targets]", "citizen/xa-a = 25\ncitizen/xa-zz = 5")
    page.fill("input[name=quiet_start]", "25:00")
    page.click("#settings-form button[type=submit]")
    errors = page.locator(".msg.error").inner_text()
    assert "quotas.targets.\"citizen/xa-zz\": 'xa-zz' is not a unit at level commune" in errors
    assert "reminders.quiet_hours.start: must be a time HH:MM (24-hour)" in errors
    page.fill("textarea[name=targets]", "citizen/xa-a = 25")
    page.fill("input[name=quiet_start]", "22:00")
    page.click("#settings-form button[type=submit]")
    expect(page.locator("#confirm")).to_contain_text('quotas.targets."citizen/xa-a": 20 → 25')
    assert len(server.call(lambda storage, stores: storage.survey_versions("test-2026"))) == 1  # not before confirming
    page.click("#confirm button[type=submit]")
    expect(page.locator(".msg.ok")).to_contain_text("phiên bản 2")
    project = server.call(lambda storage, stores: storage.get_survey("test-2026"))
    assert project.version == 2 and '"citizen/xa-a":25' in project.project.replace(" ", "")
    entry = next(e for e in server.call(lambda storage, stores: stores.audit.entries(limit=0))
                 if e.action == "settings_edit")
    assert "20 → 25" in entry.detail and "21:00 → 22:00" in entry.detail


def test_letters_for_one_commune_download_as_a_zip_with_qr_images(page, fieldwork, console_server, log_in):
    import zipfile

    from fieldwork.invitations import pdf_browser

    server = console_server(fieldwork.db)
    server.add_account("commune", role="coordinator", surveys=["test-2026"], units=["xa-c"])
    log_in(page, server, "commune")
    page.goto(f"{server.url}/surveys/test-2026/invitations")
    page.click("#letters-form button[type=submit]")  # no bot named: refused in the page
    assert "say how people answer" in page.locator(".msg.error").inner_text()
    page.fill("#letters-form input[name=telegram]", "@khaosat_qt_bot")
    page.click("#letters-form button[type=submit]")
    archive = zipfile.ZipFile(download(page, newest_job(page, "done")))
    names = archive.namelist()
    people = fieldwork.members["citizen/xa-c"]
    assert "letters.html" in names and "invitations.csv" in names
    if pdf_browser() is not None:  # a headless Chromium prints the letters to PDF as well
        assert archive.read("letters.pdf").startswith(b"%PDF")
    assert len([n for n in names if n.startswith("qr/") and n.endswith(".png")]) == len(people)
    rows = archive.read("invitations.csv").decode("utf-8-sig").splitlines()[1:]
    assert len(rows) == len(people) and all("citizen/xa-c" in row for row in rows)


def test_the_fieldwork_pages_fit_a_phone_in_both_languages(browser, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = context.new_page()
    try:
        log_in(page, server, "admin")
        for lang, heading in (("vi", "Khung mẫu và mẫu"), ("en", "Frame and sample")):
            page.goto(f"{server.url}/lang/{lang}?next=/")
            for path in ("/surveys", *(f"/surveys/test-2026/{name}" for name in PAGES)):
                page.goto(f"{server.url}{path}")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (lang, path, width)
            page.goto(f"{server.url}/surveys/test-2026/sample")
            assert page.locator("h1").inner_text().startswith(heading)
    finally:
        context.close()


def test_one_refusal_is_replaced_by_the_next_reserve(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("officer", role="coordinator", surveys=["test-2026"])
    refused = fieldwork.members["citizen/xa-a"][6]
    log_in(page, server, "officer")
    page.goto(f"{server.url}/surveys/test-2026/sample")
    page.click("#replace-one-form >> xpath=..")  # open the details
    completed = fieldwork.members["citizen/xa-a"][0]
    page.fill("#replace-one-form input[name=respondent]", str(completed))
    page.click("#replace-one-form button[type=submit]")
    assert f"respondent {completed} is completed; only refused, unreachable, ineligible can be replaced" in \
        page.locator(".msg.error").inner_text()
    page.click("#replace-one-form >> xpath=..")
    page.fill("#replace-one-form input[name=respondent]", str(refused))
    page.fill("#replace-one-form input[name=reason]", "chuyển công tác")
    page.click("#replace-one-form button[type=submit]")
    expect(page.locator(".msg.ok")).to_contain_text("Đã thay 1")
    person = server.call(lambda storage, stores: storage.get_respondent(refused))
    assert person.disposition == "replaced"
    history = server.call(lambda storage, stores: storage.disposition_history(refused))
    assert history[-1]["reason"] == "chuyển công tác"
