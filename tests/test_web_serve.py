"""``khaosat serve`` with ``[web]``: the respondents' pages answer beside the console, and a
person linked by their code gets the first question."""

from __future__ import annotations

import asyncio
import http.cookiejar
import signal
import subprocess
import sys
import time
import urllib.request

from bot.invitations import code_hash, new_link_code
from storage import open_storage
from tests.test_console_cli import ROOT, khaosat
from tests.web_helpers import TOUR, free_port


async def invited(db) -> str:
    link = new_link_code()
    async with await open_storage(db) as storage:
        respondent = await storage.add_respondent("S-1", form_id="tour", stratum="xa-a", at="2026-11-01T08:00:00+07:00")
        await storage.issue_invitation(respondent.id, "link", code_hash(link), "2026-11-01T08:00:00+07:00")
    return link


def test_serve_serves_the_web_pages_when_configured(tmp_path):
    db = tmp_path / "k.sqlite"
    khaosat("user", "add", "admin", "--role", "admin", "--password-stdin", "--db", db, stdin="mot-mat-khau-dai\n")
    link = asyncio.run(invited(db))
    console_port, web_port = free_port(), free_port()
    config = tmp_path / "khaosat.toml"
    config.write_text(f'[storage]\npath = "{db}"\n\n[web]\npublic_url = "https://ks.example.vn"\nport = {web_port}\n\n'
                      f'[[telegram]]\nname = "qt"\ntoken = "1:x"\nforms = ["{TOUR}"]\n', encoding="utf-8")
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "serve", "--port",
                               str(console_port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        for _ in range(200):
            try:
                with opener.open(f"http://127.0.0.1:{web_port}/s/{link}", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the web pages did not answer")
        assert "đồng ý tham gia" in page and "Phiếu thử" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/login", timeout=5) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"Web pages at http://127.0.0.1:{web_port}/s/" in out and "Traceback" not in err
