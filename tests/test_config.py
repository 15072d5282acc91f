from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_configuration_loads_with_its_documented_defaults(monkeypatch):
    monkeypatch.setenv("KHAOSAT_TELEGRAM_TOKEN", "123:secret-token")
    monkeypatch.setenv("KHAOSAT_TELEGRAM_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("KHAOSAT_ZALO_TOKEN", "9:zalo-secret-token")
    monkeypatch.setenv("KHAOSAT_ZALO_WEBHOOK_SECRET", "zalo-hook-secret")
    config = load_config(ROOT / "config.example.toml")
    assert config.database == ROOT / "khaosat.sqlite"  # relative to the file
    assert (config.timezone, config.language, config.synchronous) == ("Asia/Ho_Chi_Minh", "vi", "full")
    bot, zalo = config.bots
    assert (bot.channel, bot.name, bot.mode, bot.pace.per_second) == ("telegram", "quang-tri", "polling", 30)
    assert (zalo.channel, zalo.name, zalo.api_base) == ("zalo", "quang-tri-zalo", "https://bot-api.zapps.me")
    assert bot.forms[0] == ROOT / "surveys" / "templates" / "sipas_citizen.md"
    assert bot.token == "123:secret-token"
    assert "secret" not in repr(bot) and "secret" not in repr(config)  # tokens never reach a log line


def test_a_token_variable_that_is_not_set_is_named_where_tokens_are_needed(monkeypatch):
    monkeypatch.delenv("KHAOSAT_TELEGRAM_TOKEN", raising=False)
    config = load_config(ROOT / "config.example.toml")  # loading a survey or the status needs no token
    with pytest.raises(ConfigError, match=r"\$KHAOSAT_TELEGRAM_TOKEN, which is not set"):
        config.check_secrets()


@pytest.mark.parametrize("text, message", [
    ("[storage]\npaht = 'x.sqlite'\n", "[storage] paht: unknown key; known in [storage]: path, synchronous"),
    ("[telegram_bots]\n", "[telegram_bots]: unknown section"),
    ("[locale]\ntimezone = 'Asia/Hanoi_City'\n", "[locale] timezone: not a known time zone"),
    ("[locale]\nlanguage = 'fr'\n", "[locale] language: must be one of vi, en, got \"fr\""),
    ("[storage\n", "not valid TOML"),
    ("[storage]\nsynchronous = 'off'\n", "[storage] synchronous: must be 'full' or 'normal', got \"off\""),
    ("[storage]\npath = 5\n", "[storage] path: must be text in quotes, got 5"),
    ("[[storage]]\npath = 'x'\n", "[storage]: must be a table"),
    ("[reminders]\ninterval_minutes = 0\n", "[reminders] interval_minutes: must be ≥ 1, got 0"),
    ("[coordinators]\ndaily_summary = 8\n", "[coordinators] daily_summary: must be a local time"),
    ("[coordinators]\ndaily_summary = '8h'\n", "[coordinators] daily_summary: must be a local time"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nmode = 'webhook'\n",
     "[telegram.webhook] url: is required in webhook mode"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nforms = ['nope.md']\n", "[telegram] forms[1]: "),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nforms = ['.']\n", "is a folder, not a questionnaire file"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nforms = 'a.md'\n", "[telegram] forms: must be a list [ … ], got"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nper_sec = 3\n",
     "[telegram.pace] per_sec: unknown key; known in [telegram.pace]: max_attempts, max_in_flight,"),
    ("[telegram]\nname = 'qt'\n", "[telegram]: write bots as [[telegram]]"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nmax_attempts = \"many\"\n",
     "[telegram.pace] max_attempts: must be a whole number, got \"many\""),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\ncoordinators = [\"abc\"]\n",
     "[telegram] coordinators[1]: must be a Telegram user id (a number), got \"abc\""),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\npace = [1, 2]\n", "[telegram] pace: must be a table, got a list"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nper_second = -1\n",
     "[telegram.pace] per_second: must be > 0, got -1"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nper_chat_per_second = 0\n",
     "[telegram.pace] per_chat_per_second: must be > 0, got 0"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nmax_in_flight = 0\n",
     "[telegram.pace] max_in_flight: must be ≥ 1, got 0"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\ncode_attempts_per_hour = -5\n",
     "[telegram] code_attempts_per_hour: must be ≥ 1, got -5"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\ncode_attempts_per_hour = true\n",
     "[telegram] code_attempts_per_hour: must be a whole number, got true"),
    ("[[telegram]]\nname = 'Quang Tri'\ntoken = 't'\n", "[telegram] name: must be lower-case letters"),
    ("[[telegram]]\ntoken = 't'\n", "[telegram] name: is required"),
    ("[[telegram]]\nname = 'qt'\n", "[telegram] token_env: is required"),
    ("[[zalo]]\nname = 'z'\ntoken = 't'\nopen_codes = { kw = 5 }\n",
     "[zalo] open_codes.kw: must be a form_id in quotes or a table"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[[telegram]]\nname = 'qt'\ntoken = 'u'\n",
     "[[telegram]] name: two bots are named \"qt\""),
    ("[console]\nport = '80'\n", "[console] port: must be a whole number, got \"80\""),
    ("[storage]\npath = \"a\\u0000b\"\n", "[storage] path: must be a path (it contains a NUL character)"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.webhook]\nlisten = 'localhost:99999'\n",
     "[telegram.webhook] listen: must be HOST:PORT with a port from 1 to 65535"),
])
def test_a_wrong_configuration_names_the_key_and_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert message in str(refused.value)
    assert all(line.startswith(f"{path}: ") for line in refused.value.problems)


