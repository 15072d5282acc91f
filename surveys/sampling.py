"""Sample frames, stratified random samples and reserve lists.

Reading a frame. A frame is a CSV (UTF-8 with or without BOM, or UTF-16 with BOM; comma,
semicolon or tab separated; read strictly by ``surveys.frame_files``) or an XLSX file (first
sheet) with a header row: ``id``,
``group``, ``unit``, optional ``name`` and ``phone``, and one column per strata variable
that is not ``unit`` or a level (see ``surveys.project``). Column names ignore case and
surrounding spaces; other columns are refused (they may carry personal data nobody asked
for). A group may be written as its id or its label, a unit as its id or its name when no
other unit has that name. Phones are normalised to E.164 (a 9-digit number that lost its
leading 0 in Excel gets it back). Text is normalised to Unicode NFC, so diacritics typed on
different systems compare equal. Every problem is collected (up to ``MAX_PROBLEMS``) with the
line as a spreadsheet shows it (header = line 1) and the column; one problem and nothing is
imported.

Drawing. Within each group, each stratum h with N_h people gets n_h by the group's
allocation method:

* ``fixed``: n_h as written for each stratum key;
* ``proportional``: n·N_h/N rounded by largest remainders (Hamilton's method; ties go to
  the larger stratum, then the earlier key), with at least 1 for every stratum that has
  people: strata whose share is below 1 get 1 and the rest is re-shared among the others;
* ``equal``: n/H each (largest strata take the remainder), a stratum smaller than its
  share is taken whole and the excess re-shared;
* ``census``: everyone (n_h = N_h).

In each stratum (taken in sorted key order, people sorted by id, so the order of the file
does not matter) one random permutation from ``numpy.random.Generator(PCG64(seed))`` gives
the sample (its first n_h) and the ordered reserve list (the next ``reserve``). Every member
and reserve has inclusion probability π_h = n_h/N_h and base weight N_h/n_h, which are
exact for stratified simple random sampling without replacement. Same seed and frame, same
sample (numpy keeps ``permutation`` streams stable for a bit generator).

Replacement (``replace_nonrespondents``): a refused, unreachable or ineligible member is
replaced by the first unused reserve of the same stratum. π stays the design probability
n_h/N_h for everyone (standard practice: the replacement fills the same slot of the
design); the replaced person gets disposition "replaced" and keeps the disposition they had
in the response-rate counts. Substitution can bias estimates towards people easy to reach,
which weights do not correct; nonresponse adjustments belong to weighting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from surveys.frame_files import FrameError, Problem, read_table
from surveys.invitation_codes import PhoneError, normalise_phone
from surveys.project import Allocation, SurveyProject

FRAME_COLUMNS = ("id", "group", "unit", "name", "phone")
SAMPLE_COLUMNS = ("probability", "weight", "role", "reserve_rank")


class AllocationError(ValueError):
    pass


# -- validating frames -----------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _key(text: str) -> str:
    return _nfc(text).casefold()


def extra_variables(project: SurveyProject) -> list[str]:
    """Strata variables that come from frame columns (not the unit or a level)."""
    seen: list[str] = []
    for group in project.groups.values():
        for variable in group.strata:
            if variable != "unit" and variable not in project.levels and variable not in seen:
                seen.append(variable)
    return seen


def _number(text: str) -> float:
    text = text.strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # 0,25 as Vietnamese spreadsheets write it
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def validate_frame(header: list[str], rows: list[tuple[int, list[str]]], project: SurveyProject,
                   source: str = "frame", *, sample: bool = False) -> pd.DataFrame:
    """Check a frame (or, with ``sample``, an already-drawn sample) and return it as a DataFrame.

    Columns: frame_id, group, form_id, unit, stratum, attributes (JSON text), name, phone,
    line; for a sample also pi, role, reserve_rank. Raises ``FrameError`` with every problem.
    """
    problems: list[Problem] = []
    extras = extra_variables(project)
    names = [_key(h) for h in header]
    allowed = {*FRAME_COLUMNS, *(_key(v) for v in extras), *(SAMPLE_COLUMNS if sample else ())}
    for index, name in enumerate(names):
        if not name:
            problems.append(Problem(1, f"#{index + 1}", "a column has no name"))
        elif name not in allowed:
            problems.append(Problem(1, header[index].strip(), "unknown column; a frame has "
                                    + ", ".join([*FRAME_COLUMNS, *extras, *(SAMPLE_COLUMNS if sample else ())])))
        elif names.index(name) != index:
            problems.append(Problem(1, header[index].strip(), "the column appears twice"))
    required = ["id", "group", "unit"]  # strata columns: only where a row's group needs them
    for name in required:
        if name not in names:
            problems.append(Problem(1, name, "missing column"))
    if sample and "probability" not in names and "weight" not in names:
        problems.append(Problem(1, "probability", "missing column: an imported sample needs probability or weight"))
    if problems:
        raise FrameError(source, problems)
    if not rows:
        raise FrameError(source, [Problem(2, None, "the file has a header but no rows")])
    col = {name: names.index(name) for name in names if name}

    groups_by_name: dict[str, str] = {}
    for group in project.groups.values():
        for alias in (group.id, *group.label.values()):
            groups_by_name.setdefault(_key(alias), group.id)
    units_by_name: dict[str, str | None] = {}
    for unit in project.units.values():
        units_by_name[_key(unit.id)] = unit.id
    for unit in project.units.values():
        name = _key(unit.name)
        if name not in units_by_name:
            units_by_name[name] = unit.id
        elif units_by_name[name] != unit.id and _key(unit.id) != name:
            units_by_name[name] = None  # ambiguous name

    out: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    reserve_ranks: dict[tuple[str, int], int] = {}
    missing_columns: set[str] = set()

    def get(cells: list[str], name: str) -> str:
        index = col.get(name)
        return _nfc(cells[index]) if index is not None and index < len(cells) else ""

    for line, cells in rows:
        bad = len(problems)
        fid = get(cells, "id")
        if not fid:
            problems.append(Problem(line, "id", "empty"))
        elif fid in first_line:
            problems.append(Problem(line, "id", f"duplicate id '{fid}' (first on line {first_line[fid]})"))
        else:
            first_line[fid] = line
        raw_group = get(cells, "group")
        gid = groups_by_name.get(_key(raw_group)) if raw_group else None
        if not raw_group:
            problems.append(Problem(line, "group", "empty"))
        elif gid is None:
            problems.append(Problem(line, "group", f"unknown group '{raw_group}' (known: "
                                    f"{', '.join(project.groups)})"))
        raw_unit = get(cells, "unit")
        uid = units_by_name.get(_key(raw_unit)) if raw_unit else None
        if not raw_unit:
            problems.append(Problem(line, "unit", "empty"))
        elif uid is None:
            ambiguous = _key(raw_unit) in units_by_name
            problems.append(Problem(line, "unit", f"unit name '{raw_unit}' is shared by several units; use the id"
                                    if ambiguous else f"unknown unit '{raw_unit}'"))
        phone_text = get(cells, "phone")
        phone = None
        if phone_text:
            if re.fullmatch(r"[1-9]\d{8}", phone_text):
                phone_text = "0" + phone_text  # Excel dropped the leading zero
            try:
                phone = normalise_phone(phone_text)
            except PhoneError as error:
                problems.append(Problem(line, "phone", str(error)))
        attributes: dict[str, str] = {}
        parts: list[str] = []
        if gid is not None and uid is not None:
            parts.append(gid)
            for variable in project.groups[gid].strata:
                if variable == "unit":
                    value = uid
                elif variable in project.levels:
                    value = project.ancestor(uid, variable)
                    if value is None:
                        problems.append(Problem(line, "unit", f"'{uid}' is a {project.units[uid].level}; group "
                                                f"{gid} is stratified by {variable}, so the unit must be a "
                                                f"{variable} or below"))
                        continue
                else:
                    if _key(variable) not in col:
                        if variable not in missing_columns:
                            missing_columns.add(variable)
                            problems.append(Problem(1, variable, f"missing column: group {gid} (line {line}) "
                                                    f"is stratified by {variable}"))
                        continue
                    value = get(cells, _key(variable))
                    if not value:
                        problems.append(Problem(line, variable, "empty (a strata variable)"))
                        continue
                    if "/" in value:
                        problems.append(Problem(line, variable, f"'{value}' contains '/', which separates strata"))
                        continue
                attributes[variable] = value
                parts.append(value)
        record: dict[str, Any] = {}
        if sample:
            record.update(_sample_fields(cells, get, line, problems))
        if len(problems) > bad:
            continue
        out.append({"frame_id": fid, "group": gid, "form_id": project.groups[gid].form_id, "unit": uid,
                    "stratum": "/".join(parts), "attributes": json.dumps(attributes, ensure_ascii=False,
                                                                         sort_keys=True),
                    "name": get(cells, "name") or None, "phone": phone, "line": line, **record})
        if sample and record["role"] == "reserve":
            slot = ("/".join(parts), record["reserve_rank"])
            if slot in reserve_ranks:
                problems.append(Problem(line, "reserve_rank", f"rank {slot[1]} of stratum {slot[0]} is also on "
                                        f"line {reserve_ranks[slot]}"))
            reserve_ranks[slot] = line
    if problems:
        raise FrameError(source, problems)
    frame = pd.DataFrame(out)
    for column in ("name", "phone"):  # None, not NaN, where empty
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _sample_fields(cells, get, line: int, problems: list[Problem]) -> dict[str, Any]:
    pi = weight = None
    for name in ("probability", "weight"):
        text = get(cells, name)
        if not text:
            continue
        try:
            value = _number(text)
        except ValueError:
            problems.append(Problem(line, name, f"'{text}' is not a number"))
            continue
        if name == "probability":
            if not 0 < value <= 1:
                problems.append(Problem(line, name, f"{text} is not a probability in (0, 1]"))
            else:
                pi = value
        elif value < 1:
            problems.append(Problem(line, name, f"{text}: a base weight (1/probability) is at least 1"))
        else:
            weight = value
    if pi is None and weight is None and not any(p.line == line and p.column in ("probability", "weight")
                                                 for p in problems):
        problems.append(Problem(line, "probability", "empty: give probability or weight"))
    if pi is not None and weight is not None and abs(pi * weight - 1) > 1e-6:
        problems.append(Problem(line, "weight", f"{weight} is not 1/probability ({pi})"))
    role = (get(cells, "role") or "main").lower()
    rank = None
    if role not in ("main", "reserve"):
        problems.append(Problem(line, "role", f"'{role}' is not main or reserve"))
    rank_text = get(cells, "reserve_rank")
    if role == "reserve":
        if not re.fullmatch(r"\d+", rank_text) or int(rank_text) < 1:
            problems.append(Problem(line, "reserve_rank", "a reserve needs its rank, a whole number ≥ 1"))
        else:
            rank = int(rank_text)
    elif rank_text:
        problems.append(Problem(line, "reserve_rank", "only reserves have a rank"))
    return {"pi": pi if pi is not None else (1 / weight if weight else None), "role": role, "reserve_rank": rank}


def read_frame(path: Path, project: SurveyProject, *, sample: bool = False) -> pd.DataFrame:
    header, rows = read_table(path)
    return validate_frame(header, rows, project, str(path), sample=sample)


def frame_sha256(frame: pd.DataFrame) -> str:
    """Fingerprint of what a draw depends on: ids, groups and strata (sorted)."""
    digest = hashlib.sha256()
    for fid, group, stratum in sorted(zip(frame["frame_id"], frame["group"], frame["stratum"])):
        digest.update(f"{fid}\x1f{group}\x1f{stratum}\x1e".encode("utf-8"))
    return digest.hexdigest()


# -- allocation ----------------------------------------------------------------------------------


def _hamilton(quotas: dict[str, Fraction], sizes: Mapping[str, int]) -> dict[str, int]:
    floors = {k: math.floor(q) for k, q in quotas.items()}
    left = int(sum(quotas.values()) - sum(floors.values()))
    order = sorted(quotas, key=lambda k: (-(quotas[k] - floors[k]), -sizes[k], k))
    for k in order[:left]:
        floors[k] += 1
    return floors


def allocate(sizes: Mapping[str, int], allocation: Allocation) -> dict[str, int]:
    """n_h per stratum key for population sizes N_h (see the module docstring)."""
    sizes = {k: int(v) for k, v in sorted(sizes.items())}
    total = sum(sizes.values())
    method, n = allocation.method, allocation.n
    if method == "census":
        return dict(sizes)
    if method == "fixed":
        result = {}
        for key, size in sizes.items():
            if key not in allocation.fixed:
                raise AllocationError(f"stratum {key} has {size} people but no n in the fixed allocation")
            if allocation.fixed[key] > size:
                raise AllocationError(f"stratum {key}: n = {allocation.fixed[key]} but only {size} people")
            result[key] = allocation.fixed[key]
        for key, wanted in allocation.fixed.items():
            if key not in sizes and wanted > 0:
                raise AllocationError(f"stratum {key}: n = {wanted} but nobody in the frame")
        return result
    nonempty = {k: v for k, v in sizes.items() if v > 0}
    if n is None:
        raise AllocationError(f"method {method} needs n")
    if n > total:
        raise AllocationError(f"n = {n} but the frame has only {total} people")
    if n < len(nonempty):
        raise AllocationError(f"n = {n} is less than the {len(nonempty)} strata (each gets at least 1)")
    result = dict.fromkeys(sizes, 0)
    if method == "proportional":
        pinned: set[str] = set()
        while True:
            rest = {k: v for k, v in nonempty.items() if k not in pinned}
            n_rest = n - len(pinned)
            n_pop = sum(rest.values())
            quotas = {k: Fraction(n_rest * v, n_pop) for k, v in rest.items()}
            low = {k for k, q in quotas.items() if q < 1}
            if not low:
                break
            pinned |= low
        result.update({k: 1 for k in pinned})
        result.update(_hamilton(quotas, sizes))
        return result
    if method == "equal":
        capped: dict[str, int] = {}
        while True:
            rest = {k: v for k, v in nonempty.items() if k not in capped}
            share = Fraction(n - sum(capped.values()), len(rest))
            small = {k: v for k, v in rest.items() if v < share}
            if not small:
                break
            capped.update(small)
        result.update(capped)
        result.update(_hamilton(dict.fromkeys(rest, share), sizes))
        return result
    raise AllocationError(f"unknown allocation method {method!r}")


# -- drawing ---------------------------------------------------------------------------------


def draw(frame: pd.DataFrame, project: SurveyProject, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw every group's stratified sample and reserve lists.

    ``frame`` needs frame_id, group and stratum. Returns (members, strata): members has
    frame_id, group, form_id, stratum, role ("main"/"reserve"), reserve_rank, pi, weight;
    strata has group, stratum, population, n, reserve, pi.
    """
    if seed < 0:
        raise AllocationError("the seed must be a whole number ≥ 0")
    rng = np.random.Generator(np.random.PCG64(seed))
    members: list[dict[str, Any]] = []
    strata: list[dict[str, Any]] = []
    frame = frame.sort_values(["group", "stratum", "frame_id"], kind="mergesort")
    by_group = dict(tuple(frame.groupby("group", sort=True)))
    for gid in sorted(by_group):
        group = project.groups[gid]
        people = by_group[gid]
        ids_by_stratum = {k: v["frame_id"].to_numpy() for k, v in people.groupby("stratum", sort=True)}
        try:
            sizes = allocate({k: len(v) for k, v in ids_by_stratum.items()}, group.allocation)
        except AllocationError as error:
            raise AllocationError(f"group {gid}: {error}") from None
        for stratum in sorted(ids_by_stratum):
            ids = ids_by_stratum[stratum]
            size, n = len(ids), sizes[stratum]
            reserve = min(group.allocation.reserve, size - n) if n else 0
            pi = n / size if size else 0.0
            strata.append({"group": gid, "stratum": stratum, "population": size, "n": n, "reserve": reserve,
                           "pi": pi})
            if n == 0:
                continue
            order = ids[rng.permutation(size)]
            for fid in order[:n]:
                members.append({"frame_id": fid, "group": gid, "form_id": group.form_id, "stratum": stratum,
                                "role": "main", "reserve_rank": None, "pi": pi, "weight": size / n})
            for rank, fid in enumerate(order[n:n + reserve], start=1):
                members.append({"frame_id": fid, "group": gid, "form_id": group.form_id, "stratum": stratum,
                                "role": "reserve", "reserve_rank": rank, "pi": pi, "weight": size / n})
    columns = ["frame_id", "group", "form_id", "stratum", "role", "reserve_rank", "pi", "weight"]
    return pd.DataFrame(members, columns=columns), pd.DataFrame(
        strata, columns=["group", "stratum", "population", "n", "reserve", "pi"])


