"""`[console]` in the configuration, and `khaosat user add|list|disable|passwd` on a real database."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, ConsoleConfig, load_config
from storage.console_db import ConsoleStores

ROOT = Path(__file__).resolve().parents[1]


def khaosat(*args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_the_example_console_section_and_its_defaults(monkeypatch, tmp_path):
    for name in ("KHAOSAT_TELEGRAM_TOKEN", "KHAOSAT_TELEGRAM_WEBHOOK_SECRET", "KHAOSAT_ZALO_TOKEN",
                 "KHAOSAT_ZALO_WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "secret-value-123")
    assert load_config(ROOT / "config.example.toml").console == ConsoleConfig()
    plain = tmp_path / "k.toml"
    plain.write_text("[storage]\npath = 'k.sqlite'\n", encoding="utf-8")
    assert load_config(plain).console is None  # no [console]: `khaosat run` serves no console


@pytest.mark.parametrize("text, message", [
    ("[console]\nport = 70000\n", "[console] port: must be ≤ 65535, got 70000"),
    ("[console]\nsecure_cookies = 'yes'\n", "[console] secure_cookies: must be true, false or \"auto\""),
    ("[console]\nsession_hours = 0\n", "[console] session_hours: must be ≥ 1, got 0"),
    ("[console]\nlisten = ''\n", "[console] listen: must not be empty"),
    ("[console]\nrefresh = 5\n", "[console] refresh: unknown key"),
])
def test_a_bad_console_section_is_named(tmp_path, text, message):
    path = tmp_path / "k.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def accounts(db: Path):
    async def read():
        async with await ConsoleStores.open(db) as stores:
            return await stores.accounts.list_accounts(), await stores.audit.entries(limit=0)
    return asyncio.run(read())


def test_user_add_list_disable_and_passwd(tmp_path):
    db = tmp_path / "k.sqlite"
    result = khaosat("user", "add", "admin", "--role", "admin", "--password-stdin", "--db", db,
                     stdin="mot-mat-khau-dai\n")
    assert result.returncode == 0, result.stderr
    result = khaosat("user", "add", "xa-a", "--role", "coordinator", "--survey", "test-2026", "--unit", "xa-a",
                     "--password-stdin", "--db", db, stdin="mot-mat-khau-dai\n")
    assert result.returncode == 0, result.stderr
    listing = khaosat("user", "list", "--db", db).stdout
    assert "admin" in listing and "test-2026" in listing and "xa-a" in listing
    (admin, officer), _ = accounts(db)
    assert (officer.role, officer.surveys, officer.units, officer.personal) == ("coordinator", ("test-2026",),
                                                                               ("xa-a",), True)
    assert admin.password_hash.startswith("$argon2id$")
    assert khaosat("user", "disable", "xa-a", "--db", db).returncode == 0
    assert accounts(db)[0][1].disabled
    assert khaosat("user", "disable", "xa-a", "--enable", "--db", db).returncode == 0
    before = accounts(db)[0][1].password_hash
    assert khaosat("user", "passwd", "xa-a", "--password-stdin", "--db", db, stdin="mat-khau-moi-2026\n").returncode == 0
    (_, officer), audit = accounts(db)
    assert officer.password_hash != before and not officer.disabled
    assert [e.action for e in reversed(audit)] == ["user_disabled", "user_enabled", "password_set"]


@pytest.mark.parametrize("args, stdin, message", [
    (["user", "add", "ab", "--role", "admin", "--password-stdin"], "short\n",
     "The password needs at least 10 characters."),
    (["user", "add", "ab", "--role", "coordinator", "--password-stdin"], "mot-mat-khau-dai\n",
     "A coordinator needs at least one survey."),
    (["user", "add", "bad name!", "--role", "viewer", "--password-stdin"], "mot-mat-khau-dai\n", "Username: 2–64"),
    (["user", "add", "admin", "--role", "viewer", "--password-stdin"], "mot-mat-khau-dai\n",
     "The username admin is taken."),
    (["user", "disable", "nobody"], "", "no console account named 'nobody'"),
    (["user", "passwd", "nobody", "--password-stdin"], "mot-mat-khau-dai\n", "no console account named 'nobody'"),
])
def test_bad_user_commands_say_why_and_write_nothing(tmp_path, args, stdin, message):
    db = tmp_path / "k.sqlite"
    khaosat("user", "add", "admin", "--role", "admin", "--password-stdin", "--db", db, stdin="mot-mat-khau-dai\n")
    before = accounts(db)
    result = khaosat(*args, "--db", db, stdin=stdin)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert accounts(db) == before


def test_serve_answers_on_its_port_and_stops_on_ctrl_c(tmp_path):
    import signal
    import socket
    import time
    import urllib.request

    db = tmp_path / "k.sqlite"
    khaosat("user", "add", "admin", "--role", "admin", "--password-stdin", "--db", db, stdin="mot-mat-khau-dai\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--db", str(db), "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the console did not answer")
        assert 'name="csrf_token"' in page and "Đăng nhập" in page
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"Console at http://127.0.0.1:{port}/" in out and "Traceback" not in err


def test_serve_refuses_a_database_that_does_not_exist(tmp_path):
    result = khaosat("serve", "--db", tmp_path / "nope.sqlite")
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "nope.sqlite").exists()


def test_behind_a_proxy_the_login_limit_counts_the_forwarded_address(tmp_path):
    """Through a proxy every connection comes from the proxy: the limit must count the clients."""
    import aiohttp

    from console.auth import LOGIN_LIMIT
    from tests.browser.conftest import ConsoleServer, run_async

    db = tmp_path / "k.sqlite"
    khaosat("user", "add", "admin", "--role", "admin", "--password-stdin", "--db", db, stdin="mot-mat-khau-dai\n")
    server = ConsoleServer(db, behind_proxy=True)
    try:
        async def attempt(client_ip: str, password: str, username: str = "someone") -> int:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
                page = await (await client.get(f"{server.url}/login")).text()
                token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                async with client.post(f"{server.url}/login", allow_redirects=False,
                                       headers={"X-Forwarded-For": f"203.0.113.9, {client_ip}"},
                                       data={"csrf_token": token, "username": username, "password": password}) as r:
                    return r.status

        statuses = [run_async(lambda: attempt("198.51.100.1", "wrong-password")) for _ in range(LOGIN_LIMIT + 1)]
        assert statuses == [401] * LOGIN_LIMIT + [429]
        assert run_async(lambda: attempt("198.51.100.2", "wrong-password")) == 429  # the account's limit
        entries = server.call(lambda storage, stores: stores.audit.entries(limit=1))
        assert entries[0].address == "198.51.100.2" and entries[0].action == "login_limited"
        # Another person behind the same proxy is not locked out by the first one's failures.
        assert run_async(lambda: attempt("198.51.100.3", "mot-mat-khau-dai", "admin")) == 302
    finally:
        server.stop()