def test_every_problem_is_listed_at_once_and_each_bot_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[storage]\npath = 5\n[reminders]\ninterval_minutes = 'often'\n"
                    "[[telegram]]\nname = 'hue'\ntoken = 't'\ncode_attempts_per_hour = -5\n"
                    "[telegram.pace]\nmax_in_flight = 0\n"
                    "[[telegram]]\nname = 'qt'\ntoken = 't'\ncoordinators = [1, 'abc']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.problems == [
        f"{path}: [storage] path: must be text in quotes, got 5",
        f"{path}: [reminders] interval_minutes: must be a whole number, got \"often\"",
        f"{path}: [telegram.pace] max_in_flight of bot 'hue': must be ≥ 1, got 0",
        f"{path}: [telegram] code_attempts_per_hour of bot 'hue': must be ≥ 1, got -5",
        f"{path}: [telegram] coordinators[2] of bot 'qt': must be a Telegram user id (a number), got \"abc\"",
    ]


def test_an_open_code_must_name_one_of_the_bots_forms(tmp_path):
    form = ROOT / "surveys" / "templates" / "sipas_citizen.md"
    path = tmp_path / "config.toml"
    path.write_text(f"[[telegram]]\nname = 'qt'\ntoken = 't'\nforms = ['{form}']\n"
                    "open_codes = { quay = 'no_such_form', ok = { form = 'sipas_citizen_example' } }\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[telegram\] open_codes\.quay: names form \"no_such_form\", "
                                          r"which is not one of this bot's forms \(sipas_citizen_example\)"):
        load_config(path)
    path.write_text(path.read_text(encoding="utf-8").replace("no_such_form", "sipas_citizen_example"),
                    encoding="utf-8")
    bot, = load_config(path).bots
    assert bot.open_codes == {"quay": "sipas_citizen_example", "ok": "sipas_citizen_example"}


def test_quoted_telegram_ids_and_the_pace_reach_the_bot(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[[telegram]]\nname = 'qt'\ntoken = 't'\ncoordinators = [12, '34']\n"
                    "[telegram.pace]\nper_second = 5\nmax_in_flight = 2\nmax_attempts = 3\n", encoding="utf-8")
    bot, = load_config(path).bots
    assert bot.coordinators == (12, 34)
    assert (bot.pace.per_second, bot.pace.max_in_flight, bot.pace.max_attempts, bot.pace.per_chat_burst) == (5, 2, 3, 3)


def test_a_folder_given_as_the_configuration_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a configuration file"):
        load_config(tmp_path)


def test_the_command_line_lists_every_problem_and_exits_1_without_a_traceback(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "config.toml"
    path.write_text("[[telegram]]\nname = 'qt'\ntoken = 't'\nmax_attempts = 'many'\n"
                    "[telegram.pace]\nmax_in_flight = 0\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(path), "status"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "[telegram] max_attempts: unknown key" in result.stderr
    assert "[telegram.pace] max_in_flight: must be ≥ 1, got 0" in result.stderr
