"""What each kind of console job does, in the job's own process (see ``console/jobs.py``).

Every kind calls the same ``fieldwork`` operation as the matching ``khaosat`` command, so the
console and the command line refuse the same input with the same message. Each returns the path
to offer for download (a file or a folder; None: nothing to download) and a one-line summary.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from console.jobs import keyed



def _now() -> dt.datetime:
    from bot import clock

    return clock.now(clock.VIETNAM)


async def _project(storage, job):
    from fieldwork.surveys import find_project

    return await find_project(storage, job.survey_id)


async def export(storage, job, params, folder: Path, progress):
    from exporters.media_files import media_folder
    from fieldwork.data import EXPORT_SUFFIX, ExportOptions, export as export_answers

    options = ExportOptions(params["file_format"], params.get("layout", "wide"), params.get("form_id") or None,
                            params.get("language", "vi"), bool(params.get("personal")),
                            delimiter=params.get("delimiter", ","), stata_version=int(params.get("stata_version", 118)),
                            labels=bool(params.get("labels")), label_headers=bool(params.get("label_headers")))
    options.check()
    name = f"{job.survey_id or 'khaosat'}-{options.layout}{'-personal' if options.personal else ''}"
    out = folder / f"{name}{EXPORT_SUFFIX[options.file_format]}"
    progress(0.0, keyed("job_step_reading_sessions"))
    done = await export_answers(storage, out, options, progress=progress.counter("sessions", 0.0, 0.8))
    figures = dict(rows=done.rows, columns=done.columns, layout=options.layout, file_format=options.file_format)
    progress(0.9, keyed("job_step_packing"))
    handed = await _hand_over(out)
    if not handed.bundled:
        return str(out), keyed("job_done_export", **figures)
    # One download: the ZIP of the main table, a table per repeat (and media answers); the page says which.
    inside = dict(tables=len(handed.tables), names=", ".join(handed.tables))
    if handed.media:
        return str(handed.path), keyed("job_done_export_zip_media", **figures, **inside, media=handed.media,
                                       folder=f"{media_folder(out).name}/")
    return str(handed.path), keyed("job_done_export_zip", **figures, **inside)


async def _hand_over(out: Path):
    import asyncio

    from exporters.bundle import handover
    from fieldwork import Refused

    try:
        return await asyncio.to_thread(handover, out)
    except OSError as error:  # the disk filled while packing: the job fails with one line
        raise Refused(str(error)) from None


async def frame_import(storage, job, params, folder: Path, progress):
    from fieldwork.sample import import_frame

    progress(0.1, keyed("job_step_checking_frame"))
    project = await _project(storage, job)
    done = await import_frame(storage, project, Path(params["upload"]), _now().isoformat(), name=params["name"])
    return None, keyed("job_done_frame", name=params["name"], rows=done.rows, added=done.added, changed=done.changed,
                       removed=done.removed, unchanged=done.unchanged)


async def draw(storage, job, params, folder: Path, progress):
    from fieldwork.sample import draw as draw_sample

    progress(0.1, keyed("job_step_drawing"))
    project = await _project(storage, job)
    drawn = await draw_sample(storage, project, int(params["seed"]), _now().isoformat())
    return None, keyed("job_done_drawn" if drawn.recorded else "job_done_drawn_already", main=drawn.main,
                       reserve=drawn.reserve, seed=drawn.seed)


async def sample_import(storage, job, params, folder: Path, progress):
    from fieldwork.sample import import_sample

    progress(0.1, keyed("job_step_checking_sample"))
    project = await _project(storage, job)
    recorded, main = await import_sample(storage, project, Path(params["upload"]), _now().isoformat(),
                                         name=params["name"])
    return None, keyed("job_done_sample" if recorded else "job_done_sample_already", main=main, name=params["name"])


async def letters(storage, job, params, folder: Path, progress):
    """Codes and letters for the people of the survey (or of some units) not yet reached; a zip
    of invitations.csv, letters.html, letters.pdf (when a headless Chromium is installed), qr/."""
    from fieldwork import invitations

    ways = invitations.channels(params.get("telegram"), params.get("zalo"), params.get("web"))
    people = await invitations.survey_respondents(storage, job.survey_id, params.get("units"))
    if params.get("respondent") is not None:  # one person's letter again (lost, or sent to the wrong address)
        people = [p for p in people if p.id == int(params["respondent"])]
    out = folder / "letters"
    issued = await invitations.issue(storage, out, ways, params.get("title") or None,
                                     _now(), reissue=bool(params.get("reissue")), respondents=people,
                                     where=f"survey {job.survey_id}" + (f", unit {params['unit']}" if params.get("unit")
                                                                          else ""),
                                     progress=progress.counter("codes", 0.0, 0.6))
    progress(0.7, keyed("job_step_printing"))
    invitations.print_pdf(issued.files["html"], issued.files["html"].with_suffix(".pdf"))
    progress(0.9, keyed("job_step_packing"))
    archive = shutil.make_archive(str(folder / f"letters-{job.survey_id}-{params.get('unit') or 'all'}"), "zip", out)
    return archive, keyed("job_done_letters", count=issued.count)


async def paper_forms(storage, job, params, folder: Path, progress):
    """Paper questionnaires for the people of the survey (or of some units) not yet reached: a zip of
    paper-forms.html, paper-forms.pdf (with a headless Chromium) and paper-forms.csv."""
    from fieldwork.paper import pack, print_forms

    project = await _project(storage, job)
    out = folder / "paper"
    printed = await print_forms(storage, project, out, _now(), units=params.get("units"),
                                reissue=bool(params.get("reissue")), respondent=params.get("respondent"),
                                progress=progress.counter("codes", 0.0, 0.6))
    progress(0.9, "packing")
    archive = pack(printed.files, folder / f"paper-forms-{job.survey_id}-{params.get('unit') or 'all'}")
    return str(archive), f"{printed.count} paper form(s)"


async def report(storage, job, params, folder: Path, progress):
    from fieldwork.data import report as write_report

    progress(0.1, keyed("job_step_reading_fieldwork"))
    project = await _project(storage, job)
    out = folder / "report"
    await write_report(out, storage=storage, project=project,
                       scores_path=Path(params["scores"]) if params.get("scores") else None,
                       weights_path=Path(params["weights"]) if params.get("weights") else None,
                       weight_column=params.get("weight_column") or None, language=params.get("language", "vi"),
                       now=_now())
    return str(out), keyed("job_done_report")


async def _data(storage, params):
    """The table to analyse: an uploaded file, or the database's pseudonymous wide export."""
    from fieldwork.data import answers_table

    if params.get("data"):
        return Path(params["data"])
    return await answers_table(storage, params.get("form_id") or None)


