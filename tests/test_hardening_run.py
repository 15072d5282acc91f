"""Hardening of `khaosat run`'s edges (issue #18, "found by probing the running bot"):
webhook requests with the right secret but a malformed body, and start-up failures (a webhook
port already taken, a Bot API nobody answers at, a setWebhook the platform refuses), each one
clear line, never a traceback. Real sockets on 127.0.0.1, the real emulators."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.config import BotConfig, Config, ConfigError
from bot.run import run
from storage import open_storage
from test_telegram_bot import FAST_PACE, SIPAS, TOKEN, harness as telegram_harness
from test_zalo_bot import harness as zalo_harness

ROOT = Path(__file__).resolve().parents[1]
TG_SECRET = "s3cret-token"
ZALO_SECRET = "zalo-hook-secret"

#: Bodies with the right secret that are not an update: each must be a 400, never a 500.
MALFORMED = [
    b"not json at all",
    b"{",
    b"{}",
    b"[]",
    b"null",
    b"42",
    b'"a string"',
    b'{"update_id": "abc"}',
    b'{"update_id": 1.5, "message": 7}',
    b'{"update_id": 12, "message": {"message_id": "x", "chat": "nope"}}',
    b'{"update_id": 13, "message": {"message_id": 1, "date": 0, "chat": {"id": "abc"}}}',
]
ZALO_MALFORMED = [
    b"not json at all",
    b"{}",
    b"[]",
    b"null",
    b'{"ok": true, "result": []}',
    b'{"ok": true, "result": {"event_name": 5}}',
    b'{"event_name": "message.text.received", "message": "hello"}',
    b'{"event_name": "message.text.received", "message": {"message_id": "m1", "chat": "x"}}',
    b'{"event_name": "message.text.received", "message": {"message_id": "m1", "chat": {"id": ["a"]}}}',
    b'{"event_name": "message.text.received", "message": {"message_id": {}, "chat": {"id": "a"}}}',
    b'{"event_name": "message.text.received", "message": {"message_id": "m2", "chat": {"id": "a"},'
    b' "from": {"id": "a"}, "text": 12}}',
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def post_bodies(url: str, header: str, secret: str, bodies: list[bytes]) -> list[int]:
    async with aiohttp.ClientSession() as client:
        statuses = []
        for body in bodies:
            async with client.post(url, data=body, headers={header: secret,
                                                            "Content-Type": "application/json"}) as response:
                statuses.append(response.status)
        return statuses


async def test_telegram_webhook_answers_400_to_a_malformed_body_with_one_log_line(tmp_path, caplog):
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/test"
    async with telegram_harness(tmp_path, mode="webhook", webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                                webhook_secret=TG_SECRET) as h:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            statuses = await post_bodies(url, "X-Telegram-Bot-Api-Secret-Token", TG_SECRET, MALFORMED)
        assert statuses == [400] * len(MALFORMED)
        refused = [r for r in caplog.records if "webhook" in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(refused) == len(MALFORMED), [r.getMessage() for r in caplog.records]
        assert all(r.exc_info is None and "\n" not in r.getMessage() for r in refused), "one line, no traceback"
        assert not [r for r in caplog.records if r.exc_info], "no traceback anywhere"
        # A well-formed update still works after all that.
        user = h.telegram.user(5200)
        await h.invite("S-0200", "sipas_citizen_example")
        from test_telegram_bot import LINK_CODE
        await user.start(LINK_CODE)
        await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))


async def test_zalo_webhook_answers_400_to_a_malformed_body_with_one_log_line(tmp_path, caplog):
    port = free_port()
    url = f"http://127.0.0.1:{port}/zalo/zl"
    from test_zalo_bot import TOUR, has
    async with zalo_harness(tmp_path, forms=(TOUR,), mode="webhook", webhook_url=url,
                            webhook_listen=f"127.0.0.1:{port}", webhook_secret=ZALO_SECRET) as h:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            statuses = await post_bodies(url, "X-Bot-Api-Secret-Token", ZALO_SECRET, ZALO_MALFORMED)
        assert statuses == [400] * len(ZALO_MALFORMED)
        refused = [r for r in caplog.records if "webhook" in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(refused) == len(ZALO_MALFORMED), [r.getMessage() for r in caplog.records]
        assert not [r for r in caplog.records if r.exc_info], "no traceback anywhere"
        _, typed, _ = await h.invite("Z-10", "tour")
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))


# -- start-up ----------------------------------------------------------------------------------------


def _config(tmp_path: Path, **bot: object) -> Config:
    options = {"channel": "telegram", "name": "test", "token": TOKEN, "forms": (SIPAS,), "pace": FAST_PACE, **bot}
    return Config(database=tmp_path / "survey.sqlite", bots=(BotConfig(**options),), source=tmp_path / "c.toml")


async def _run_expecting_error(config: Config) -> str:
    stop = asyncio.Event()
    with pytest.raises(ConfigError) as raised:
        await asyncio.wait_for(run(config, stop), 30)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    return message


async def test_webhook_port_already_in_use_is_one_clear_error(tmp_path):
    from bot.telegram.emulator import BotApiEmulator
    emulator = BotApiEmulator()
    base = await emulator.start()
    emulator.add_bot(TOKEN, "khaosat_test_bot")
    try:
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            config = _config(tmp_path, api_base=base, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/tg",
                             webhook_listen=f"127.0.0.1:{port}", webhook_secret=TG_SECRET)
            message = await _run_expecting_error(config)
    finally:
        await emulator.stop()
    assert f"127.0.0.1:{port}" in message and "webhook" in message and "in use" in message


async def test_unreachable_bot_api_is_one_clear_error(tmp_path):
    port = free_port()  # nothing listens there
    message = await _run_expecting_error(_config(tmp_path, api_base=f"http://127.0.0.1:{port}"))
    assert f"127.0.0.1:{port}" in message and "'test'" in message


async def test_refused_set_webhook_is_one_clear_error(tmp_path):
    from bot.telegram.emulator import BotApiEmulator
    emulator = BotApiEmulator()
    base = await emulator.start()
    emulator.add_bot(TOKEN, "khaosat_test_bot")
    emulator.answer_next("setWebhook", status=400, description="Bad Request: bad webhook: Failed to resolve host")
    port = free_port()
    try:
        message = await _run_expecting_error(_config(
            tmp_path, api_base=base, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/tg",
            webhook_listen=f"127.0.0.1:{port}", webhook_secret=TG_SECRET))
    finally:
        await emulator.stop()
    assert "setWebhook" in message and "Failed to resolve host" in message


async def test_zalo_refused_set_webhook_is_one_clear_error(tmp_path):
    from bot.zalo.emulator import ZaloBotApiEmulator
    emulator = ZaloBotApiEmulator()
    base = await emulator.start()
    emulator.add_bot("777:zalo-test-token", "Bot")
    emulator.answer_next("setWebhook", status=400, description="invalid url")
    port = free_port()
    from test_zalo_bot import TOUR
    try:
        message = await _run_expecting_error(_config(
            tmp_path, channel="zalo", name="zl", token="777:zalo-test-token", forms=(TOUR,), api_base=base,
            mode="webhook", webhook_url=f"http://127.0.0.1:{port}/zl", webhook_listen=f"127.0.0.1:{port}",
            webhook_secret=ZALO_SECRET))
    finally:
        await emulator.stop()
    assert "setWebhook" in message and "invalid url" in message


CONFIG = """\
[storage]
path = "survey.sqlite"

