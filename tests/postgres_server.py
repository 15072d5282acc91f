"""A real PostgreSQL server for the tests: one per test session, a fresh database per test.

``initdb`` into a temporary folder and ``pg_ctl start`` on a free port of 127.0.0.1 (and a
Unix socket in that folder), with durability off (``fsync``: a test database never outlives
the run). PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
user (Debian's package creates it) and the folder is given to it. ``KHAOSAT_TEST_POSTGRES_URL``
points the tests at an existing server instead (the URL's database is used only to create and
drop the per-test ones; its user needs CREATEDB). Tests skip, with the reason, only where the
server binaries (or, under root, a user to run them as) are absent.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

URL_VARIABLE = "KHAOSAT_TEST_POSTGRES_URL"
RUN_AS = "postgres"


def server_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest major version."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    return Path(debian[-1]).parent if debian else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """A server and the URL of a database on it that is there to create others from."""

    admin_url: str
    _folder: Path | None = None
    _binaries: Path | None = None
    _command_prefix: list[str] = field(default_factory=list)
    _template: str | None = None
    #: Names of this object's databases (test runs may share a server given by URL).
    _run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def url_of(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + database))

    async def create_database(self, *, migrated: bool) -> str:
        """A new database, empty (from template0) or ``migrated`` (a copy of one the migrations
        ran on once this session: a copy is cheaper than running them again): its URL."""
        import asyncpg

        name = f"khaosat_test_{self._run_id}_{next(self._names)}"
        template = await self._migrated_template() if migrated else "template0"
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(f"CREATE DATABASE {name} TEMPLATE {template} ENCODING 'UTF8'")
        finally:
            await connection.close()
        return self.url_of(name)

    async def _migrated_template(self) -> str:
        import asyncpg

        from storage.pg_migrations import migrate

        if self._template is None:
            url = await self.create_database(migrated=False)
            connection = await asyncpg.connect(url)
            try:
                await migrate(connection)
            finally:
                await connection.close()
            self._template = urlsplit(url).path.lstrip("/")
        return self._template

    async def drop_database(self, url: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path.lstrip('/')} WITH (FORCE)")
        finally:
            await connection.close()

    def stop(self) -> None:
        if self._template is not None:
            _run(self.drop_database(self.url_of(self._template)))
        if self._folder is None:
            return
        subprocess.run([*self._command_prefix, str(self._binaries / "pg_ctl"), "stop", "-D",
                        str(self._folder / "data"), "-m", "immediate", "-s"], check=False,
                       capture_output=True)
        shutil.rmtree(self._folder, ignore_errors=True)

    @classmethod
    def start(cls, binaries: Path, *, durable: bool = False) -> "PostgresServer":
        """``durable``: PostgreSQL's own defaults (fsync, synchronous_commit) as a deployment keeps
        them, for benchmarks; tests run without."""
        prefix: list[str] = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(RUN_AS)
            except KeyError:
                pytest.skip(f"running as root and there is no '{RUN_AS}' user to run PostgreSQL as")
            prefix = ["runuser", "-u", RUN_AS, "--"]
        folder = Path(tempfile.mkdtemp(prefix="khaosat-pg-"))
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        data, port = folder / "data", _free_port()
        run = lambda *args: subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)  # noqa: E731
        try:
            run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                "-E", "UTF8", "--locale=C")
            options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
                       + ("" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
            run(str(binaries / "pg_ctl"), "start", "-D", str(data), "-w", "-s", "-l", str(folder / "log"),
                "-o", options)
        except subprocess.CalledProcessError as error:
            log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"cannot start PostgreSQL: {error.stderr or error.stdout}{log}") from None
        return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", folder, binaries, prefix)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (started here, stopped at the end) or the one named by
    ``KHAOSAT_TEST_POSTGRES_URL``."""
    if os.environ.get(URL_VARIABLE):
        server = PostgresServer(os.environ[URL_VARIABLE])
    else:
        binaries = server_binaries()
        if binaries is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install"
                        f" postgresql, or set {URL_VARIABLE}")
        server = PostgresServer.start(binaries)
    try:
        yield server
    finally:
        server.stop()


def _run(coroutine):
    """``coroutine`` run to its end on a loop of its own (a test's loop may be running here)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def _database(server: PostgresServer, *, migrated: bool):
    url = _run(server.create_database(migrated=migrated))
    try:
        yield url
    finally:
        _run(server.drop_database(url))


# Both synchronous, so that a fixture parametrised over both databases may ask for one with
# ``request.getfixturevalue("postgresql_url")`` (only its PostgreSQL case then needs a server).
@pytest.fixture
def postgresql_url(postgres_server):
    """A fresh database for one test, migrated, dropped after it: its ``postgresql://`` URL."""
    yield from _database(postgres_server, migrated=True)


@pytest.fixture
def empty_postgresql_url(postgres_server):
    """A fresh, empty database for one test (no migration yet), dropped after it."""
    yield from _database(postgres_server, migrated=False)
