"""Generated bad input to every loader: configurations, sample frames, survey projects with their
questionnaires (XLSForm markdown). Every outcome is a success or the loader's own clean error —
never another exception (a traceback) — and a refused load leaves the database byte for byte."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Config, ConfigError, load_config
from fieldwork import Refused
from fieldwork.sample import FrameImported, import_frame
from fieldwork.surveys import check_survey, store_checked
from storage import open_storage
from surveys.project import load_survey, store_survey
from surveys.xlsform import FormError, load_questionnaire_bytes

ROOT = Path(__file__).resolve().parents[1]
SURVEY = Path(__file__).parent / "forms" / "survey"
T0 = "2026-07-01T08:00:00+07:00"
EXAMPLES = int(os.environ.get("BAD_INPUT_EXAMPLES", 60))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])

# -- building blocks ------------------------------------------------------------------------------

#: Text that has broken loaders before: quotes, separators, line breaks, NUL, BOM, diacritics.
NASTY = st.text(alphabet=st.sampled_from(list("aZ09 _-.,;\t\"'|/\\\n\r\x00\ufeffđĐếỗ€{}[]=#$:")), max_size=14)
SCALARS = st.one_of(
    st.integers(-5, 100), st.floats(-1e3, 1e3, allow_nan=False), st.booleans(), NASTY,
    st.sampled_from(["full", "normal", "auto", "polling", "webhook", "08:00", "Asia/Ho_Chi_Minh", "vi", "en",
                     "qt", "https://api.example", "127.0.0.1:8443", "sipas_citizen_example", "many", "abc", ""]),
    st.dates())


def values(keys: list[str]) -> st.SearchStrategy:
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys), inner, max_size=3), max_leaves=5)


def database_files(db: Path) -> str:
    """Every file of the database (main, -wal, -shm), hashed: "unchanged" means byte for byte."""
    digest = hashlib.sha256()
    for path in sorted(db.parent.glob(db.name + "*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- configurations ------------------------------------------------------------------------------

SECTION_KEYS = {
    "storage": ["path", "synchronous"], "locale": ["timezone", "language"], "reminders": ["interval_minutes"],
    "coordinators": ["daily_summary"],
    "console": ["listen", "port", "secure_cookies", "session_hours", "max_upload_mb", "refresh_seconds",
                "behind_proxy"],
}
BOT_KEYS = ["name", "token", "token_env", "api_base", "mode", "forms", "open_codes", "open_stratum_question",
            "coordinators", "code_attempts_per_hour", "pace", "webhook"]
SUB_KEYS = ["per_second", "per_chat_per_second", "per_chat_burst", "max_in_flight", "max_attempts", "url",
            "listen", "secret_token", "secret_token_env", "form", "stratum"]
ALL_KEYS = [k for keys in SECTION_KEYS.values() for k in keys] + BOT_KEYS + SUB_KEYS + ["bogus"]


@st.composite
def configurations(draw) -> dict:
    raw: dict = {}
    for section in draw(st.lists(st.sampled_from([*SECTION_KEYS, "telegram", "zalo", "bogus"]), max_size=4,
                                 unique=True)):
        if section in ("telegram", "zalo"):
            bots = []
            for _ in range(draw(st.integers(0, 2))):
                bot = {"name": draw(st.sampled_from(["qt", "hue", "Bad Name", ""])), "token": "t"}
                for key in draw(st.lists(st.sampled_from(BOT_KEYS), max_size=4, unique=True)):
                    bot[key] = draw(values(SUB_KEYS + ["form"]))
                bots.append(bot)
            raw[section] = draw(st.sampled_from([bots, bots[0] if bots else {}]))  # [[t]] or a wrong [t]
        else:
            keys = SECTION_KEYS.get(section, ["x"]) + ["bogus"]
            raw[section] = draw(st.one_of(st.dictionaries(st.sampled_from(keys), values(ALL_KEYS), max_size=4),
                                          values(ALL_KEYS)))
    return raw


@SETTINGS
@given(raw=configurations())
def test_a_generated_configuration_loads_or_is_refused_with_one_line_per_problem(raw):
    try:
        text = tomli_w.dumps(raw)
    except (TypeError, ValueError):  # not expressible in TOML (a section that is not a table)
        text = f"storage = {tomli_w.dumps({'v': raw.get('storage', 1)}).split('=', 1)[1]}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path)
        except ConfigError as error:
            assert error.problems and all(line.startswith(f"{path}: ") and "\n" not in line
                                          for line in error.problems), error.problems
        else:
            assert isinstance(config, Config)
            assert all(bot.pace.max_in_flight >= 1 and bot.code_attempts_per_hour >= 1 for bot in config.bots)


# -- sample frames -------------------------------------------------------------------------------

CELLS = st.one_of(NASTY, st.sampled_from(["c1", "c2", "citizen", "Người dân", "hdnd", "leader", "xa-a", "Xã Bình",
                                          "tinh-t", "nu", "nam", "0912345678", "+84912345679", "912345680",
                                          "Nguyễn Thị Ánh", ""]))
COLUMNS = st.sampled_from(["id", "group", "unit", "name", "phone", "gender", "ID ", "address", ""])


@st.composite
def frame_files(draw) -> tuple[str, bytes]:
    if draw(st.integers(0, 9)) == 0:  # sometimes not text at all, or a fake workbook
        return draw(st.sampled_from(["frame.csv", "frame.xlsx", "frame.xls"])), draw(st.binary(max_size=200))
    header = draw(st.lists(COLUMNS, min_size=1, max_size=7))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    lines = [delimiter.join(header)]
    for _ in range(draw(st.integers(0, 6))):
        cells = draw(st.lists(CELLS, min_size=0, max_size=len(header) + 2))
        if draw(st.booleans()):
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]  # properly quoted
        lines.append(delimiter.join(cells))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1258"]))
    return "frame.csv", text.encode(encoding, errors="replace")


@pytest.fixture(scope="module")
def frame_database(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("frames")
    project = load_survey(SURVEY / "survey.toml")

    async def setup() -> None:
        async with await open_storage(folder / "k.sqlite") as storage:
            await store_survey(storage, project, "", "survey.toml", T0)
            good = folder / "good.csv"
            good.write_text("id,group,unit,name,phone,gender\nc1,citizen,xa-a,Ánh,0912345678,\n", encoding="utf-8")
            await import_frame(storage, project, good, T0)

    asyncio.run(setup())
    return folder / "k.sqlite", project


@SETTINGS
@given(file=frame_files())
def test_a_generated_frame_is_imported_whole_or_refused_without_a_write(frame_database, file):
    db, project = frame_database
    name, data = file
    path = db.parent / name
    path.write_bytes(data)
    before = database_files(db)

    async def load():
        async with await open_storage(db) as storage:
            return await import_frame(storage, project, path, T0, name=name)

    try:
        outcome = asyncio.run(load())
    except Refused as refused:
        assert refused.message.startswith(f"{name}: ")
        assert database_files(db) == before
    else:
        assert isinstance(outcome, FrameImported) and outcome.rows >= 1


# -- survey projects and their questionnaires ------------------------------------------------------

GOOD_TYPES = ["text", "integer", "decimal", "select_one yn", "select_multiple yn", "note", "date", "acknowledge"]
BAD_TYPES = ["select_one nothere", "begin group", "end group", "calculate", "geopoint", "bogus", ""]
RELEVANT = ["${q1} > 1", "${nothere} = 2", "((", "selected(${q2}, 'y')", ". > 0", "q1 = "]


@st.composite
def questionnaires(draw) -> str:
    """A small questionnaire in XLSForm markdown; in about half of them one cell is spoiled."""
    rows = [[draw(st.sampled_from(GOOD_TYPES)), f"q{number}", draw(st.sampled_from(["Câu hỏi?", "Question"])), "",
             draw(st.sampled_from(["", "yes"]))] for number in range(1, draw(st.integers(0, 5)) + 1)]
    if rows and draw(st.booleans()):
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 4))
        rows[row][column] = draw([st.sampled_from(BAD_TYPES), st.sampled_from(["q1", "1bad", "q 4", ""]), NASTY,
                                  st.sampled_from(RELEVANT), st.just("maybe")][column]).replace("\n", " ")
    form_id = draw(st.sampled_from(["sipas_citizen_example", "par_index_officials_example", "other", "bad id"]))
    return "\n".join([
        "| survey |", "| | type | name | label | relevant | required |",
        *("| | " + " | ".join(row) + " |" for row in rows),
        "| choices |", "| | list_name | name | label |", "| | yn | y | Có |", "| | yn | n | Không |",
        "| settings |", "| | form_id | version |", f"| | {form_id} | {draw(st.sampled_from(['1', '2', '']))} |"])


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    else:
        yield path


@st.composite
def survey_projects(draw) -> str:
    """The test survey project with up to two values replaced by generated ones, or removed."""
    import tomllib

    raw = tomllib.loads((SURVEY / "survey.toml").read_text(encoding="utf-8"))
    for path in draw(st.lists(st.sampled_from(list(_leaves(raw))), max_size=2, unique=True)):
        table = raw
        for key in path[:-1]:
            table = table.get(key) if isinstance(table, dict) else None
        if isinstance(table, dict):
            if draw(st.booleans()):
                table.pop(path[-1], None)
            else:
                table[path[-1]] = draw(SCALARS)
    try:
        return tomli_w.dumps(raw)
    except (TypeError, ValueError):
        return draw(NASTY)


@pytest.fixture(scope="module")
def survey_database(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("surveys")
    shutil.copy(SURVEY / "units.csv", folder / "units.csv")

    async def setup() -> None:
        async with await open_storage(folder / "k.sqlite") as storage:
            checked = check_survey(SURVEY / "survey.toml")
            await store_checked(storage, checked, dt.datetime.fromisoformat(T0))

    asyncio.run(setup())
    return folder / "k.sqlite"


@SETTINGS
@given(project=survey_projects(), form=questionnaires())
def test_a_generated_survey_and_questionnaire_load_or_are_refused_without_a_write(survey_database, project, form):
    db = survey_database
    survey_path, form_path = db.parent / "survey.toml", db.parent / "form.md"
    survey_path.write_text(project, encoding="utf-8")
    form_path.write_text(form, encoding="utf-8")
    try:  # the questionnaire loader alone: a Questionnaire or a FormError with its places
        load_questionnaire_bytes(form.encode("utf-8"), "form.md")
    except FormError as error:
        assert error.problems
    before = database_files(db)

    async def load():
        checked = check_survey(survey_path, (form_path,))
        async with await open_storage(db) as storage:
            return await store_checked(storage, checked, dt.datetime.fromisoformat(T0))

    try:
        asyncio.run(load())
    except Refused as refused:
        assert refused.message
        assert database_files(db) == before
