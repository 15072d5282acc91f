"""The configuration file (TOML; see config.example.toml), checked strictly.

An unknown key is an error naming the key, because a misspelt setting that is silently
ignored is a deployment that behaves differently from what its coordinator wrote.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from surveys.messages import UI_LANGUAGES


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    database: Path = Path("khaosat.sqlite")
    timezone: str = "Asia/Ho_Chi_Minh"
    language: str = "vi"
    source: Path | None = field(default=None, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_SECTIONS = {"storage": {"path"}, "locale": {"timezone", "language"}}


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    for section, values in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(sorted(_SECTIONS))}")
        unknown = set(values) - _SECTIONS[section]
        if unknown:
            raise ConfigError(f"{path}: unknown key {section}.{sorted(unknown)[0]}; "
                              f"known in [{section}]: {', '.join(sorted(_SECTIONS[section]))}")
    storage: dict[str, Any] = raw.get("storage", {})
    locale: dict[str, Any] = raw.get("locale", {})
    database = Path(storage.get("path", Config.database))
    if not database.is_absolute():
        database = path.parent / database  # relative to the config file, not to where it is run from
    config = Config(database=database, timezone=locale.get("timezone", Config.timezone),
                    language=locale.get("language", Config.language), source=path)
    try:
        config.zone
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: locale.timezone '{config.timezone}' is not a known time zone") from None
    if config.language not in UI_LANGUAGES:
        raise ConfigError(f"{path}: locale.language must be one of {', '.join(UI_LANGUAGES)}")
    return config
