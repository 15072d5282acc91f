"""Frames and samples: import a frame, preview the allocation, draw, import a drawn sample, replace."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fieldwork import Refused
from surveys.project import SurveyProject


@dataclass(frozen=True)
class StratumAllocation:
    """One stratum of a draw: N_h people in the frame, n_h drawn, π_h = n_h / N_h, reserves."""

    group: str
    stratum: str
    population: int
    n: int
    reserve: int

    @property
    def pi(self) -> float:
        return self.n / self.population if self.population else 0.0

    @property
    def weight(self) -> float | None:
        return self.population / self.n if self.n else None


@dataclass(frozen=True)
class FrameImported:
    rows: int
    added: int
    changed: int
    removed: int
    unchanged: int


def _frame_refused(error, shown: str) -> Refused:
    more = error.total - len(error.problems)
    return Refused(f"{shown}: nothing imported, {error.total} problem(s)",
                   [*error.problems, *([f"… and {more} more"] if more else [])])


async def import_frame(storage, project: SurveyProject, path: Path, at: str, *, name: str | None = None
                       ) -> FrameImported:
    """Check the frame file whole (every problem by line and column), then make it the survey's frame."""
    from storage import FrameConflict
    from surveys.sampling import FrameError, import_frame_file

    try:
        result, rows = await import_frame_file(storage, project, path, at)
    except FrameError as error:
        raise _frame_refused(error, name or str(path)) from None
    except FrameConflict as error:
        raise Refused(str(error)) from None
    return FrameImported(rows, result.added, result.changed, result.removed, result.unchanged)


def _strata(frame_strata) -> list[StratumAllocation]:
    return [StratumAllocation(s.group, s.stratum, int(s.population), int(s.n), int(s.reserve))
            for s in frame_strata.itertuples(index=False)]


async def allocation_preview(storage, project: SurveyProject) -> list[StratumAllocation]:
    """N_h, n_h and π_h per stratum that a draw from the stored frame would give (nothing drawn).

    The same allocation rules as the draw (``surveys.sampling.allocate``), so what is shown is
    what is drawn; allocation errors (a fixed n larger than a stratum…) are refused the same way.
    """
    from surveys.sampling import AllocationError, allocate

    # Counted by the database: the console shows this preview, and a million frame rows read
    # into Python objects would hold its event loop for seconds.
    counts = await storage.frame_sizes(project.id)
    if not counts:
        raise Refused(f"survey {project.id} has no frame: run `khaosat frame import` first")
    sizes: dict[str, Counter] = {}
    for (group, stratum), size in counts.items():
        sizes.setdefault(group, Counter())[stratum] = size
    strata = []
    for gid in sorted(sizes):
        group = project.groups[gid]
        try:
            allocated = allocate(sizes[gid], group.allocation)
        except AllocationError as error:
            raise Refused(f"group {gid}: {error}") from None
        for stratum in sorted(sizes[gid]):
            size, n = sizes[gid][stratum], allocated[stratum]
            strata.append(StratumAllocation(gid, stratum, size, n, min(group.allocation.reserve, size - n) if n else 0))
    return strata


@dataclass(frozen=True)
class Drawn:
    recorded: bool  # False: drawn before with this seed and frame, nothing written
    strata: list[StratumAllocation]
    main: int
    reserve: int
    seed: int


async def draw(storage, project: SurveyProject, seed: int, at: str) -> Drawn:
    """Draw the stratified sample and its reserves with ``seed``; the same seed and frame, the same sample."""
    from storage import SampleConflict
    from surveys.sampling import AllocationError, draw_sample

    if seed < 0:
        raise Refused("the seed must be a whole number ≥ 0")
    try:
        result = await draw_sample(storage, project, seed, at)
    except (AllocationError, SampleConflict) as error:
        raise Refused(str(error)) from None
    return Drawn(result.recorded, _strata(result.strata), result.main, result.reserve, seed)


async def import_sample(storage, project: SurveyProject, path: Path, at: str, *, name: str | None = None
                        ) -> tuple[bool, int]:
    """Record a sample drawn elsewhere (checked whole like a frame): (recorded, main members)."""
    from storage import SampleConflict
    from surveys.sampling import FrameError, import_sample_file

    try:
        return await import_sample_file(storage, project, path, at)
    except FrameError as error:
        raise _frame_refused(error, name or str(path)) from None
    except SampleConflict as error:
        raise Refused(str(error)) from None


@dataclass(frozen=True)
class Replaced:
    replaced: list  # (old respondent id, the reserve now fielded: storage.SampleMember)
    exhausted: list[int]  # respondents whose stratum had no reserve left


async def replace(storage, project: SurveyProject, at: str, *, respondent: int | None = None,
                  reason: str | None = None) -> Replaced:
    """Replace one respondent, or (``respondent`` None) every refused, unreachable or ineligible
    member, by the next reserve of the same stratum."""
    from storage import NotReplaceable, ReserveExhausted
    from surveys.sampling import replace_nonrespondents

    try:
        if respondent is None:
            replaced, exhausted = await replace_nonrespondents(storage, project.id, at)
        else:
            replaced, exhausted = [(respondent, await storage.replace_member(project.id, respondent, at,
                                                                              reason=reason))], []
    except (NotReplaceable, ReserveExhausted) as error:
        raise Refused(str(error)) from None
    return Replaced(replaced, exhausted)


def sample_summary(info) -> str:
    """How a survey's sample was made, in one phrase (``storage.SampleInfo`` or None)."""
    return "—" if info is None else f"{info.source} {info.created_at[:10]}"


__all__ = ["StratumAllocation", "FrameImported", "Drawn", "Replaced", "allocation_preview", "draw", "import_frame",
           "import_sample", "replace", "sample_summary"]
