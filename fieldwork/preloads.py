"""Preloads: what a form may read of the sampled person, from their row of the sample frame.

A form reads them as `instance('respondent')/root/item/unit` (ODK's spelling of a secondary
instance with one item). The place that opens a session (the chat core, `khaosat try`) passes
them to `engine.new_session`; the session state keeps them, so the engine stays free of I/O.
Names and phone numbers are never preloads (they are personal data kept apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

from storage.records import FrameRow
from surveys.project import SurveyProject, Unit
from surveys.sampling import read_table

#: Columns of a frame file that are personal data, never given to a form.
PERSONAL_COLUMNS = frozenset({"name", "phone"})


class PreloadError(ValueError):
    """A frame file or `--preload` flag that cannot give the preloads; the message names the place."""


def frame_row_preloads(row: FrameRow, project: SurveyProject | None = None) -> dict[str, str]:
    """The frame attributes (strata variables, other columns), the names of the unit and of the units
    above it by level (`commune`, `province`… as the project names its levels), and the row's own
    frame_id, group, unit (its id), unit_name and stratum, which win over the others."""
    attributes = orjson.loads(row.attributes or "{}")
    found = {str(name): "" if value is None else str(value) for name, value in attributes.items()}
    unit = project.units.get(row.unit) if project is not None else None
    if unit is not None:
        found["unit_name"] = unit.name
        above: Unit | None = unit
        while above is not None:  # a frame column of a level's name keeps its value
            found.setdefault(above.level, above.name)
            above = project.units.get(above.parent) if above.parent else None
    found.update(frame_id=row.frame_id, group=row.group, unit=row.unit, stratum=row.stratum)
    return found


def table_row_preloads(path: Path, frame_id: str) -> dict[str, str]:
    """The row of a frame file (CSV or XLSX) whose `frame_id` column is `frame_id`, personal columns left out."""
    header, rows = read_table(path)
    names = [column.strip() for column in header]
    if "frame_id" not in names:
        raise PreloadError(f"{path}: line 1 has no column 'frame_id' (columns: {', '.join(names)})")
    key = names.index("frame_id")
    for _line, cells in rows:
        if key < len(cells) and cells[key].strip() == frame_id:
            return {name: (cells[i].strip() if i < len(cells) else "")
                    for i, name in enumerate(names) if name and name not in PERSONAL_COLUMNS}
    raise PreloadError(f"{path}: no row has frame_id '{frame_id}'")


def flag_preloads(flags: Mapping[str, str] | list[str]) -> dict[str, str]:
    """`--preload unit=Phường 1` flags as a mapping; a flag without `=` is refused, naming it."""
    found: dict[str, str] = {}
    for flag in flags:
        name, equals, value = flag.partition("=")
        if not equals or not name.strip():
            raise PreloadError(f"--preload '{flag}': write it as NAME=VALUE, e.g. --preload unit=Phường 1")
        found[name.strip()] = value.strip()
    return found
