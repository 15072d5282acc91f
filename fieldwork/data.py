"""Data for analysts: exports in every format, weights, estimates, index scores and the report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from fieldwork import Refused

#: Reports are dated in Vietnam's time, as `bot.clock` reads it (not imported: fieldwork sits below the chat).
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

EXPORT_FORMATS = ("csv", "xlsx", "sav", "dta", "parquet")
EXPORT_LAYOUTS = ("wide", "long")
EXPORT_LANGUAGES = ("vi", "en")
#: The suffix of each export format's file.
EXPORT_SUFFIX = {"csv": ".csv", "xlsx": ".xlsx", "sav": ".sav", "dta": ".dta", "parquet": ".parquet"}


@dataclass(frozen=True)
class ExportOptions:
    """``khaosat export``'s options: format, layout, one questionnaire, label language, personal data."""

    file_format: str = "csv"
    layout: str = "wide"
    form_id: str | None = None
    language: str = "vi"
    personal: bool = False
    delimiter: str = ","  # CSV: ";" for Excel set to a comma-decimal (e.g. Vietnamese) locale
    stata_version: int = 118
    labels: bool = False  # csv/xlsx: choice labels instead of codes
    label_headers: bool = False  # csv/xlsx: question labels as column headers

    def check(self) -> None:
        for value, allowed, what in ((self.file_format, EXPORT_FORMATS, "format"),
                                     (self.layout, EXPORT_LAYOUTS, "layout"),
                                     (self.language, EXPORT_LANGUAGES, "language")):
            if value not in allowed:
                raise Refused(f"{what} '{value}' is not one of {', '.join(allowed)}")
        if (self.labels or self.label_headers) and self.file_format not in ("csv", "xlsx"):
            raise Refused("labels instead of codes, and question labels as headers, are for csv or xlsx")

    def write_options(self):
        from exporters.writers import WriteOptions

        return WriteOptions(delimiter=self.delimiter, stata_version=self.stata_version, labels=self.labels,
                            label_headers=self.label_headers)

    @property
    def streamed(self) -> bool:
        """A long CSV of codes is written a few thousand sessions at a time (memory bounded by one chunk)."""
        return self.layout == "long" and self.file_format == "csv" and not (self.labels or self.label_headers)


@dataclass(frozen=True)
class Exported:
    path: Path
    rows: int
    columns: int


async def export(storage, out: Path, options: ExportOptions, *, where: str = "the database",
                 progress: Callable[[int, int | None], None] = lambda done, total: None) -> Exported:
    """Write the answers to ``out`` as ``khaosat export`` does (see ``exporters.table``)."""
    from exporters.table import export_frame
    from exporters.writers import ExportError, write
    from storage import StorageError
    from storage.atomic_files import describe

    options.check()
    try:
        if options.form_id is not None and not await storage.list_sessions(options.form_id):
            known = sorted({s.form_id for s in await storage.list_sessions()})
            raise Refused(f"no sessions of form '{options.form_id}' in {where}"
                          + (f" (forms with sessions: {', '.join(known)})" if known else " (no sessions at all)"))
        if options.streamed:
            return await _export_long_csv(storage, out, options, progress)
        table = await export_frame(storage, options.form_id, layout=options.layout, personal=options.personal,
                                   language=options.language, progress=progress)
    except StorageError as error:
        raise Refused(f"{where}: {error}") from None
    except ExportError as error:
        raise Refused(f"cannot write {out}: {error}") from None
    except OSError as error:  # the disk is full, the folder read-only…: one line, no half file left
        raise Refused(describe(error, out)) from None
    try:
        table = await _media_beside(storage, table, out)
        write(table, out, options.file_format, options.write_options())
    except StorageError as error:
        raise Refused(f"{where}: {error}") from None
    except ExportError as error:
        raise Refused(f"cannot write {out}: {error}") from None
    except OSError as error:  # the disk is full, the folder read-only…: one line, no half file left
        raise Refused(describe(error, out)) from None
    return Exported(out, len(table.df), len(table.df.columns))