async def weight(storage, job, params, folder: Path, progress):
    from fieldwork import data

    progress(0.1, keyed("job_step_reading_data"))
    table = await _data(storage, params)
    progress(0.5, keyed("job_step_weighting"))
    out = folder / "weighted.csv"
    summary = data.weight(table, Path(params["design"]), out)
    return str(out), keyed("job_done_weight", column=summary["weight_column"], deff=f"{summary['weights']['deff']:.3f}")


async def estimate(storage, job, params, folder: Path, progress):
    from fieldwork import data

    table = await _data(storage, params)
    progress(0.5, keyed("job_step_estimating"))
    out = folder / "estimates.csv"
    data.estimate(table, Path(params["design"]), list(params.get("means", [])), list(params.get("totals", [])),
                  params.get("by") or None, out)
    return str(out), keyed("job_done_estimate")


async def score(storage, job, params, folder: Path, progress):
    from fieldwork import data

    table = await _data(storage, params)
    progress(0.5, keyed("job_step_scoring"))
    out = folder / "scores.csv"
    frame = data.score(table, Path(params["rules"]), out, unit=params["unit"], group=params.get("group") or None,
                       design_path=Path(params["design"]) if params.get("design") else None)
    return str(out), keyed("job_done_score", count=len(frame))


KINDS = {"export": export, "frame_import": frame_import, "sample_import": sample_import, "draw": draw, "letters": letters,
         "paper_forms": paper_forms, "report": report, "weight": weight, "estimate": estimate, "score": score}
