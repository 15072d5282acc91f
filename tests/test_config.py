from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_configuration_loads_with_its_documented_defaults():
    config = load_config(ROOT / "config.example.toml")
    assert config.database == ROOT / "khaosat.sqlite"  # relative to the file
    assert (config.timezone, config.language) == ("Asia/Ho_Chi_Minh", "vi")


@pytest.mark.parametrize("text, message", [
    ("[storage]\npaht = 'x.sqlite'\n", "unknown key storage.paht"),
    ("[telegram_bots]\n", "unknown section [telegram_bots]"),
    ("[locale]\ntimezone = 'Asia/Hanoi_City'\n", "not a known time zone"),
    ("[locale]\nlanguage = 'fr'\n", "locale.language must be one of vi, en"),
    ("[storage\n", "not valid TOML"),
])
def test_a_wrong_configuration_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(path)