async def _media_beside(storage, table, out: Path):
    """The files of media answers in ``<stem>-media/`` beside ``out`` (`exporters.media_files`)."""
    from exporters.media_files import write_media

    return await write_media(table, out, lambda ids: storage.media.media_files(list(ids)))


async def _export_long_csv(storage, out: Path, options: ExportOptions,
                           progress: Callable[[int, int | None], None]) -> Exported:
    """Millions of answers: read and written chunk by chunk in a worker thread, off the event loop.
    Media answers' files go to ``<stem>-media/`` chunk by chunk too, read through the storage on
    the event loop (which only waits for the thread meanwhile)."""
    import asyncio

    from exporters.long_layout import long_columns, read_long_chunks
    from exporters.media_files import MediaFolder
    from exporters.writers import write_csv_chunks
    from storage.answers_read import database_file

    path = await database_file(storage)
    loop = asyncio.get_running_loop()
    media = MediaFolder(out)

    def read_media(session_ids):
        return asyncio.run_coroutine_threadsafe(storage.media.media_files(list(session_ids)), loop).result()

    def written() -> int:
        chunks = read_long_chunks(path, options.form_id, options.personal, options.language, progress)
        try:
            rows = write_csv_chunks(media.streamed(chunks, read_media), out, options.delimiter)
            media.finish()
        except BaseException:
            media.abandon()
            raise
        return rows

    rows = await asyncio.to_thread(written)
    return Exported(out, rows, len(long_columns(options.personal)))


def statistics(action: Callable[[], Any]) -> Any:
    """Run a statistics step; a design, rules or data problem is refused with its message."""
    from exporters.design import DesignError
    from surveys.scoring import ScoringError

    try:
        return action()
    except (DesignError, ScoringError, OSError) as error:
        raise Refused(str(error)) from None


async def answers_table(storage, form_id: str | None = None):
    """The wide, pseudonymous export of the database as a table to analyse."""
    from exporters.table import export_frame

    return (await export_frame(storage, form_id)).df


def weight(data, design_path: Path, out: Path) -> dict[str, Any]:
    from exporters.weighting import run_weight

    return statistics(lambda: run_weight(data, design_path, out))


def estimate(data, design_path: Path, means: list[str], totals: list[str], by: str | None, out: Path) -> None:
    from exporters.estimation import run_estimate

    if not means and not totals:
        raise Refused("ask for at least one mean or total")
    statistics(lambda: run_estimate(data, design_path, means, totals, by, out))


def score(data, rules_path: Path, out: Path, *, unit: str, group: str | None, design_path: Path | None):
    from exporters.scores import run_score

    return statistics(lambda: run_score(data, rules_path, out, unit=unit, group=group, design_path=design_path))


async def report(out: Path, *, storage=None, project=None, scores_path: Path | None = None,
                 weights_path: Path | None = None, weight_column: str | None = None, language: str = "vi",
                 now: dt.datetime, console=None):
    """report.html and report.xlsx in ``out`` from whichever inputs are given (see ``exporters.report``)."""
    from exporters.progress import survey_status
    from exporters.report import ReportInputs, build_report, load_scores, load_weights

    if weight_column is not None and weights_path is None:
        raise Refused("--weight-column needs --weights FILE")
    if storage is None and scores_path is None and weights_path is None:
        raise Refused("nothing to report: give --db (or --config), --scores FILE or --weights FILE")
    inputs = ReportInputs(language=language, generated=now.astimezone(_VIETNAM))
    if storage is None:
        inputs.skipped.append("fieldwork")
    else:
        inputs.project, inputs.status = project, await survey_status(storage, project, now)
    if weights_path is None:
        inputs.skipped.append("weights")
    else:
        inputs.weight_column = weight_column or "weight"
        inputs.weights, inputs.weights_dropped = statistics(lambda: load_weights(weights_path, inputs.weight_column))
        inputs.weights_source = weights_path.name
    if scores_path is None:
        inputs.skipped.append("scores")
    else:
        inputs.scores = statistics(lambda: load_scores(scores_path))
        inputs.scores_source = scores_path.name
    try:
        return inputs, build_report(inputs, out, console=console)
    except OSError as error:
        raise Refused(f"cannot write the report in {out}: {error}") from None
