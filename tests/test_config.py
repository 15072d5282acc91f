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
    ("[storage]\npaht = 'x.sqlite'\n", "unknown key storage.paht"),
    ("[telegram_bots]\n", "unknown section [telegram_bots]"),
    ("[locale]\ntimezone = 'Asia/Hanoi_City'\n", "not a known time zone"),
    ("[locale]\nlanguage = 'fr'\n", "locale.language must be one of vi, en"),
    ("[storage\n", "not valid TOML"),
    ("[storage]\nsynchronous = 'off'\n", "storage.synchronous must be"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nmode = 'webhook'\n", "webhook mode but has no webhook.url"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\nforms = ['nope.md']\n", "form"),
    ("[[telegram]]\nname = 'qt'\ntoken = 't'\n[telegram.pace]\nper_sec = 3\n", "unknown key"),
    ("[telegram]\nname = 'qt'\n", "write bots as [[telegram]]"),
])
def test_a_wrong_configuration_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(path)
