"""Shared fixtures: keep this small."""

from __future__ import annotations

import textwrap

import pytest

from surveys.xlsform import load_questionnaire_bytes


@pytest.fixture
def markdown_form():
    """Load an XLSForm markdown text (dedented) through the real loader."""

    def load(text: str, filename: str = "f.md"):
        return load_questionnaire_bytes(textwrap.dedent(text).strip().encode("utf-8"), filename)

    return load


# A real PostgreSQL server, started once per session (tests/postgres_server.py).
from tests.postgres_server import empty_postgresql_url, postgres_server, postgresql_url  # noqa: E402, F401
