"""Bot tokens are needed only by commands that talk to a platform, and a token the platform refuses
stops `khaosat run` with one line naming the bot and the configuration key — through the real CLI
(a subprocess) against the real emulators."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.telegram.emulator import BotApiEmulator
from bot.zalo.emulator import ZaloBotApiEmulator

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "surveys" / "templates"
UNSET = "KHAOSAT_TEST_TOKEN_NOBODY_SETS"
TOKEN = "12345:not-a-token-it-issued"


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHAOSAT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **values}


def khaosat(*args, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env or environment(), timeout=120)


async def khaosat_async(*args, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """The CLI in a subprocess while this event loop keeps serving the emulators; (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", *map(str, args), cwd=cwd,
                                                   env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("khaosat run did not stop on a refused token") from None
    return process.returncode, stderr.decode()


def config_file(tmp_path: Path, bots: str, database: str = "survey.sqlite") -> Path:
    path = tmp_path / "khaosat.toml"
    path.write_text(f'[storage]\npath = "{database}"\n\n{bots}', encoding="utf-8")
    return path


def telegram_bot(name: str, api_base: str = "https://api.telegram.org", token_env: str = UNSET,
                 extra: str = "") -> str:
    return (f'[[telegram]]\nname = "{name}"\ntoken_env = "{token_env}"\napi_base = "{api_base}"\n'
            f'forms = ["{(TEMPLATES / "sipas_citizen.md").as_posix()}"]\n{extra}\n')


def zalo_bot(name: str, api_base: str = "https://bot-api.zapps.me", token_env: str = UNSET) -> str:
    return (f'[[zalo]]\nname = "{name}"\ntoken_env = "{token_env}"\napi_base = "{api_base}"\n'
            f'forms = ["{(TEMPLATES / "sipas_citizen.md").as_posix()}"]\n')


# -- tokens only where a platform is talked to -------------------------------------------------


def test_commands_that_do_not_talk_to_a_platform_run_without_tokens(tmp_path):
    webhook = ('mode = "webhook"\n[telegram.webhook]\nurl = "https://example.org/hook"\n'
               f'secret_token_env = "{UNSET}_SECRET"\n')
    config = config_file(tmp_path, telegram_bot("qt", extra=webhook) + zalo_bot("qt-zalo"))
    steps = [
        ("survey", "load", TEMPLATES / "survey.example.toml"),
        ("frame", "import", TEMPLATES / "frame.example.csv"),
        ("sample", "draw", "--seed", "7"),
        ("status",),
        ("status", "--format", "text"),
        ("invite", "--out", tmp_path / "letters", "--zalo", "Bot khảo sát"),
        ("remind", "--list-unreached", "--out", tmp_path / "unreached.csv"),
        ("remind", "--run-once"),  # queues reminders for the running bots; sends nothing itself
        ("export", "--out", tmp_path / "answers.csv"),
    ]
    for step in steps:
        result = khaosat("--config", config, *step, cwd=tmp_path)
        assert result.returncode == 0, (step, result.stderr)
        assert UNSET not in result.stderr


def test_run_names_every_bot_whose_token_is_not_set(tmp_path):
    config = config_file(tmp_path, telegram_bot("qt") + zalo_bot("qt-zalo", token_env=UNSET + "_ZALO"))
    assert khaosat("--config", config, "survey", "load", TEMPLATES / "survey.example.toml",
                   cwd=tmp_path).returncode == 0
    result = khaosat("--config", config, "run", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"[[telegram]] 'qt' reads token from ${UNSET}, which is not set" in result.stderr
    assert f"[[zalo]] 'qt-zalo' reads token from ${UNSET}_ZALO, which is not set" in result.stderr


def test_a_loaded_configuration_checks_its_secrets_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)
    config = load_config(config_file(tmp_path, telegram_bot("qt")))
    assert config.bots[0].token == ""
    with pytest.raises(ConfigError, match=rf"\[\[telegram\]\] 'qt' reads token from \${UNSET}, which is not set"):
        config.check_secrets()
    monkeypatch.setenv(UNSET, "123:abc")
    config = load_config(config_file(tmp_path, telegram_bot("qt")))
    config.check_secrets()
    assert config.bots[0].token == "123:abc"


def test_a_webhook_secret_from_the_environment_is_still_checked_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv(UNSET + "_SECRET", "has spaces in it")
    webhook = ('mode = "webhook"\n[telegram.webhook]\nurl = "https://example.org/hook"\n'
               f'secret_token_env = "{UNSET}_SECRET"\n')
    with pytest.raises(ConfigError, match="secret token"):
        load_config(config_file(tmp_path, telegram_bot("qt", extra=webhook)))


# -- a token the platform refuses ------------------------------------------------------------


@pytest.mark.parametrize("channel, status", [("telegram", 401), ("telegram", 404), ("zalo", 401), ("zalo", 404)])
async def test_run_stops_with_one_line_when_the_platform_refuses_a_token(tmp_path, channel, status):
    emulator = BotApiEmulator() if channel == "telegram" else ZaloBotApiEmulator()
    base = await emulator.start()
    try:
        if status == 404:  # what Telegram says of a token it never issued
            emulator.add_bot(TOKEN, "qt_bot") if channel == "telegram" else emulator.add_bot(TOKEN, "Bot qt")
            emulator.answer_next("getMe", status=404, description="Not Found")
        bots = (telegram_bot("qt", base, token_env="KHAOSAT_T") if channel == "telegram"
                else zalo_bot("qt", base, token_env="KHAOSAT_T"))
        config = config_file(tmp_path, bots)
        assert khaosat("--config", config, "survey", "load", TEMPLATES / "survey.example.toml",
                       cwd=tmp_path).returncode == 0
        code, stderr = await khaosat_async("--config", config, "run", cwd=tmp_path,
                                           env=environment(KHAOSAT_T=TOKEN))
    finally:
        await emulator.stop()
    assert code == 1, stderr
    assert "Traceback" not in stderr
    refusal = [line for line in stderr.splitlines() if "refused" in line]
    assert len(refusal) == 1, stderr
    assert f"[[{channel}]] 'qt'" in refusal[0] and "$KHAOSAT_T" in refusal[0] and "token_env" in refusal[0]
    assert str(status) in refusal[0]
    assert "not-a-token" not in stderr  # the token itself never reaches the output


async def test_a_second_bot_refused_at_start_up_stops_the_first_too(tmp_path):
    emulator = BotApiEmulator()
    base = await emulator.start()
    emulator.add_bot("111:good", "good_bot")
    try:
        bots = telegram_bot("good", base, token_env="KHAOSAT_GOOD") + telegram_bot("bad", base, token_env="KHAOSAT_BAD")
        config = config_file(tmp_path, bots)
        assert khaosat("--config", config, "survey", "load", TEMPLATES / "survey.example.toml",
                       cwd=tmp_path).returncode == 0
        code, stderr = await khaosat_async("--config", config, "run", cwd=tmp_path,
                                           env=environment(KHAOSAT_GOOD="111:good", KHAOSAT_BAD="222:bad"))
    finally:
        await emulator.stop()
    assert code == 1 and "Traceback" not in stderr, stderr
    assert "[[telegram]] 'bad'" in stderr and "$KHAOSAT_BAD" in stderr


async def test_a_start_up_failure_that_names_the_request_url_never_prints_the_token():
    """aiohttp names the request's URL in some errors, and a Bot API URL holds the token."""
    import aiohttp
    from yarl import URL

    from bot.config import BotConfig
    from bot.run import StartupError, at_start_up

    token = "123456:SECRET-token-value"
    config = BotConfig(channel="telegram", name="t", token=token, api_base="https://api.telegram.org")

    async def failing():
        raise aiohttp.InvalidURL(URL(f"https://api.telegram.org/bot{token}/getMe"))

    with pytest.raises(StartupError) as stopped:
        await at_start_up(config, "getMe", failing())
    assert "SECRET" not in str(stopped.value) and "/bot…/getMe" in str(stopped.value)
