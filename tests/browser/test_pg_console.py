"""The console's pages over a PostgreSQL database (`khaosat serve --db postgresql://…`), in a real
Chromium: the progress page and the non-respondents' list, checked exactly as on SQLite by the
same tests of test_console_pages.py, on the same fieldwork stored in PostgreSQL."""

from __future__ import annotations

import pytest

from tests.browser import test_console_pages as pages
from tests.browser.conftest import build_fieldwork, run_async


@pytest.fixture
def fieldwork_in_postgresql(tmp_path, postgresql_url):
    return run_async(lambda: build_fieldwork(tmp_path, postgresql_url))


def test_progress_shows_the_numbers_of_khaosat_status_on_postgresql(page, fieldwork_in_postgresql, console_server,
                                                                     log_in):
    pages.test_progress_shows_the_numbers_of_khaosat_status(page, fieldwork_in_postgresql, console_server, log_in)


def test_the_list_to_reach_on_postgresql(page, fieldwork_in_postgresql, console_server, log_in):
    pages.test_the_list_to_reach_by_letter_or_phone(page, fieldwork_in_postgresql, console_server, log_in, True)
