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


# Storage tests run on both databases: a test (or fixture) that asks for ``database`` gets an
# SQLite file path, then a PostgreSQL URL (a fresh migrated database, dropped after the test).
# ``@pytest.mark.sqlite_only("why")`` keeps a test that checks SQLite itself (PRAGMAs, files,
# its upgrade path) to SQLite.
DATABASES = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only(reason): checks something only SQLite has")


def pytest_generate_tests(metafunc):
    if "database" in metafunc.fixturenames:
        kinds = ("sqlite",) if metafunc.definition.get_closest_marker("sqlite_only") else DATABASES
        metafunc.parametrize("database", kinds, indirect=True)


@pytest.fixture
def database(request, tmp_path):
    """Where a storage test's database is: a path (sqlite) or a ``postgresql://`` URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgresql_url")
    return tmp_path / "data" / "khaosat.sqlite"


@pytest.fixture
def second_database(request, tmp_path, postgres_server):
    """Another database of the same kind as this test's ``database``, for a test that needs two."""
    if request.node.callspec.params["database"] == "postgresql":
        from tests.postgres_server import _database

        yield from _database(postgres_server, migrated=True)
    else:
        yield tmp_path / "second" / "khaosat.sqlite"
