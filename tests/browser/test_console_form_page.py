"""A stored questionnaire's page in a real Chromium at a phone's width (375 px): the summary and
every question, the one a chat does not ask marked, and nothing scrolls sideways."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage import open_storage
from tests.browser.conftest import FORMS, NOW, run_async

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TESTS = Path(__file__).resolve().parents[1]
PHONE_WIDTH = 375


def survey_with_forms(tmp_path: Path) -> Path:
    """The test survey, its citizens answering the roster form (two languages, repeats, long
    calculations) and its officials geotrace.md (a question a chat does not ask)."""
    from fieldwork.surveys import check_survey, store_checked

    text = (FORMS / "survey.toml").read_text(encoding="utf-8")
    text = text.replace('form_id = "sipas_citizen_example"', 'form_id = "roster"')
    (tmp_path / "survey.toml").write_text(text.replace('form_id = "par_index_officials_example"',
                                                       'form_id = "geotrace"'), encoding="utf-8")
    shutil.copy(FORMS / "units.csv", tmp_path / "units.csv")
    db = tmp_path / "survey.sqlite"

    async def make():
        async with await open_storage(db) as storage:
            checked = check_survey(tmp_path / "survey.toml",
                                   (TESTS / "forms" / "roster.md", TESTS / "forms" / "lenient" / "geotrace.md"))
            await store_checked(storage, checked, NOW)

    run_async(make)
    return db


def test_the_form_page_fits_a_phone(browser, tmp_path, console_server, log_in):
    server = console_server(survey_with_forms(tmp_path))
    server.add_account("ana", role="analyst", surveys=["test-2026"])
    context = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 812}, device_scale_factor=2,
                                  is_mobile=True, locale="vi-VN")
    page = context.new_page()
    try:
        log_in(page, server, "ana")
        for lang in ("vi", "en"):
            page.goto(f"{server.url}/lang/{lang}?next=/")
            page.goto(f"{server.url}/surveys/test-2026/forms/roster")
            assert page.locator("#questions tbody tr").count() == 15
            assert page.locator("#q-hh_size").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, lang
            # a question's name and type are read without swiping
            box = page.locator("#q-total_cost td.key").last.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH
            page.goto(f"{server.url}/surveys/test-2026/forms/geotrace")
            assert page.locator("tr.not-asked#q-where").is_visible()
            assert page.locator(".not-asked").first.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, lang
    finally:
        context.close()
