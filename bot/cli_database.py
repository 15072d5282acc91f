"""The value of ``--db``: an SQLite file's path, or a ``postgresql://`` URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from storage import is_postgresql_url

__all__ = ["DATABASE", "DatabaseLocation", "is_postgresql_url"]

_FILE = click.Path(dir_okay=False, path_type=Path)


class DatabaseLocation(click.ParamType):
    """A path (as ``click.Path(dir_okay=False)``: a folder is refused) or a PostgreSQL URL, kept a
    string (``Path`` would fold its ``//``)."""

    name = "PATH|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or not is_postgresql_url(value):
            return _FILE.convert(value, param, ctx)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 — a port that is not a number raises here, not at connection time
        except ValueError as error:
            self.fail(f"{value!r} is not a PostgreSQL URL: {error}", param, ctx)
        if not parts.path.strip("/"):
            self.fail("a PostgreSQL URL names its database: postgresql://USER@HOST[:PORT]/DATABASE", param, ctx)
        return value


DATABASE = DatabaseLocation()
