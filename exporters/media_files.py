"""Files answering media questions, written beside an export: `<stem>-media/`, one file per answer.

A media question's cell holds the stored file's name (as ODK stores it); here each such cell,
in the main table and in every repeat table, becomes the relative path `<stem>-media/<file>`, in
every format, and the file is written there. A file's name is pseudonymous: the respondent's
pseudonym, then the stored name (the question key and a digest; never the name the person's
file had, which may carry their name). An answer whose file is gone (erased, purged under the
retention period) keeps its stored name and has no file.

The bytes are read a few hundred sessions at a time (`read(session_ids)` gives `MediaFile`s with
their content), so memory holds one chunk; the folder is written under a temporary name and
renamed over the previous one, so a failed export leaves the previous folder as it was. The
streamed long CSV (`MediaFolder.streamed`) does the same chunk by chunk as it is written.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Iterator, Sequence

import pandas as pd

from exporters.table import ExportTable

#: Sessions read at once (their files in memory together).
CHUNK = 200


def media_folder(out: Path) -> Path:
    """The folder of media answers beside an export: ``answers.csv`` → ``answers-media/`` (written
    here, bundled by ``exporters.bundle``)."""
    return out.with_name(f"{out.stem}-media")


def _tables(table: ExportTable) -> list[ExportTable]:
    return [table, *table.repeats.values()]


#: The `type` of a media answer's row in the long layout.
MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})


def _media_cells(part: ExportTable) -> list[tuple[str, list[bool]]]:
    """The columns holding media answers, each with the rows that do: a wide table's media
    columns (every row), the long layout's `value` where the row's `type` is a media type."""
    if "session" not in part.df.columns:
        return []
    if part.layout == "long":
        if "type" not in part.df.columns:
            return []
        return [("value", [t in MEDIA_TYPES for t in part.df["type"].tolist()])]
    return [(c, [True] * len(part.df)) for c, kind in part.kinds.items() if kind == "media" and c in part.df.columns]


def _wanted(table: ExportTable) -> dict[tuple[int, str], str]:
    """(session, stored name) → respondent pseudonym, for every media cell with a value."""
    wanted: dict[tuple[int, str], str] = {}
    for part in _tables(table):
        cells = _media_cells(part)
        if not cells:
            continue
        sessions = part.df["session"].tolist()
        respondents = part.df["respondent"].tolist() if "respondent" in part.df.columns else [""] * len(sessions)
        for column, rows in cells:
            for session, respondent, name, media in zip(sessions, respondents, part.df[column].tolist(), rows):
                if media and isinstance(name, str) and name and not pd.isna(session):
                    wanted[(int(session), name)] = "" if respondent is None or pd.isna(respondent) else str(respondent)
    return wanted


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


class MediaFolder:
    """``<stem>-media/`` being written: files go to a hidden partial folder, which ``finish``
    renames over the previous folder and ``abandon`` removes. An export without any media answer
    removes a previous export's folder at ``finish`` (its table points to none, and the chat's and
    the console's bundle would otherwise hand over the old files with it)."""

    def __init__(self, out: Path) -> None:
        self.folder = media_folder(out)
        self.partial = self.folder.with_name(f".{self.folder.name}.partial")
        self.started = False

    def keep(self, files: list[Any], wanted: dict[tuple[int, str], str], paths: dict[tuple[int, str], str]) -> None:
        """Write the ``wanted`` ones of ``files`` (read with their content); their relative paths into ``paths``."""
        if not self.started:
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
            self.started = True
        for found in files:
            key = (found.session_id, found.name)
            if key not in wanted or key in paths:
                continue
            respondent = wanted[key]
            file_name = _safe(f"{respondent}_{found.name}" if respondent else found.name)
            (self.partial / file_name).write_bytes(found.content)
            paths[key] = f"{self.folder.name}/{file_name}"

    def finish(self) -> None:
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
        if self.started:
            self.partial.rename(self.folder)

    def abandon(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def streamed(self, tables: Iterable[ExportTable],
                 read: Callable[[Sequence[int]], list[Any]]) -> Iterator[ExportTable]:
        """Each table of a streamed export (the long CSV's chunks) with its media cells as relative
        paths, its files written first; ``read`` is synchronous here (the stream runs in a worker
        thread). Memory holds one chunk's paths and ``CHUNK`` sessions' files. The caller
        ``finish``es once the whole export is written, or ``abandon``s."""
        for table in tables:
            wanted = _wanted(table)
            if wanted:
                paths: dict[tuple[int, str], str] = {}
                sessions = sorted({session for session, _ in wanted})
                for start in range(0, len(sessions), CHUNK):
                    self.keep(read(sessions[start:start + CHUNK]), wanted, paths)
                table = _with_paths(table, paths)
            yield table


async def write_media(table: ExportTable, out: Path,
                      read: Callable[[Sequence[int]], Awaitable[list[Any]]]) -> ExportTable:
    """Write the media files of ``table`` into ``<stem>-media/`` beside ``out``; the table with its
    media cells as relative paths. A table with no media answer is returned as it is (no folder,
    and a previous export's folder of that name removed)."""
    wanted = _wanted(table)
    media = MediaFolder(out)
    if not wanted:
        media.finish()
        return table
    paths: dict[tuple[int, str], str] = {}
    try:
        sessions = sorted({session for session, _ in wanted})
        for start in range(0, len(sessions), CHUNK):
            media.keep(await read(sessions[start:start + CHUNK]), wanted, paths)
        media.finish()
    except BaseException:
        media.abandon()
        raise
    return _with_paths(table, paths)


def _with_paths(table: ExportTable, paths: dict[tuple[int, str], str]) -> ExportTable:
    def relinked(part: ExportTable) -> ExportTable:
        cells = _media_cells(part)
        if not cells:
            return part
        df = part.df.copy()
        sessions = df["session"].tolist()
        for column, rows in cells:
            df[column] = pd.array([paths.get((int(s), v), v) if media and isinstance(v, str) and not pd.isna(s) else v
                                   for s, v, media in zip(sessions, df[column].tolist(), rows)], dtype=object)
        return dataclasses.replace(part, df=df)

    main = relinked(table)
    return dataclasses.replace(main, repeats={name: relinked(part) for name, part in table.repeats.items()})
