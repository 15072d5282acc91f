"""One download for an export and the files written beside it.

An export of a form with repeats writes one table per repeat beside the main file
(``answers.csv`` → ``answers-member.csv``, `exporters.writers.repeat_path`), and media answers go
in a folder ``answers-media/`` beside it. A person downloading from the chat or the console gets
one file: the export itself when nothing is beside it, else ``answers.zip`` holding the main
file, the repeat tables and the media folder, under plain relative names.

The companions are found by name in the main file's folder, so that folder is the export's own
(a console job's folder) or one where each export's name is unique (the chat's, named by time
and message id): a file there named ``<stem>-<anything><suffix>`` is taken for a repeat table.
"""

from __future__ import annotations

import glob
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from exporters.media_files import media_folder
from storage.atomic_files import atomic_path


@dataclass(frozen=True)
class Handover:
    """What to hand over for an export: ``path`` (the export itself, or the ZIP), the names of the
    tables it holds (the main file first) and how many media files."""

    path: Path
    tables: tuple[str, ...]
    media: int

    @property
    def bundled(self) -> bool:
        return len(self.tables) > 1 or self.media > 0


def repeat_tables(main: Path) -> list[Path]:
    """The repeat tables written beside ``main`` (``<stem>-<repeat><suffix>``), by name."""
    pattern = f"{glob.escape(main.stem)}-*{glob.escape(main.suffix)}"
    return sorted(path for path in main.parent.glob(pattern) if path.is_file() and not path.is_symlink())


def media_files(main: Path) -> list[Path]:
    """The files of the media folder beside ``main``, at any depth; links are left out (a link
    could point anywhere on the server, and media answers are written as plain files)."""
    folder = media_folder(main)
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for root, folders, files in os.walk(folder):  # does not follow links to folders
        folders.sort()
        found.extend(Path(root, name) for name in sorted(files) if not Path(root, name).is_symlink())
    return [path for path in found if path.is_file()]


def handover(main: Path | str) -> Handover:
    """The file to hand over for the export ``main``: ``main`` itself when it has no companions,
    else ``<stem>.zip`` beside it (written whole or not at all; an ``OSError`` is an
    ``OutputError`` naming the ZIP) holding ``main``, its repeat tables and ``<stem>-media/``."""
    main = Path(main)
    tables = [main, *repeat_tables(main)]
    media = media_files(main)
    names = tuple(path.name for path in tables)
    if len(tables) == 1 and not media:
        return Handover(main, names, 0)
    archive = main.with_suffix(".zip")
    with atomic_path(archive) as partial:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True, strict_timestamps=False) as bundle:
            for path in tables:
                bundle.write(path, path.name)
            for path in media:  # photos and recordings are compressed already
                bundle.write(path, path.relative_to(main.parent).as_posix(), compress_type=zipfile.ZIP_STORED)
    return Handover(archive, names, len(media))
