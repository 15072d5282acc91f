"""Files answering media questions, written beside an export: `<stem>-media/`, one file per answer.

A media question's cell holds the stored file's name (as ODK stores it); here each such cell,
in the main table and in every repeat table, becomes the relative path `<stem>-media/<file>`, in
every format, and the file is written there. A file's name is pseudonymous: the respondent's
pseudonym, then the stored name (the question key and a digest; never the name the person's
file had, which may carry their name). An answer whose file is gone (erased, purged under the
retention period) keeps its stored name and has no file.

The bytes are read a few hundred sessions at a time (`read(session_ids)` gives `MediaFile`s with
their content), so memory holds one chunk; the folder is written under a temporary name and
renamed over the previous one, so a failed export leaves the previous folder as it was.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import pandas as pd

from exporters.table import ExportTable

#: Sessions read at once (their files in memory together).
CHUNK = 200


def media_folder(out: Path) -> Path:
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


async def write_media(table: ExportTable, out: Path,
                      read: Callable[[Sequence[int]], Awaitable[list[Any]]]) -> ExportTable:
    """Write the media files of ``table`` into ``<stem>-media/`` beside ``out``; the table with its
    media cells as relative paths. A table with no media answer is returned as it is (no folder)."""
    wanted = _wanted(table)
    if not wanted:
        return table
    folder = media_folder(out)
    partial = folder.with_name(f".{folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    paths: dict[tuple[int, str], str] = {}
    try:
        sessions = sorted({session for session, _ in wanted})
        for start in range(0, len(sessions), CHUNK):
            for found in await read(sessions[start:start + CHUNK]):
                key = (found.session_id, found.name)
                if key not in wanted or key in paths:
                    continue
                respondent = wanted[key]
                file_name = _safe(f"{respondent}_{found.name}" if respondent else found.name)
                (partial / file_name).write_bytes(found.content)
                paths[key] = f"{folder.name}/{file_name}"
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
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