# -- with storage ----------------------------------------------------------------------------------


def _frame_rows(frame: pd.DataFrame):
    from storage import FrameRow

    return [FrameRow(r.frame_id, r.group, r.unit, r.stratum, r.attributes, r.name, r.phone)
            for r in frame.itertuples(index=False)]


async def import_frame_file(storage, project: SurveyProject, path: Path, at: str):
    """Validate ``path`` whole, then make it the survey's frame (``Storage.import_frame``)."""
    frame = read_frame(path, project)
    return await storage.import_frame(project.id, _frame_rows(frame), at), len(frame)


@dataclass(frozen=True)
class DrawResult:
    recorded: bool  # False: the same draw was recorded before
    strata: pd.DataFrame
    main: int
    reserve: int


async def draw_sample(storage, project: SurveyProject, seed: int, at: str) -> DrawResult:
    """Draw from the stored frame and record the sample; idempotent for the same seed and frame."""
    from storage import SampleMemberInput, SampleStratum

    rows = await storage.frame_rows(project.id)
    if not rows:
        raise AllocationError(f"survey {project.id} has no frame: run `khaosat frame import` first")
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    members, strata = draw(frame, project, seed)
    params = {"allocation": {g.id: dataclasses.asdict(g.allocation) for g in project.groups.values()},
              "method": "stratified simple random sampling without replacement", "seed": seed}
    recorded = await storage.record_sample(
        project.id,
        [SampleMemberInput(m.frame_id, m.group, m.form_id, m.stratum, float(m.pi), m.role,
                           None if pd.isna(m.reserve_rank) else int(m.reserve_rank))
         for m in members.itertuples(index=False)],
        [SampleStratum(s.group, s.stratum, int(s.population), int(s.n), int(s.reserve))
         for s in strata.itertuples(index=False)],
        source="drawn", seed=seed, frame_sha256=frame_sha256(frame), params=json.dumps(params), at=at)
    return DrawResult(recorded, strata, int((members["role"] == "main").sum()),
                      int((members["role"] == "reserve").sum()))


