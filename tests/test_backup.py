"""`khaosat backup --out FILE`: SQLite's online backup API copies a consistent database while the bots
keep writing — tested with a real writer process answering into the database during the backup, and
the copy opened and read back as a khaosat database."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from storage import open_storage

ROOT = Path(__file__).resolve().parents[1]

#: A writer like a running bot: each transaction adds a respondent and their personal row together.
WRITER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from storage import open_storage

    async def main(db, ready, stop):
        async with await open_storage(db) as storage:
            n = 0
            while not Path(stop).exists():
                await storage.add_respondent(f"W-{n}", form_id="f", stratum="s", name=f"Người {n}",
                                             phone="+84912345678", at="2026-08-01T08:00:00+07:00")
                n += 1
                if n == 200:
                    Path(ready).touch()
            print(n)

    asyncio.run(main(*sys.argv[1:]))
""")


def khaosat(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


async def seeded(db: Path, people: int) -> None:
    async with await open_storage(db) as storage:
        for n in range(people):
            await storage.add_respondent(f"S-{n}", form_id="f", stratum="s", name=f"Người {n}",
                                         phone="+84912345678", at="2026-07-01T08:00:00+07:00")


def counts(db: Path) -> tuple[int, int, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        respondents = conn.execute("SELECT count(*) FROM respondents").fetchone()[0]
        personal = conn.execute("SELECT count(*) FROM respondent_personal").fetchone()[0]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return respondents, personal, check


async def test_a_backup_taken_while_a_writer_is_active_is_a_consistent_database(tmp_path):
    db = tmp_path / "survey.sqlite"
    await seeded(db, 2000)
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(ready), str(stop)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if ready.exists() or writer.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert ready.exists(), writer.stderr.read() if writer.poll() is not None else "the writer did not start"
        copy = tmp_path / "backups" / "survey-copy.sqlite"
        result = await asyncio.to_thread(khaosat, "backup", "--db", db, "--out", copy, cwd=tmp_path)
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    written_during = int(out)
    assert result.returncode == 0, result.stderr
    assert "survey-copy.sqlite" in result.stdout
    respondents, personal, check = counts(copy)
    assert check == "ok"
    # a snapshot: every respondent with their personal row, none half-written, taken mid-writing
    assert respondents == personal and 2000 + 200 <= respondents <= 2000 + written_during
    assert not list(copy.parent.glob("*-wal")) and not list(copy.parent.glob("*.tmp*"))  # one self-contained file
    async with await open_storage(copy) as storage:  # and khaosat opens it as it is
        assert (await storage.get_respondent(1)).external_id == "S-0"
    assert counts(db)[0] == 2000 + written_during  # the writer lost nothing


async def test_a_backup_replaces_an_earlier_one_and_never_overwrites_the_database(tmp_path):
    db = tmp_path / "survey.sqlite"
    await seeded(db, 3)
    copy = tmp_path / "copy.sqlite"
    assert khaosat("backup", "--db", db, "--out", copy, cwd=tmp_path).returncode == 0
    await seeded(db, 0)
    async with await open_storage(db) as storage:
        await storage.add_respondent("later", at="2026-08-02T08:00:00+07:00")
    assert khaosat("backup", "--db", db, "--out", copy, cwd=tmp_path).returncode == 0
    assert counts(copy)[0] == 4
    refused = khaosat("backup", "--db", db, "--out", db, cwd=tmp_path)
    assert refused.returncode == 1 and "is the database itself" in refused.stderr
    assert counts(db)[0] == 4
    missing = khaosat("backup", "--db", tmp_path / "nope.sqlite", "--out", tmp_path / "x.sqlite", cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "x.sqlite").exists()
    folder = khaosat("backup", "--db", db, "--out", tmp_path, cwd=tmp_path)
    assert folder.returncode != 0 and "Traceback" not in folder.stderr