[[telegram]]
name = "test"
token_env = "KHAOSAT_TEST_TOKEN"
api_base = "{api}"
forms = ["{form}"]
mode = "webhook"
[telegram.webhook]
url = "http://127.0.0.1:{port}/tg"
listen = "127.0.0.1:{port}"
secret_token = "{secret}"
"""


async def khaosat_run(tmp_path: Path, api: str, port: int) -> tuple[int, str]:
    """`khaosat run` in a child process: (exit code, stderr); killed and failed after 60 s."""
    async with await open_storage(tmp_path / "survey.sqlite"):
        pass
    config = tmp_path / "khaosat.toml"
    config.write_text(CONFIG.format(api=api, form=SIPAS, port=port, secret=TG_SECRET), encoding="utf-8")
    env = {**os.environ, "KHAOSAT_TEST_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "--config", str(config), "run",
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                                 cwd=tmp_path)
    try:
        _, stderr = await asyncio.wait_for(child.communicate(), 60)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise AssertionError("khaosat run stayed alive after failing to start") from None
    return child.returncode, stderr.decode()


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "✗" in line]
    assert len(lines) == 1, stderr
    return lines[0]


async def test_khaosat_run_with_the_port_in_use_exits_with_one_line(tmp_path):
    """The real command: a non-zero exit, one line on stderr, no traceback (before: a traceback,
    and a process that stayed alive without serving)."""
    from bot.telegram.emulator import BotApiEmulator
    emulator = BotApiEmulator()
    base = await emulator.start()
    emulator.add_bot(TOKEN, "khaosat_test_bot")
    try:
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            code, stderr = await khaosat_run(tmp_path, base, port)
    finally:
        await emulator.stop()
    assert code != 0
    assert f"127.0.0.1:{port}" in one_line(stderr)


async def test_khaosat_run_with_the_bot_api_unreachable_exits_with_one_line(tmp_path):
    dead = free_port()
    code, stderr = await khaosat_run(tmp_path, f"http://127.0.0.1:{dead}", free_port())
    assert code != 0
    assert f"127.0.0.1:{dead}" in one_line(stderr)


async def test_a_malformed_zalo_update_from_get_updates_is_skipped_with_one_log_line(tmp_path, caplog):
    from test_zalo_bot import TOUR, has
    async with zalo_harness(tmp_path, forms=(TOUR,)) as h:
        _, typed, _ = await h.invite("Z-11", "tour")
        with caplog.at_level(logging.WARNING):
            for body in (b'{"ok": true, "result": {"event_name": 5}}', b'{"ok": true, "result": [1, 2]}'):
                h.emulator.answer_next("getUpdates", body=body)
            user = h.zalo.user()
            await user.send_text(typed)
            await user.wait_for(has("đồng ý tham gia"))
            # A long poll already in flight may take the person's message before the two scripted
            # answers: wait for the polls that get them (the order is not the point here).
            for _ in range(600):
                skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
                if len(skipped) >= 2:
                    break
                await asyncio.sleep(0.05)
        assert len(skipped) == 2 and not [r for r in caplog.records if r.exc_info]