async def import_sample_file(storage, project: SurveyProject, path: Path, at: str) -> tuple[bool, int]:
    """Record an already-drawn sample (with probability or weight per row) as the survey's sample.

    The file is also stored as the survey's frame. Per stratum, N_h is estimated as the sum
    of the main members' weights and n_h is their count (for information only: each member's
    own probability is what is stored).
    """
    from storage import SampleMemberInput, SampleStratum

    frame = read_frame(path, project, sample=True)
    strata = []
    for (gid, stratum), part in frame.groupby(["group", "stratum"], sort=True):
        main = part[part["role"] == "main"]
        strata.append(SampleStratum(gid, stratum, int(round((1 / main["pi"]).sum())), len(main),
                                    int((part["role"] == "reserve").sum())))
    members = [SampleMemberInput(r.frame_id, r.group, r.form_id, r.stratum, float(r.pi), r.role,
                                 None if r.reserve_rank is None or pd.isna(r.reserve_rank) else int(r.reserve_rank))
               for r in frame.itertuples(index=False)]
    recorded = await storage.record_sample(
        project.id, members, strata, source="imported", seed=None, frame_sha256=frame_sha256(frame),
        params=json.dumps({"file": path.name}), at=at, frame=_frame_rows(frame))
    return recorded, int((frame["role"] == "main").sum())


async def replace_nonrespondents(storage, survey_id: str, at: str,
                                 dispositions: Sequence[str] = ("refused", "unreachable", "ineligible")):
    """Replace every refused/unreachable/ineligible member from its stratum's reserve list, in order.

    Returns (replaced, exhausted): pairs (old respondent id, new member) and the respondent ids
    whose stratum had no reserve left (they stay as they are).
    """
    from storage import ReserveExhausted

    replaced, exhausted = [], []
    for respondent_id in await storage.replaceable_members(survey_id, dispositions):
        try:
            member = await storage.replace_member(survey_id, respondent_id, at, replaceable=dispositions)
        except ReserveExhausted:
            exhausted.append(respondent_id)
            continue
        replaced.append((respondent_id, member))
    return replaced, exhausted
