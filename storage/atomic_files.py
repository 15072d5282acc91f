"""Every output file is written whole or not at all: to a temporary file in the destination's
folder, flushed to disk, then renamed over the destination.

A rename within one folder is atomic on POSIX and Windows, so a reader (Excel, R, a coordinator
downloading a file) sees the old file or the new one, never half of one; a full disk, a killed
process or a writer's error leaves the previous file as it was and no 0-byte or truncated file
behind (the temporary file is removed). The temporary name keeps the destination's suffix,
because some writers pick the format from it (pandas' ``to_excel``).

Every writer of exports, letters, reports, lists and backups goes through ``atomic_path`` (or
``write_text``/``write_bytes``/``atomic_open`` built on it). An ``OSError`` becomes an
``OutputError`` (still an ``OSError``) whose message is one line naming the file and the cause
in plain words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would be larger than this system allows",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "its folder does not exist",
    errno.ENAMETOOLONG: "the name is too long",
}


class OutputError(OSError):
    """An output file could not be written; nothing was left at its path. ``str``: one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def describe(error: OSError, path: Path | str, verb: str = "write") -> str:
    """One line for an I/O error: "cannot write out/answers.csv: the disk is full"."""
    if isinstance(error, OutputError):
        return str(error)
    cause = _CAUSES.get(error.errno or 0) or error.strerror or str(error)
    return f"cannot {verb} {path}: {cause}"


@contextlib.contextmanager
def atomic_path(destination: Path | str) -> Iterator[Path]:
    """A temporary path beside ``destination`` to write; renamed over it when the block ends
    without an error, removed otherwise. ``OSError`` inside or at the rename → ``OutputError``."""
    destination = Path(destination)
    if destination.is_dir():
        raise OutputError(f"cannot write {destination}: it is a folder; give a file name")
    temporary = destination.with_name(f".{destination.stem}.{secrets.token_hex(4)}.tmp{destination.suffix}")
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, destination)
    except OSError as error:  # an OutputError of a nested writer names our temporary file: name ours
        raise OutputError(describe(error, destination).replace(str(temporary), str(destination))) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


@contextlib.contextmanager
def atomic_open(destination: Path | str, mode: str = "w", **options: Any) -> Iterator[IO]:
    """``open`` of a temporary file renamed over ``destination`` once closed without an error."""
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open writes whole files: mode 'w' or 'wb'")
    with atomic_path(destination) as temporary:
        with open(temporary, mode, **options) as handle:
            yield handle


def write_text(destination: Path | str, text: str, *, encoding: str = "utf-8", newline: str | None = None) -> None:
    with atomic_open(destination, "w", encoding=encoding, newline=newline) as handle:
        handle.write(text)


def write_bytes(destination: Path | str, data: bytes) -> None:
    with atomic_open(destination, "wb") as handle:
        handle.write(data)


def save_workbook(workbook: Any, destination: Path | str) -> None:
    """An openpyxl workbook saved through ``atomic_path``. openpyxl's own ``save`` leaves its zip
    archive open when a write fails (a full disk), and the archive's finaliser then prints a
    traceback at exit; here the archive is closed whatever happens, and so are the row streams of
    write-only sheets that were not reached (their finalisers would print tracebacks too)."""
    import zipfile

    from openpyxl.writer.excel import ExcelWriter

    if workbook.write_only and not workbook.worksheets:
        workbook.create_sheet()
    try:
        with atomic_path(destination) as partial:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                ExcelWriter(workbook, archive).write_data()
    except BaseException:
        for sheet in workbook.worksheets:
            rows = getattr(sheet, "_rows", None)  # openpyxl's generator of a write-only sheet
            if rows is not None:
                with contextlib.suppress(Exception):
                    rows.close()
        raise


def make_folder(folder: Path | str) -> Path:
    """``mkdir -p`` with the one-line error of this module."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder") from None
    except OSError as error:
        raise OutputError(describe(error, folder, "write into")) from None
    return folder


def _fsync(path: Path) -> None:
    """The data on disk before the rename: after a power cut, the new name never shows an empty file."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "the writer wrote no file", str(path))
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
