"""Drawing samples: allocation arithmetic, reproducibility, storage, replacement and imports."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from storage import NotReplaceable, ReserveExhausted, SampleConflict, open_storage
from surveys.project import Allocation, load_survey, store_survey
from surveys.sampling import (
    AllocationError,
    FrameError,
    allocate,
    draw,
    draw_sample,
    import_frame_file,
    import_sample_file,
    replace_nonrespondents,
)

FORMS = Path(__file__).parent / "forms" / "survey"
T0 = "2026-07-01T08:00:00+07:00"
T1 = "2026-08-05T08:00:00+07:00"


@pytest.fixture
def project():
    return load_survey(FORMS / "survey.toml")


def citizens(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [{"frame_id": f"{unit}-{i:04d}", "group": "citizen", "stratum": f"citizen/{unit}"}
            for unit, size in sizes.items() for i in range(size)]
    return pd.DataFrame(rows)


def frame_file(path: Path, sizes: dict[str, int]) -> Path:
    lines = ["id,group,unit,name,phone"]
    n = 0
    for unit, size in sizes.items():
        for i in range(size):
            n += 1
            lines.append(f"{unit}-{i:04d},citizen,{unit},Người {n},09{n:08d}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- allocation ---------------------------------------------------------------------------------


def test_proportional_120_80_40_of_60_is_30_20_10_with_pi_one_quarter(project):
    members, strata = draw(citizens({"xa-a": 120, "xa-b": 80, "xa-c": 40}), project, seed=1)
    assert list(strata["n"]) == [30, 20, 10] and list(strata["population"]) == [120, 80, 40]
    assert (strata["pi"] == 0.25).all()
    main = members[members["role"] == "main"]
    assert main.groupby("stratum").size().to_dict() == {"citizen/xa-a": 30, "citizen/xa-b": 20, "citizen/xa-c": 10}
    assert (main["pi"] == 0.25).all() and (main["weight"] == 4.0).all()
    assert main["frame_id"].is_unique
    reserves = members[members["role"] == "reserve"]
    assert reserves.groupby("stratum")["reserve_rank"].apply(list).to_dict() == {
        f"citizen/{u}": [1, 2, 3] for u in ("xa-a", "xa-b", "xa-c")}
    assert not set(reserves["frame_id"]) & set(main["frame_id"])


@pytest.mark.parametrize("sizes, n, expected", [
    ({"a": 100, "b": 100, "c": 100}, 10, {"a": 4, "b": 3, "c": 3}),      # tie: earlier key
    ({"a": 50, "b": 30, "c": 20}, 9, {"a": 4, "b": 3, "c": 2}),          # 4.5/2.7/1.8 → largest remainders
    ({"a": 1000, "b": 5, "c": 0}, 10, {"a": 9, "b": 1, "c": 0}),         # at least 1 where people exist
    ({"a": 990, "b": 5, "c": 5}, 20, {"a": 18, "b": 1, "c": 1}),
])
def test_proportional_rounding(sizes, n, expected):
    result = allocate(sizes, Allocation("proportional", n))
    assert result == expected and sum(result.values()) == n


def test_equal_fixed_and_census():
    assert allocate({"a": 100, "b": 50, "c": 30}, Allocation("equal", 10)) == {"a": 4, "b": 3, "c": 3}
    # c has only 2 people: it is taken whole and the rest shared equally
    assert allocate({"a": 100, "b": 50, "c": 2}, Allocation("equal", 12)) == {"a": 5, "b": 5, "c": 2}
    fixed = Allocation("fixed", fixed={"a": 7, "b": 0, "c": 3})
    assert allocate({"a": 100, "b": 50, "c": 30}, fixed) == {"a": 7, "b": 0, "c": 3}
    assert allocate({"a": 4, "b": 2}, Allocation("census")) == {"a": 4, "b": 2}
    with pytest.raises(AllocationError, match="only 2 people"):
        allocate({"a": 2}, Allocation("fixed", fixed={"a": 3}))
    with pytest.raises(AllocationError, match="no n"):
        allocate({"a": 2, "z": 1}, Allocation("fixed", fixed={"a": 1}))
    with pytest.raises(AllocationError, match="less than the 3 strata"):
        allocate({"a": 5, "b": 5, "c": 5}, Allocation("proportional", 2))
    with pytest.raises(AllocationError, match="only 15 people"):
        allocate({"a": 5, "b": 5, "c": 5}, Allocation("equal", 16))


def test_pi_for_equal_and_fixed_allocation(project):
    equal = dataclasses.replace(project, groups={**project.groups, "citizen": dataclasses.replace(
        project.groups["citizen"], allocation=Allocation("equal", 30, reserve=0))})
    _, strata = draw(citizens({"xa-a": 120, "xa-b": 80, "xa-c": 40}), equal, seed=3)
    assert list(strata["n"]) == [10, 10, 10] and list(strata["pi"]) == [10 / 120, 10 / 80, 10 / 40]


# -- reproducibility -----------------------------------------------------------------------------


def test_same_seed_same_sample_whatever_the_row_order_and_other_seed_differs(project):
    frame = citizens({"xa-a": 120, "xa-b": 80, "xa-c": 40})
    first, _ = draw(frame, project, seed=2026)
    again, _ = draw(frame.sample(frac=1, random_state=5), project, seed=2026)
    other, _ = draw(frame, project, seed=2027)
    assert first.equals(again)
    assert set(first[first.role == "main"].frame_id) != set(other[other.role == "main"].frame_id)


# -- with storage ------------------------------------------------------------------------------------


async def drawn(tmp_path, project, sizes=None, seed=11):
    storage = await open_storage(tmp_path / "k.sqlite")
    try:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_frame_file(storage, project, frame_file(tmp_path / "f.csv", sizes or {"xa-a": 120, "xa-b": 80,
                                                                                             "xa-c": 40}), T0)
        result = await draw_sample(storage, project, seed, T0)
    except BaseException:
        await storage.close()
        raise
    return storage, result


async def test_draw_creates_respondents_for_members_only_with_pi_and_personal_data(tmp_path, project):
    storage, result = await drawn(tmp_path, project, {"xa-a": 120, "xa-b": 80, "xa-c": 40})
    async with storage:
        assert result.recorded and result.main == 60 and result.reserve == 9
        respondents = await storage.list_respondents()
        assert len(respondents) == 60
        assert {r.form_id for r in respondents} == {"sipas_citizen_example"}
        assert {r.disposition for r in respondents} == {"sampled"}
        members = await storage.sample_members("test-2026", "main")
        assert {m.pi for m in members} == {0.25} and {m.weight for m in members} == {4.0}
        by_id = {m.respondent_id: m for m in members}
        someone = respondents[0]
        assert someone.external_id == f"test-2026:{by_id[someone.id].frame_id}"
        assert someone.stratum == by_id[someone.id].stratum
        personal = await storage.personal(someone.id)
        assert personal.name.startswith("Người ") and personal.phone.startswith("+849")
        reserves = await storage.sample_members("test-2026", "reserve")
        assert all(r.respondent_id is None for r in reserves)
        assert [(s.stratum, s.population, s.n, s.reserve) for s in await storage.sample_strata("test-2026")] == [
            ("citizen/xa-a", 120, 30, 3), ("citizen/xa-b", 80, 20, 3), ("citizen/xa-c", 40, 10, 3)]
        # same seed again: nothing new; another seed: refused
        assert not (await draw_sample(storage, project, 11, T1)).recorded
        with pytest.raises(SampleConflict):
            await draw_sample(storage, project, 12, T1)
        assert len(await storage.list_respondents()) == 60


async def test_replacement_takes_reserves_in_order_and_keeps_pi(tmp_path, project):
    storage, _ = await drawn(tmp_path, project)
    async with storage:
        members = await storage.sample_members("test-2026", "main")
        in_a = [m for m in members if m.stratum == "citizen/xa-a"]
        reserves = [m for m in await storage.sample_members("test-2026", "reserve") if m.stratum == "citizen/xa-a"]
        assert [r.reserve_rank for r in reserves] == [1, 2, 3]
        first, second = in_a[0].respondent_id, in_a[1].respondent_id
        with pytest.raises(NotReplaceable, match="is sampled"):
            await storage.replace_member("test-2026", first, T1)
        await storage.set_disposition(first, "refused", T1)
        await storage.set_disposition(second, "unreachable", T1)
        replaced, exhausted = await replace_nonrespondents(storage, "test-2026", T1)
        assert exhausted == [] and [old for old, _ in replaced] == sorted([first, second])
        new = [m for _, m in replaced]
        assert [m.frame_id for m in new] == [reserves[0].frame_id, reserves[1].frame_id]
        assert all(m.pi == in_a[0].pi == 0.25 and m.weight == 4.0 for m in new)
        assert new[0].replaces == min(first, second)
        fresh = await storage.get_respondent(new[0].respondent_id)
        assert fresh.disposition == "sampled" and fresh.stratum == "citizen/xa-a"
        assert (await storage.personal(fresh.id)).name is not None
        assert (await storage.get_respondent(first)).disposition == "replaced"
        history = await storage.disposition_history(first)
        assert [h["status"] for h in history] == ["refused", "replaced"]
        with pytest.raises(NotReplaceable, match="replaced already"):
            await storage.replace_member("test-2026", first, T1, replaceable=("replaced",))
        # the third reserve, then none
        third = in_a[2].respondent_id
        await storage.set_disposition(third, "ineligible", T1)
        assert (await storage.replace_member("test-2026", third, T1)).reserve_rank == 3
        fourth = in_a[3].respondent_id
        await storage.set_disposition(fourth, "refused", T1)
        with pytest.raises(ReserveExhausted):
            await storage.replace_member("test-2026", fourth, T1)
        assert (await storage.get_respondent(fourth)).disposition == "refused"
        assert (await replace_nonrespondents(storage, "test-2026", T1))[1] == [fourth]


def sample_file(path: Path, column: str, values: list[str], extra: str = "") -> Path:
    lines = [f"id,group,unit,{column},role,reserve_rank"]
    for i, value in enumerate(values):
        lines.append(f"s{i},citizen,xa-a,{value},main,")
    lines.append(f"r1,citizen,xa-a,{values[0]},reserve,1")
    path.write_text("\n".join(lines) + extra + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("column, values, pi", [
    ("probability", ['"0,25"', "0.25", "0.25"], 0.25),
    ("weight", ["4", "4.0", "4"], 0.25),
])
async def test_sample_import_with_probabilities_or_weights(tmp_path, project, column, values, pi):
    path = sample_file(tmp_path / "s.csv", column, values)
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        recorded, count = await import_sample_file(storage, project, path, T0)
        assert recorded and count == 3
        members = await storage.sample_members("test-2026")
        assert [(m.role, m.pi, m.weight) for m in members] == [("main", pi, 4.0)] * 3 + [("reserve", pi, 4.0)]
        assert len(await storage.list_respondents()) == 3
        assert len(await storage.frame_rows("test-2026")) == 4
        assert [(s.population, s.n, s.reserve) for s in await storage.sample_strata("test-2026")] == [(12, 3, 1)]
        assert not (await import_sample_file(storage, project, path, T0))[0]


@pytest.mark.parametrize("extra, message", [
    ("\ns9,citizen,xa-a,1.5,main,", (6, "probability", "1.5 is not a probability in (0, 1]")),
    ("\ns9,citizen,xa-a,,main,", (6, "probability", "empty: give probability or weight")),
    ("\ns9,citizen,xa-a,0.5,reserve,", (6, "reserve_rank", "a reserve needs its rank, a whole number ≥ 1")),
    ("\ns9,citizen,xa-a,0.5,reserve,1", (6, "reserve_rank", "rank 1 of stratum citizen/xa-a is also on line 5")),
])
async def test_bad_sample_files_fail_whole(tmp_path, project, extra, message):
    path = sample_file(tmp_path / "s.csv", "probability", ["0.25", "0.25", "0.25"], extra)
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        with pytest.raises(FrameError) as caught:
            await import_sample_file(storage, project, path, T0)
        assert [(p.line, p.column, p.message) for p in caught.value.problems] == [message]
        assert await storage.list_respondents() == [] and await storage.sample_info("test-2026") is None


async def test_sample_import_from_xlsx_with_weights(tmp_path, project):
    book = Workbook()
    book.active.append(["id", "group", "unit", "name", "weight"])
    book.active.append(["h1", "hdnd", "tinh-t", "Đại biểu Một", 1])
    book.active.append(["c1", "citizen", "xa-b", "Người Hai", 12.5])
    book.save(tmp_path / "s.xlsx")
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_sample_file(storage, project, tmp_path / "s.xlsx", T0)
        assert sorted((m.frame_id, m.pi) for m in await storage.sample_members("test-2026")) == [
            ("c1", 0.08), ("h1", 1.0)]


def test_cli_draw_and_replace(tmp_path):
    db = tmp_path / "k.sqlite"
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", *a, "--db", str(db)],
                                    capture_output=True, text=True)
    assert run("survey", "load", str(FORMS / "survey.toml")).returncode == 0
    assert run("frame", "import", str(frame_file(tmp_path / "f.csv", {"xa-a": 120, "xa-b": 80, "xa-c": 40}))
               ).returncode == 0
    result = run("sample", "draw", "--seed", "5")
    assert result.returncode == 0 and "drew 60 member(s) and 9 reserve(s)" in result.stdout
    assert "0.2500" in result.stdout
    assert run("sample", "draw", "--seed", "6").returncode == 1
    result = run("sample", "replace", "1")
    assert result.returncode == 1 and "only refused, unreachable, ineligible can be replaced" in result.stderr
    result = run("sample", "replace", "--nonrespondents")
    assert result.returncode == 0 and "Replaced 0" in result.stdout
