"""A postgresql:// URL is recognised wherever an SQLite path is (--db, storage.path): the console's
accounts and the bots' storage live there; a server that cannot be reached is a clear message
without the URL's password, never a traceback, and the URL is never taken for a file path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import load_config
from storage import StorageError, is_postgresql_url, open_storage
from tests.test_cli_bad_input import ROOT, khaosat

URL = "postgresql://khaosat@127.0.0.1:5/khaosat"
SECRET_URL = "postgresql://khaosat:s3cret@127.0.0.1:5/khaosat"


async def test_open_storage_recognises_a_url_and_an_unreachable_server_is_a_clear_error(tmp_path):
    assert is_postgresql_url(URL) and is_postgresql_url("postgres://h/d") and not is_postgresql_url(tmp_path)
    with pytest.raises(StorageError, match="cannot open postgresql://khaosat:\\*\\*\\*@127.0.0.1:5/khaosat") as refused:
        await open_storage(SECRET_URL)
    assert "s3cret" not in str(refused.value)
    assert not list(tmp_path.iterdir())  # not taken for a file name


def test_db_accepts_a_url_and_an_unreachable_server_is_a_message_without_the_password(tmp_path):
    result = khaosat("status", "--db", SECRET_URL, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot open postgresql://khaosat:***@127.0.0.1:5/khaosat" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir())


def test_status_reads_a_postgresql_database(postgresql_url, tmp_path):
    result = khaosat("status", "--db", postgresql_url, cwd=tmp_path)
    assert "none is loaded yet" in result.stderr and "Traceback" not in result.stderr  # it read the database
    assert not list(tmp_path.iterdir())


def test_a_url_without_a_database_is_a_usage_error(tmp_path):
    result = khaosat("status", "--db", "postgresql://khaosat@127.0.0.1:5", cwd=tmp_path)
    assert result.returncode == 2 and "names its database" in result.stderr
    result = khaosat("status", "--db", "postgresql://khaosat@127.0.0.1:port/db", cwd=tmp_path)
    assert result.returncode == 2 and "is not a PostgreSQL URL" in result.stderr


def test_backup_of_a_postgresql_database_points_at_pg_dump(tmp_path):
    result = khaosat("backup", "--db", URL, "--out", tmp_path / "b", cwd=tmp_path)
    assert result.returncode == 1 and "pg_dump" in result.stderr
    assert not (tmp_path / "b").exists()


def test_storage_path_in_the_configuration_may_be_a_url(tmp_path):
    (tmp_path / "k.toml").write_text(f'[storage]\npath = "{URL}"\n')
    assert load_config(tmp_path / "k.toml").database == URL
    (tmp_path / "f.toml").write_text('[storage]\npath = "data/k.sqlite"\n')
    assert load_config(tmp_path / "f.toml").database == tmp_path / "data" / "k.sqlite"


def add_user(url: str, username: str, role: str, cwd):
    """``khaosat user add`` with its password on standard input."""
    result = subprocess.run([sys.executable, "-m", "bot.cli", "user", "add", username, "--role", role,
                             "--password-stdin", "--db", url], input="a long enough passphrase\n",
                            capture_output=True, text=True, cwd=cwd, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_console_accounts_are_kept_in_postgresql_from_the_command_line(postgresql_url, tmp_path):
    added = add_user(postgresql_url, "officer", "admin", tmp_path)
    assert added.returncode == 0, added.stderr
    listed = khaosat("user", "list", "--db", postgresql_url, cwd=tmp_path)
    assert listed.returncode == 0 and "officer" in listed.stdout and "admin" in listed.stdout
    again = add_user(postgresql_url, "officer", "viewer", tmp_path)
    assert again.returncode == 1 and "officer is taken" in again.stderr
    assert not list(tmp_path.iterdir())  # nothing written as a file
