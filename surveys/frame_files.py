"""Reading a frame (or sample) file into a header and numbered rows, refusing what is not a clean table.

A CSV is read strictly, because a file that only looks like a table writes the wrong people:

* encodings: UTF-8 with or without BOM, or UTF-16 with its BOM (decoded: Excel's "Unicode
  text" export). UTF-16 *without* a BOM, UTF-32 and binary files are refused: their NUL bytes
  are valid UTF-8, so they would otherwise be read as names full of invisible characters;
* quoting: a quote that is never closed, or text after a closing quote, is refused with the
  line where that record starts (the csv module's lenient mode silently swallows the rest of
  the file into one cell);
* ragged rows: a row with more or fewer cells than the header is refused with its line: its
  cells would land in the wrong columns (a header's empty trailing cells, which spreadsheets
  write, may be matched by empty cells in the rows);
* a cell longer than the csv module's field limit (131,072 characters) is refused with its
  line (and column when the line has no quotes), rather than a traceback.

Every problem has the line as a spreadsheet shows it (header = line 1). An XLSX is read with
openpyxl (first sheet). A path that is a folder or cannot be read is one problem, too.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Problems reported before the rest are only counted.
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (f"line {self.line}" if self.line else None,
                                      f"column {self.column}" if self.column else None) if p)
        return f"{where}: {self.message}" if where else self.message


class FrameError(ValueError):
    """A frame (or sample) file refused whole; ``problems`` has at most MAX_PROBLEMS entries."""

    def __init__(self, source: str, problems: list[Problem], total: int | None = None) -> None:
        self.source = source
        self.problems = problems[:MAX_PROBLEMS]
        self.total = total if total is not None else len(problems)
        more = f" (and {self.total - len(self.problems)} more)" if self.total > len(self.problems) else ""
        super().__init__(f"{source}: {self.total} problem(s){more}: " + "; ".join(map(str, self.problems[:5])))


Rows = list[tuple[int, list[str]]]


def read_table(path: Path) -> tuple[list[str], Rows]:
    """Header and rows of a CSV or XLSX file; each row with its line number (header = 1)."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise FrameError(str(path), [Problem(None, None, "old .xls files are not read; save as .xlsx or CSV UTF-8")])
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _read_xlsx(path)
        return read_csv_bytes(path.read_bytes(), str(path))
    except IsADirectoryError:
        raise FrameError(str(path), [Problem(None, None, "is a folder, not a frame file")]) from None
    except FileNotFoundError:
        raise FrameError(str(path), [Problem(None, None, "no such file")]) from None
    except OSError as error:
        raise FrameError(str(path), [Problem(None, None, f"cannot be read ({error.strerror or error})")]) from None


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise FrameError(source, [Problem(None, None, "the file is UTF-32; save it as 'CSV UTF-8'")])
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise FrameError(source, [Problem(None, None, f"the file starts as UTF-16 but byte {error.start} is "
                                              "not UTF-16; save it as 'CSV UTF-8'")]) from None
    nul = data.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no frame has it: UTF-16 without a BOM, or a binary file
        looks_utf16 = data[:200].count(b"\x00") * 3 >= min(len(data), 200)
        raise FrameError(source, [Problem(None if looks_utf16 else data.count(b"\n", 0, nul) + 1, None,
                                          "the file is UTF-16 without a byte-order mark; save it as 'CSV UTF-8'"
                                          if looks_utf16 else "a NUL byte: this is not a text file (or it is "
                                          "damaged)")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FrameError(source, [Problem(line, None, "the file is not UTF-8 text (perhaps Windows-1258 or "
                                                      "TCVN3); in Excel save as 'CSV UTF-8'")]) from None
    return text


def read_csv_bytes(data: bytes, source: str) -> tuple[list[str], Rows]:
    text = _decode(data, source)
    if not text.strip():
        raise FrameError(source, [Problem(None, None, "the file is empty")])
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[Problem] = []
    header: list[str] | None = None
    rows: Rows = []
    line = 0
    while True:
        start = line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(_csv_problem(str(error), text, start, delimiter, header))
            break  # the reader cannot resume after a broken record
        line = reader.line_num
        if header is None:
            header = record
            width = len(header)
            while width and not header[width - 1].strip():
                width -= 1  # trailing empty header cells: spreadsheets add them
            continue
        if not any(cell.strip() for cell in record):
            continue
        # As many cells as the header (spreadsheets write a header's trailing empty cells and the
        # rows' alike); anything else shifts cells into the wrong columns.
        if len(record) > len(header) or any(cell.strip() for cell in record[width:]):
            problems.append(Problem(start, None, f"{len(record)} cells but the header has {width}: a separator "
                                    "inside an unquoted cell, or a column without a header"))
        elif len(record) < len(header):
            problems.append(Problem(start, None, f"{len(record)} cells but the header has {width}: a row cut "
                                    "short (a line break inside a cell that is not quoted?)"))
        rows.append((start, record[:width]))
    if problems:
        raise FrameError(source, problems)
    assert header is not None
    return header[:width], rows


def _csv_problem(error: str, text: str, start: int, delimiter: str, header: list[str] | None) -> Problem:
    if "field larger than field limit" in error:
        limit = csv.field_size_limit()
        column = None
        raw = text.splitlines()[start - 1] if start <= text.count("\n") + 1 else ""
        if '"' not in raw and header:
            cells = raw.split(delimiter)
            index = max(range(len(cells)), key=lambda i: len(cells[i]))
            column = header[index].strip() if index < len(header) else f"#{index + 1}"
        return Problem(start, column, f"a cell longer than {limit:,} characters (the csv module's limit): "
                                      "a frame cell is an id, a name, a phone or a code")
    if "unexpected end of data" in error or "EOF" in error:
        return Problem(start, None, "a quote (\") opened in this record is never closed")
    return Problem(start, None, f"broken quoting ({error}): a quoted cell must end with a quote "
                                "followed by the separator")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "date") and hasattr(value, "isoformat"):
        return value.date().isoformat() if hasattr(value, "hour") and not (value.hour or value.minute) \
            else value.isoformat()
    return str(value)


def _read_xlsx(path: Path) -> tuple[list[str], Rows]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as error:
        raise FrameError(str(path), [Problem(None, None, f"not a readable XLSX file ({error})")]) from None
    try:
        sheet = workbook.worksheets[0]
        rows = [(number, [_cell(v) for v in values])
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)]
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as error:
        raise FrameError(str(path), [Problem(None, None, f"not a readable XLSX file ({error})")]) from None
    finally:
        workbook.close()
    if not rows or not any(c.strip() for c in rows[0][1]):
        raise FrameError(str(path), [Problem(None, None, "the file is empty (no header on line 1)")])
    header = rows[0][1]
    while header and not header[-1].strip():
        header = header[:-1]
    return header, [(n, cells) for n, cells in rows[1:] if any(c.strip() for c in cells)]
