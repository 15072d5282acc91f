"""Media answers in exports: `khaosat try` sends a photo (also inside a repeat) and a voice note by
their paths, and every format's table holds `<stem>-media/<file>` where the file is written,
byte for byte, under a pseudonymous name; the long layout too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from fieldwork.data import ExportOptions, export
from storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT / "tests" / "forms" / "media.md"
PHOTO = b"\xff\xd8\xff\xe0 the shop front " * 40
ITEM = b"\x89PNG\r\n\x1a\n an item " * 30
VOICE = b"OggS voice " * 60


@pytest.fixture
def answered(tmp_path: Path) -> Path:
    """A database with one completed session of the media form, answered in `khaosat try`."""
    return _answered(tmp_path, tmp_path / "try.sqlite")


def _answered(tmp_path: Path, db: Path | str) -> Path | str:
    files = {"Nguyen Van A front.jpg": PHOTO, "item.png": ITEM, "voice.ogg": VOICE}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    lines = ["yes", "Tạp hoá Minh", str(tmp_path / "Nguyen Van A front.jpg"), str(tmp_path / "voice.ogg"), "", "",
             str(tmp_path / "item.png"), "2", "không"]
    result = subprocess.run([sys.executable, "-m", "bot.cli", "try", str(MEDIA), "--db", str(db)],
                            input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hoàn thành khảo sát" in result.stdout, result.stdout[-2000:]
    return db


async def _export(db: Path, out: Path, **options) -> None:
    async with await open_storage(db) as storage:
        await export(storage, out, ExportOptions(**options))


def _read(path: Path, file_format: str) -> pd.DataFrame:
    if file_format == "csv":
        return pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    if file_format == "xlsx":
        return pd.read_excel(path, sheet_name=0, dtype=str)
    if file_format == "sav":
        return pyreadstat.read_sav(str(path))[0]
    if file_format == "dta":
        return pyreadstat.read_dta(str(path))[0]
    return pd.read_parquet(path)


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "sav", "dta", "parquet"])
def test_every_format_points_to_the_files_written_beside_it(answered: Path, tmp_path: Path, file_format: str) -> None:
    out = tmp_path / "out" / f"media.{file_format}"
    asyncio.run(_export(answered, out, file_format=file_format))
    df = _read(out, file_format)
    row = df.iloc[0]
    respondent = str(row["respondent"])
    front, story = str(row["front"]), str(row["story"])
    assert front.startswith("media-media/") and story.startswith("media-media/")
    assert (out.parent / front).read_bytes() == PHOTO
    assert (out.parent / story).read_bytes() == VOICE
    assert Path(front).name.startswith(f"{respondent}_front-") and "Nguyen" not in front
    assert pd.isna(row["receipt"]) or str(row["receipt"]) in ("", "nan")
    folder = out.parent / "media-media"
    assert sorted(p.suffix for p in folder.iterdir()) == [".jpg", ".ogg", ".png"]
    item = next(p for p in folder.iterdir() if p.suffix == ".png")
    assert item.read_bytes() == ITEM and "items-1-item_photo" in item.name


def test_the_repeat_table_and_the_long_layout_point_to_the_files_too(answered: Path, tmp_path: Path) -> None:
    out = tmp_path / "wide.xlsx"
    asyncio.run(_export(answered, out, file_format="xlsx"))
    items = pd.read_excel(out, sheet_name=None, dtype=str)
    (sheet,) = [df for name, df in items.items() if "items" in name]
    assert (tmp_path / sheet.iloc[0]["item_photo"]).read_bytes() == ITEM
    long = tmp_path / "long.parquet"
    asyncio.run(_export(answered, long, file_format="parquet", layout="long"))
    df = pd.read_parquet(long)
    media = df[df["type"].isin(["image", "audio"]) & df["value"].notna()]
    assert len(media) == 3
    assert sorted((tmp_path / v).read_bytes() for v in media["value"]) == sorted([PHOTO, VOICE, ITEM])


def test_the_streamed_long_csv_writes_the_folder_and_the_paths_as_the_other_formats(answered: Path,
                                                                                     tmp_path: Path) -> None:
    """`--layout long --format csv` with codes is written chunk by chunk (exporters.writers.write_csv_chunks);
    its media cells are the same relative paths as the long parquet's, its files the same bytes."""
    out = tmp_path / "csv" / "long.csv"
    out.parent.mkdir()
    stale = out.parent / "long-media"
    stale.mkdir()
    (stale / "from-an-earlier-export.jpg").write_bytes(b"old")
    options = dict(file_format="csv", layout="long")
    assert ExportOptions(**options).streamed
    asyncio.run(_export(answered, out, **options))
    df = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    media = df[df["type"].isin(["image", "audio"]) & df["value"].notna()]
    assert len(media) == 3 and all(v.startswith("long-media/") for v in media["value"])
    assert sorted((out.parent / v).read_bytes() for v in media["value"]) == sorted([PHOTO, VOICE, ITEM])
    assert sorted(p.name for p in stale.iterdir()) == sorted(Path(v).name for v in media["value"])
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no partial folder left
    parquet = tmp_path / "csv" / "long.parquet"
    asyncio.run(_export(answered, parquet, file_format="parquet", layout="long"))
    same = pd.read_parquet(parquet)
    in_parquet = same[same["type"].isin(["image", "audio"]) & same["value"].notna()]
    assert sorted(Path(v).name for v in in_parquet["value"]) == sorted(Path(v).name for v in media["value"])
    asyncio.run(_export(answered, out, **options))  # again: the same folder, nothing added
    assert len(list(stale.iterdir())) == 3


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_file_that_cannot_be_opened_refuses_the_export_and_keeps_the_previous_one(answered: Path, tmp_path: Path,
                                                                                   file_format: str) -> None:
    """A file sealed with a key not in KHAOSAT_DATA_KEY: one clear line; the earlier export, its media
    folder included, stays as it was and no partial folder is left (streamed long CSV and otherwise)."""
    import sqlite3

    from fieldwork import Refused

    out = tmp_path / "out" / f"long.{file_format}"
    asyncio.run(_export(answered, out, file_format=file_format, layout="long"))
    before = {p.name: p.read_bytes() for p in (out.parent / "long-media").iterdir()}
    written = out.read_bytes()
    with sqlite3.connect(answered) as raw:
        raw.execute("UPDATE answer_media SET sealed_with = 'deadbeef' WHERE question = 'story'")
    with pytest.raises(Refused, match="media file was encrypted with a key that is not in KHAOSAT_DATA_KEY"):
        asyncio.run(_export(answered, out, file_format=file_format, layout="long"))
    assert out.read_bytes() == written
    assert {p.name: p.read_bytes() for p in (out.parent / "long-media").iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, "long-media"])


async def test_the_streamed_long_csv_of_a_postgresql_database_writes_the_files_too(tmp_path: Path,
                                                                                   postgresql_url: str) -> None:
    """On PostgreSQL the long CSV's reader holds its own connection (a URL), the files come through the storage."""
    await asyncio.to_thread(_answered, tmp_path, postgresql_url)
    out = tmp_path / "pg" / "long.csv"
    async with await open_storage(postgresql_url) as storage:
        await export(storage, out, ExportOptions(file_format="csv", layout="long"))
    df = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    media = df[df["type"].isin(["image", "audio"]) & df["value"].notna()]
    assert sorted((out.parent / v).read_bytes() for v in media["value"]) == sorted([PHOTO, VOICE, ITEM])
