"""The Data page offers `khaosat export`'s options (CSV delimiter, Stata version, choice labels,
label headers): a semicolon CSV with labels is read back; bad values are refused in the page and
start nothing."""

from __future__ import annotations

import csv

import pytest

from tests.browser.test_console_fieldwork import answered, audit_actions, download, newest_job  # noqa: F401 — fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DATA = "/surveys/test-2026/data"


def test_a_semicolon_csv_with_choice_labels_reads_back(page, answered, console_server, log_in):  # noqa: F811
    server = console_server(answered)
    server.add_account("ana", role="analyst", surveys=["test-2026"], personal=False)
    log_in(page, server, "ana")
    page.goto(f"{server.url}{DATA}")
    assert page.locator("#export-form select[name=language] option").all_inner_texts() == ["Tiếng Việt", "Tiếng Anh"]
    page.select_option("#export-form select[name=format]", "csv")
    page.select_option("#export-form select[name=delimiter]", "semicolon")
    page.check("#export-form input[name=labels]")
    page.click("#export-form button[type=submit]")
    path = download(page, newest_job(page, "done"))
    text = path.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0]
    assert ";" in header and "," not in header, header
    rows = list(csv.DictReader(text.splitlines(), delimiter=";"))
    assert {"rating", "sex"} <= set(rows[0])
    ratings = {r["rating"] for r in rows} - {""}
    assert "Hài lòng" in ratings and not ratings & {"1", "2", "3", "4", "5"}, ratings  # labels, not codes
    assert "Nữ" in {r["sex"] for r in rows} and "nu" not in {r["sex"] for r in rows}


@pytest.mark.parametrize("change, message", [
    ({"delimiter": "colon"}, "Dấu phân cách CSV: 'colon' không phải một lựa chọn (comma, semicolon, tab, pipe)."),
    ({"stata_version": "114"}, "Phiên bản tệp Stata: '114' không phải một lựa chọn (115, 117, 118, 119)."),
    ({"format": "sav", "labels": "1"}, "chỉ dùng cho CSV hoặc Excel (xlsx), không cho sav."),
    ({"format": "dta", "label_headers": "1"}, "chỉ dùng cho CSV hoặc Excel (xlsx), không cho dta."),
])
def test_bad_export_options_are_refused_in_the_page_and_start_nothing(page, answered, console_server, log_in,  # noqa: F811
                                                                       change, message):
    server = console_server(answered)
    server.add_account("ana", role="analyst", surveys=["test-2026"], personal=False)
    log_in(page, server, "ana")
    page.goto(f"{server.url}{DATA}")
    token = page.locator("#export-form input[name=csrf_token]").input_value()
    refused = page.request.post(f"{server.url}{DATA}/export",
                                form={"csrf_token": token, "format": "csv", "delimiter": "comma", **change})
    assert refused.status == 400
    page.set_content(refused.text())
    assert message in page.locator(".msg.error").inner_text()
    assert page.locator(".job").count() == 0 and "export" not in audit_actions(server)
    # what was chosen is kept in the form
    assert page.locator("#export-form select[name=format]").input_value() == change.get("format", "csv")
