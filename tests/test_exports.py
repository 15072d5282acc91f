"""Exports: every format from a real SQLite database filled through the real engine.

Sessions on the tour form and on the SIPAS template are driven with `Conversations` and
engine events (no mocks); SIPAS respondents come from a sample drawn with the real sampler, so
the sample columns (group, unit, pi, weight) are filled.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
from openpyxl import load_workbook

from exporters.table import ExportTable, export_frame
from fieldwork.conversations import Conversations
from exporters.writers import (
    FORMATS,
    ExportError,
    WriteOptions,
    dta_frame,
    legal_names,
    read_parquet_metadata,
    sav_frame,
    stata_codes,
    typed_columns,
    write,
)
from storage import open_storage
from surveys import engine as E
from surveys.model import QuestionType
from surveys.project import load_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from surveys.xlsform import load_questionnaire
from survey_toml import survey_toml

HERE = Path(__file__).parent
ROOT = HERE.parent
TOUR = HERE / "forms" / "tour.md"
SIPAS = ROOT / "surveys" / "templates" / "sipas_citizen.md"
SURVEY = HERE / "forms" / "survey" / "survey.toml"
ICT = dt.timezone(dt.timedelta(hours=7))
T0 = "2026-07-01T08:00:00+07:00"

INJECTIONS = ('=HYPERLINK("http://evil.example","click")', "+1", "-2", "@x")

#: Tour sessions: external id, language, replies by question (None: stop before it), end.
TOUR_PEOPLE = [
    ("tg:101", "vi", {"age": "30", "sex": "nu", "online": "co", "ways": "web app", "rating": "4",
                      "comment": INJECTIONS[0], "visit": "2025-12-25"}),
    ("tg:102", "en", {"age": "45", "sex": "nam", "online": "khong", "comment": "", "visit": ""}),
    ("zalo:103", "vi", {"age": "22", "sex": "nu", "online": "co", "ways": "zalo", "rating": "1",
                        "comment": INJECTIONS[1], "visit": "2026-01-02"}),
    ("zalo:104", "vi", {"age": "60", "sex": "nam", "online": "co", "ways": "web zalo app", "rating": "5",
                        "comment": INJECTIONS[2], "visit": ""}),
    ("tg:105", "vi", {"age": "35", "sex": "nu", "online": "khong", "comment": INJECTIONS[3], "visit": None}),
]


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 8, 2, 9, 0, tzinfo=ICT)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=7)
        return self.now


def _auto(question) -> str:
    kind = question.type
    if kind is QuestionType.SELECT_ONE:
        return "1"
    if kind is QuestionType.SELECT_MULTIPLE:
        return "1 2"
    if kind is QuestionType.INTEGER:
        return "1985"
    if kind is QuestionType.DATE:
        return "2026-03-04"
    if kind is QuestionType.ACKNOWLEDGE:
        return "OK"
    return ""


async def drive(conversations: Conversations, session_id: int, replies: dict, clock: Clock) -> None:
    """Start, consent, then answer each question on screen until done (or a None reply: stop)."""
    for n in range(200):
        form, state = await conversations.state(session_id)
        if state.status is E.Status.COMPLETED:
            return
        if state.status is E.Status.NEW:
            event = E.Start(clock())
        elif state.status is E.Status.CONSENT:
            event = E.Choose("yes", state.seq, clock())
        else:
            question = form.question(state.current)
            reply = replies.get(question.name, _auto(question)) if question.name in replies else _auto(question)
            if reply is None:
                await conversations.handle(session_id, E.Stop(clock()), f"{session_id}:{n}")
                return
            event = E.Reply(reply, clock(), state.seq)
        handled = await conversations.handle(session_id, event, f"{session_id}:{n}")
        assert handled.applied
        after = handled.session
        if after.status == state.status and state.current is not None and \
                (await conversations.state(session_id))[1].current == state.current and isinstance(event, E.Reply):
            raise AssertionError(f"reply {event.text!r} to {state.current} refused: {handled.step.say}")
    raise AssertionError("session did not finish")


async def build(db: Path, tmp: Path) -> None:
    clock = Clock()
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        tour = load_questionnaire(TOUR)
        sipas = load_questionnaire(SIPAS)
        await conversations.register(tour, TOUR.read_bytes(), TOUR.name, clock())
        await conversations.register(sipas, SIPAS.read_bytes(), SIPAS.name, clock())
        for external_id, language, replies in TOUR_PEOPLE:
            session, _ = await conversations.open(external_id, tour, external_id.split(":")[0], language, clock())
            await drive(conversations, session.id, replies, clock)
        # SIPAS: a sample drawn from the test frame; two members answer.
        project = load_survey(SURVEY)
        await store_survey(storage, project, "", "survey.toml", T0)
        frame = tmp / "frame.csv"
        frame.write_text("id,group,unit,name,phone\n" + "".join(
            f"{u}-{i:03d},citizen,{u},Người {u}{i},09{i:02d}{ord(u[-1]):06d}\n"
            for u in ("xa-a", "xa-b", "xa-c") for i in range(40)), encoding="utf-8")
        await import_frame_file(storage, project, frame, T0)
        await draw_sample(storage, project, 7, T0)
        members = [m for m in await storage.sample_members("test-2026", "main")
                   if m.form_id == sipas.form_id][:2]
        for i, member in enumerate(members):
            session, _ = await conversations.open_for(member.respondent_id, sipas, "telegram", "vi", clock())
            await drive(conversations, session.id, {"y_kien_gop_y": "Cần nhanh hơn, thủ tục rõ ràng" if i else ""},
                        clock)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    path = folder / "k.sqlite"
    asyncio.run(build(path, folder))
    return path


def frame(db: Path, **kwargs) -> ExportTable:
    async def run():
        async with await open_storage(db) as storage:
            return await export_frame(storage, **kwargs)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def tour(db) -> ExportTable:
    return frame(db, form_id="tour")


@pytest.fixture(scope="module")
def sipas(db) -> ExportTable:
    return frame(db, form_id="sipas_citizen_example")


def by_respondent(table: ExportTable) -> dict[int, dict]:
    return {i: row for i, row in enumerate(table.df.to_dict("records"))}


# -- the model -----------------------------------------------------------------------------------


def test_wide_has_paradata_codes_and_select_multiple_dummies(tour):
    df = tour.df
    assert len(df) == 5
    assert list(df.columns[:3]) == ["respondent", "session", "form_id"]
    assert "intro" not in df.columns  # notes have no column
    for column in ("channel", "status", "language", "started_at", "completed_at", "duration_seconds",
                   "disposition", "stratum", "group", "unit", "pi", "weight", "number_of_reminders"):
        assert column in df.columns
    first = df.iloc[0]
    assert first["status"] == "completed" and first["disposition"] == "completed"
    assert first["duration_seconds"] == (dt.datetime.fromisoformat(first["completed_at"])
                                         - dt.datetime.fromisoformat(first["started_at"])).total_seconds() > 0
    assert df.iloc[4]["status"] == "paused" and pd.isna(df.iloc[4]["duration_seconds"])
    assert list(df["language"]) == ["vi", "en", "vi", "vi", "vi"]
    assert list(df["channel"]) == ["tg", "tg", "zalo", "zalo", "tg"]
    assert (df["number_of_reminders"] == 0).all()
    # select_one with integer names is numeric and labelled; others keep their names
    assert str(df["rating"].dtype) == "Int64" and df["rating"].tolist()[0] == 4
    assert tour.value_labels["rating"][1] == "Rất không hài lòng"
    assert tour.value_labels["sex"] == {"nam": "Nam", "nu": "Nữ"}
    # select_multiple: XLSForm's names column plus ODK's question/choice 0/1 columns
    assert [None if pd.isna(v) else v for v in df["ways"]][:4] == ["web app", None, "zalo", "web zalo app"]
    dummies = df[["ways/web", "ways/zalo", "ways/app"]]
    assert dummies.iloc[0].tolist() == [1, 0, 1]
    assert dummies.iloc[2].tolist() == [0, 1, 0]
    assert dummies.iloc[3].tolist() == [1, 1, 1]
    assert dummies.iloc[1].isna().all()  # not applicable: online = khong
    assert tour.variable_labels["ways/app"] == "Quý vị dùng qua kênh nào?: Ứng dụng VNeID"
    # skipped (optional left empty) is marked; not applicable and not reached are not
    assert tour.skipped["comment"].tolist() == [False, True, False, False, False]
    assert tour.skipped["visit"].tolist() == [False, True, False, True, False]
    assert "rating" not in tour.skipped


def test_english_labels(db):
    table = frame(db, form_id="tour", language="en")
    assert table.value_labels["rating"][1] == "Very dissatisfied"
    assert table.variable_labels["sex"] == "Sex"
    assert table.variable_labels["respondent"] == "Respondent id (pseudonym)"


def test_sample_attributes_joined_for_sample_members(sipas):
    df = sipas.df
    assert len(df) == 2
    assert set(df["survey"]) == {"test-2026"} and set(df["group"]) == {"citizen"}
    assert set(df["unit"]) <= {"xa-a", "xa-b", "xa-c"}
    assert (df["weight"] == 1 / df["pi"]).all()
    assert df["stratum"].str.startswith("citizen/").all()
    assert str(df["tc_cho_ngoi"].dtype) == "Int64"  # satisfaction scale 1..5 is numeric


def test_long_layout_one_row_per_stored_answer(db):
    table = frame(db, form_id="tour", layout="long")

    async def stored():
        async with await open_storage(db) as storage:
            return [await storage.answers(s.id) for s in await storage.list_sessions("tour")]

    answers = asyncio.run(stored())
    assert len(table.df) == sum(len(a) for a in answers)
    assert set(table.df["status"]) == {"answered", "skipped", "not_applicable"}
    rating = table.df[(table.df.question == "rating") & (table.df.status == "answered")].iloc[0]
    assert (rating["value"], rating["value_label"]) == ("4", "Hài lòng")
    ways = table.df[(table.df.question == "ways") & (table.df.status == "answered")].iloc[0]
    assert ways["value"] == "web app" and ways["value_label"] == "Cổng dịch vụ công; Ứng dụng VNeID"
    assert table.df["changed_at"].notna().all()
    answered = table.df[table.df.status == "answered"]
    assert answered["value"].notna().all()
    assert table.df[table.df.status != "answered"]["value"].isna().all()


# -- every format ------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", FORMATS)
def test_every_format_is_written(tour, tmp_path, file_format):
    path = tmp_path / f"t.{file_format}"
    write(tour, path, file_format)
    assert path.stat().st_size > 0


def test_csv_has_bom_vietnamese_and_neutralised_cells(db, tour, tmp_path):
    path = tmp_path / "t.csv"
    write(tour, path, "csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["comment"] for r in rows] == ["'" + INJECTIONS[0], "", "'+1", "'-2", "'@x"]
    assert rows[0]["ways/app"] == "1" and rows[1]["ways/app"] == ""
    sipas_path = tmp_path / "s.csv"
    write(frame(db, form_id="sipas_citizen_example"), sipas_path, "csv")
    assert "Cần nhanh hơn, thủ tục rõ ràng" in sipas_path.read_text(encoding="utf-8-sig")


def test_xlsx_opens_with_codebook_and_neutralised_cells(tour, tmp_path):
    path = tmp_path / "t.xlsx"
    write(tour, path, "xlsx")
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["data", "codebook"]
    data = list(workbook["data"].iter_rows(values_only=True))
    header = list(data[0])
    comments = [row[header.index("comment")] for row in data[1:]]
    assert comments == ["'" + INJECTIONS[0], None, "'+1", "'-2", "'@x"]
    assert all(cell.data_type != "f" for row in workbook["data"].iter_rows() for cell in row)
    assert data[1][header.index("sex")] == "nu" and data[1][header.index("rating")] == 4
    codebook = list(workbook["codebook"].iter_rows(values_only=True))
    assert codebook[0][:4] == ("variable", "label", "type", "values")
    entries = {row[0]: row for row in codebook[1:]}
    assert entries["rating"][3].startswith("1 = Rất không hài lòng; 2 = Không hài lòng")
    assert entries["ways/web"][2] == "0/1"
    assert set(entries) == set(header)


def test_sav_round_trip_values_variable_labels_value_labels(tour, tmp_path):
    path = tmp_path / "t.sav"
    write(tour, path, "sav")
    df, meta = pyreadstat.read_sav(str(path), user_missing=True)
    names = legal_names(list(tour.df.columns))
    assert list(df.columns) == list(names.values())
    assert names["ways/web"] == "ways_web"
    labels = dict(zip(meta.column_names, meta.column_labels))
    assert labels["sex"] == "Giới tính"
    assert labels["ways_app"] == "ways/app: Quý vị dùng qua kênh nào?: Ứng dụng VNeID"
    assert meta.variable_value_labels["rating"] == {1.0: "Rất không hài lòng", 2.0: "Không hài lòng",
                                                    3.0: "Bình thường", 4.0: "Hài lòng", 5.0: "Rất hài lòng"}
    assert meta.variable_value_labels["sex"] == {"nam": "Nam", "nu": "Nữ"}  # text codes keep text labels
    # values: identical to the model, except skipped cells, which carry the user-missing code, and
    # dates and timestamps, which are dates and date-times (local time)
    typed = typed_columns(tour, zone_aware=False)
    assert {"visit", "started_at", "completed_at", "updated_at"} <= set(typed)
    assert meta.readstat_variable_types["visit"] == "double" and meta.original_variable_types["visit"].startswith("DATE")
    for column, legal in names.items():
        expected = typed.get(column, tour.df[column])
        got = df[legal]
        skip = tour.skipped.get(column, np.zeros(len(expected), bool))
        for want, have, skipped in zip(expected, got, skip):
            if column in typed and (skipped or pd.isna(want)):
                assert pd.isna(have), (column, have)
            elif column in typed:
                assert pd.Timestamp(have) == pd.Timestamp(want), (column, want, have)
            elif skipped:
                assert have in (-99.0, "-99"), (column, have)
            elif pd.isna(want):
                assert have == "" or (isinstance(have, float) and math.isnan(have)), (column, have)
            elif isinstance(have, float):
                assert have == float(want), (column, want, have)
            else:
                assert have == want, (column, want, have)
    # kept as typed: SPSS is not a spreadsheet
    assert df["comment"].tolist()[2:] == ["+1", "-2", "@x"] and df["comment"][0] == INJECTIONS[0]
    assert meta.missing_ranges["comment"] == [{"lo": "-99", "hi": "-99"}]
    assert meta.variable_value_labels["comment"]["-99"] == "Bỏ qua (skipped)"
    assert df["visit"][0] == dt.date(2025, 12, 25) and pd.isna(df["visit"][1])  # a skipped date: missing
    assert df["started_at"][0] == pd.Timestamp(tour.df["started_at"][0][:19])  # Vietnam's local time
    # integers display as integers; measurement levels are set
    assert meta.original_variable_types["age"] == "F8.0" and meta.original_variable_types["rating"] == "F8.0"
    assert meta.variable_measure["rating"] == "ordinal" and meta.variable_measure["sex"] == "nominal"
    assert meta.variable_measure["age"] == "scale" and meta.variable_measure["comment"] == "nominal"
    # read without user-missing: skipped becomes missing, like not applicable
    plain, _ = pyreadstat.read_sav(str(path))
    assert pd.isna(plain["comment"][1]) or plain["comment"][1] == ""


def test_dta_round_trip_with_integer_codes_for_text_choices(tour, tmp_path):
    path = tmp_path / "t.dta"
    write(tour, path, "dta")
    df, meta = pyreadstat.read_dta(str(path), user_missing=True)
    names = legal_names(list(tour.df.columns))
    assert list(df.columns) == list(names.values())
    labels = dict(zip(meta.column_names, meta.column_labels))
    assert labels["sex"] == "Giới tính" and labels["ways_web"].startswith("ways/web: ")
    assert all(len(label) <= 80 for label in meta.column_labels)
    codes = stata_codes(tour, "sex")
    assert codes == {"nam": 1, "nu": 2}
    assert df["sex"].tolist() == [2.0, 1.0, 2.0, 1.0, 2.0]
    assert meta.variable_value_labels["sex"] == {1: "Nam", 2: "Nữ"}
    assert meta.variable_value_labels["rating"][5] == "Rất hài lòng"
    assert df["rating"].tolist()[0] == 4.0 and math.isnan(df["rating"].tolist()[1])
    assert [df["ways_web"][i] for i in (0, 2, 3)] == [1.0, 0.0, 1.0]
    assert df["comment"].tolist() == [INJECTIONS[0], "", "+1", "-2", "@x"]  # kept as typed
    assert df["age"].tolist() == [30.0, 45.0, 22.0, 60.0, 35.0]
    assert df["respondent"].tolist() == tour.df["respondent"].tolist()
    # stata frame matches the file exactly
    expected = dta_frame(tour)
    assert meta.column_labels == [expected.column_labels[c] for c in meta.column_names]


def test_dta_skipped_is_extended_missing_a(db, tmp_path):
    # SIPAS ngay_nhan_ket_qua is a date (text) and y_kien_gop_y text; make a numeric skip:
    table = frame(db, form_id="tour")
    table.skipped["age"] = np.array([False, True, False, False, False])  # pretend age was skipped
    table.df["age"] = table.df["age"].astype("Int64").mask(table.skipped["age"])
    path = tmp_path / "s.dta"
    write(table, path, "dta")
    df, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert df["age"].tolist()[1] == "a" and meta.missing_user_values["age"] == ["a"]
    assert meta.variable_value_labels["age"]["a"] == "Bỏ qua (skipped)"
    plain, _ = pyreadstat.read_dta(str(path))
    assert math.isnan(plain["age"][1])
    sav = sav_frame(table)
    assert sav.df["age"].tolist()[1] == -99.0 and sav.missing["age"] == [-99.0]


def test_parquet_round_trip_with_labels_in_metadata(tour, tmp_path):
    path = tmp_path / "t.parquet"
    write(tour, path, "parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(tour.df.columns)
    assert back["comment"].tolist()[2:] == ["+1", "-2", "@x"]  # kept as typed
    assert back["ways/zalo"].tolist()[:3] == [0, None, 1] or back["ways/zalo"].isna().tolist()[1]
    assert back["rating"].tolist()[0] == 4
    meta = read_parquet_metadata(path)
    assert meta["variable_labels"]["sex"] == "Giới tính"
    assert dict((str(k), v) for k, v in meta["value_labels"]["rating"])["1"] == "Rất không hài lòng"
    assert meta["personal_data"] is False and meta["layout"] == "wide"
    assert pq.read_schema(path).field("sex").metadata[b"label"].decode() == "Giới tính"


def test_legal_names_are_short_unique_and_stata_safe():
    long = "a" * 40
    names = legal_names(["q/1", "q_1", long + "/x", long + "/y", "in", "2nd", "đánh_giá/tốt"])
    assert names["q/1"] == "q_1" and names["q_1"] == "q_1_2"
    assert len(names[long + "/x"]) == 32 and names[long + "/x"] != names[long + "/y"]
    assert names["in"] == "in_" and names["2nd"] == "v2nd" and names["đánh_giá/tốt"] == "danh_gia_tot"


# -- personal data ---------------------------------------------------------------------------


def _everything(path: Path, file_format: str) -> str:
    if file_format == "xlsx":
        workbook = load_workbook(path)
        return "\n".join(str(c) for ws in workbook for row in ws.iter_rows(values_only=True) for c in row)
    if file_format == "parquet":
        return pd.read_parquet(path).to_csv() + json.dumps(read_parquet_metadata(path), ensure_ascii=False)
    if file_format == "sav":
        return pyreadstat.read_sav(str(path))[0].to_csv() + path.read_bytes().decode("utf-8", "ignore")
    if file_format == "dta":
        return pyreadstat.read_dta(str(path))[0].to_csv() + path.read_bytes().decode("utf-8", "ignore")
    return path.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("file_format", FORMATS)
def test_pseudonyms_only_unless_personal_flag(db, tmp_path, file_format):
    plain = frame(db)
    path = tmp_path / f"p.{file_format}"
    write(plain, path, file_format)
    content = _everything(path, file_format)
    for secret in ("tg:101", "zalo:103", "test-2026:", "Người xa-", "+849", "+840"):
        assert secret not in content, secret
    assert "name" not in plain.df.columns and "phone" not in plain.df.columns
    assert plain.df["respondent"].str.match(r"^R").all()

    flagged = frame(db, personal=True)
    path = tmp_path / f"named.{file_format}"
    write(flagged, path, file_format)
    content = _everything(path, file_format)
    assert "Người xa-" in content
    assert flagged.personal and flagged.variable_labels["name"].startswith("DỮ LIỆU CÁ NHÂN")
    assert flagged.df["name"].notna().sum() == 2  # only the sample members have names
    assert "tg:101" not in content  # external ids never, even with the flag


# -- the command ----------------------------------------------------------------------------


def khaosat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_every_format_and_clear_errors(db, tmp_path):
    for file_format in FORMATS:
        out = tmp_path / f"cli.{file_format}"
        done = khaosat("export", "--db", str(db), "--format", file_format, "--out", str(out), "--form", "tour")
        assert done.returncode == 0, done.stderr
        assert out.is_file() and "5 rows" in done.stdout
    long = khaosat("export", "--db", str(db), "--format", "sav", "--out", str(tmp_path / "l.sav"),
                   "--layout", "long", "--lang", "en", "--personal")
    assert long.returncode == 0, long.stderr
    assert "personal data" in long.stdout.lower()
    df, meta = pyreadstat.read_sav(str(tmp_path / "l.sav"))
    assert "name" in df.columns and "question" in df.columns
    unknown = khaosat("export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "x.csv"),
                      "--form", "nope")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    bad = khaosat("export", "--db", str(db), "--format", "pdf", "--out", str(tmp_path / "x.pdf"))
    assert bad.returncode == 2


def test_xlsx_refuses_more_rows_than_excel_has(tmp_path):
    big = ExportTable(pd.DataFrame({"a": np.zeros(1_048_576)}), {}, {})
    with pytest.raises(ExportError, match="Excel"):
        write(big, tmp_path / "never.xlsx", "xlsx")
    assert not (tmp_path / "never.xlsx").exists()


# -- number_of_reminders: the reminders the reminder pass recorded -------------------------------

REMIND_SURVEY = survey_toml("remind-export", "Nhắc nhở và xuất dữ liệu", "tour", extra="""\
[reminders]
after_days = [1, 3]
max_count = 2
[reminders.text]
vi = "Bạn đã trả lời {answered}/{total} câu."
""")


async def build_reminded(db: Path, tmp: Path) -> dict[str, int]:
    """Three linked people: A never answers (2 reminders), B completes after the first pass has
    reached them (1), C completes before any pass (0). Returns pseudonym → expected count."""
    from bot.reminders import ReminderBot, ReminderFeed, reminder_pass
    from surveys.project import parse_survey

    clock = Clock()
    t0 = clock.now
    project = parse_survey(REMIND_SURVEY)
    bot = ReminderBot("telegram", "t", 30.0)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        tour = load_questionnaire(TOUR)
        await conversations.register(tour, TOUR.read_bytes(), TOUR.name, t0 - dt.timedelta(days=1))
        await store_survey(storage, project, REMIND_SURVEY, "survey.toml", T0)
        frame_path = tmp / "frame.csv"
        frame_path.write_text("id,group,unit\n" + "".join(f"p{i},citizen,xa-a\n" for i in range(3)),
                              encoding="utf-8")
        await import_frame_file(storage, project, frame_path, T0)
        await draw_sample(storage, project, 1, T0)
        a, b, c = sorted(m.respondent_id for m in await storage.sample_members(project.id, "main"))
        sessions = {}
        for n, rid in enumerate((a, b, c)):
            await storage.set_disposition(rid, "invited", T0)
            await storage.link_chat("telegram", "t", str(500 + n), rid, t0.isoformat())
            await storage.set_disposition(rid, "contacted", t0.isoformat())
            sessions[rid], _ = await conversations.open_for(rid, tour, "telegram", "vi", clock())
        await drive(conversations, sessions[c].id, TOUR_PEOPLE[0][2], clock)
        first = await reminder_pass(storage, [bot], t0 + dt.timedelta(days=1, hours=1))
        assert first.count == 2 and await storage.reminder_counts() == {a: 1, b: 1}  # queued ones count
        # B's reminder leaves before B answers (else it is withdrawn).
        assert await ReminderFeed(storage, bot, lambda: t0 + dt.timedelta(days=1, hours=1))(60) == 2
        (reminded,) = await storage.reminders_of(b)
        sent_at = (t0 + dt.timedelta(days=1, hours=1)).isoformat()
        assert await storage.mark_sending(reminded["outbox_id"], sent_at)
        assert await storage.mark_sent(reminded["outbox_id"], sent_at, None)
        await drive(conversations, sessions[b].id, TOUR_PEOPLE[1][2], clock)
        second = await reminder_pass(storage, [bot], t0 + dt.timedelta(days=3, hours=2))
        assert second.count == 1  # a's second (the counts below)
        assert await storage.reminder_counts() == {a: 2, b: 1}
        assert await storage.reminder_counts(project.id) == {a: 2, b: 1}
        assert await storage.reminder_counts("another-survey") == {}
        return {(await storage.get_respondent(rid)).pseudonym: count for rid, count in ((a, 2), (b, 1), (c, 0))}


def test_number_of_reminders_counts_the_recorded_reminders(tmp_path):
    db = tmp_path / "reminded.sqlite"
    expected = asyncio.run(build_reminded(db, tmp_path))
    df = frame(db).df
    assert dict(zip(df["respondent"], df["number_of_reminders"].astype(int))) == expected
    assert frame(db, language="en").variable_labels["number_of_reminders"] == "Number of reminders"
    out = tmp_path / "reminded.csv"
    done = khaosat("export", "--db", str(db), "--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {row["respondent"]: int(row["number_of_reminders"]) for row in rows} == expected


# -- typed exports and write options ---------------------------------------------------------------


@pytest.mark.parametrize("version", [115, 117, 118, 119])
def test_dta_versions_and_dates(tour, tmp_path, version):
    """The Stata format asked for (118 by default), dates as %td and timestamps as %tc, read back by
    pyreadstat and by pandas' own reader (an independent implementation)."""
    path = tmp_path / f"t{version}.dta"
    write(tour, path, "dta", WriteOptions(stata_version=version))
    head = path.read_bytes()[:80]
    assert (f"<release>{version}</release>".encode() in head) if version > 115 else head[:1] == bytes([115])
    # before 118 Stata has no Unicode: the text is kept as UTF-8 bytes, which readers told so read right
    df, meta = pyreadstat.read_dta(str(path), encoding="utf-8")
    assert meta.column_labels[list(df.columns).index("sex")] == "Giới tính"
    assert meta.original_variable_types["visit"] == "%td" and meta.original_variable_types["started_at"] == "%tc"
    assert df["visit"][0] == dt.date(2025, 12, 25) and pd.isna(df["visit"][1])
    if version == 118:
        other = pd.read_stata(path, convert_categoricals=False)
        assert other["visit"][0] == pd.Timestamp("2025-12-25")
        assert other["started_at"][0] == pd.Timestamp(tour.df["started_at"][0][:19])
    default = tmp_path / "default.dta"
    write(tour, default, "dta")
    assert b"<release>118</release>" in default.read_bytes()[:80]


def test_xlsx_and_parquet_carry_dates_and_timestamps(tour, tmp_path):
    xlsx = tmp_path / "t.xlsx"
    write(tour, xlsx, "xlsx")
    sheet = load_workbook(xlsx, read_only=True)["data"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    first = dict(zip(header, rows[1]))
    assert first["visit"] == dt.datetime(2025, 12, 25)  # Excel keeps dates as date-times
    assert first["started_at"] == dt.datetime.fromisoformat(tour.df["started_at"][0]).replace(tzinfo=None)
    parquet = tmp_path / "t.parquet"
    write(tour, parquet, "parquet")
    schema = pq.read_schema(parquet)
    assert str(schema.field("visit").type) == "date32[day]"
    assert str(schema.field("started_at").type).startswith("timestamp") and "Ho_Chi_Minh" in str(
        schema.field("started_at").type)
    back = pd.read_parquet(parquet)
    assert back["started_at"][0] == pd.Timestamp(tour.df["started_at"][0])


def test_csv_delimiter_labels_and_label_headers(tour, tmp_path):
    path = tmp_path / "semicolon.csv"
    write(tour, path, "csv", WriteOptions(delimiter=";"))
    back = pd.read_csv(path, sep=";", encoding="utf-8-sig")
    assert list(back.columns) == list(tour.df.columns) and back["age"].tolist()[:2] == [30, 45]
    labelled = tmp_path / "labels.csv"
    write(tour, labelled, "csv", WriteOptions(labels=True, label_headers=True))
    back = pd.read_csv(labelled, encoding="utf-8-sig")
    sex_label, rating_label = tour.variable_labels["sex"], tour.variable_labels["rating"]
    assert back[sex_label].tolist()[:2] == ["Nữ", "Nam"]
    assert back[rating_label].tolist()[0] == "Hài lòng" and pd.isna(back[rating_label][1])
    assert len(set(back.columns)) == len(back.columns)
    with pytest.raises(ExportError, match="csv and xlsx"):
        write(tour, tmp_path / "x.sav", "sav", WriteOptions(labels=True))
    with pytest.raises(ExportError, match="delimiter"):
        write(tour, tmp_path / "x.csv", "csv", WriteOptions(delimiter='"'))


def test_codebook_says_where_skipped_text_is_empty_in_stata(tour, tmp_path):
    """Stata text variables have no missing codes: the codebook no longer claims '.a' for them."""
    rows = {r["variable"]: r for r in tour.codebook}
    assert "empty in CSV/XLSX/Parquet and Stata" in rows["comment"]["missing"]
    assert ".a in Stata" not in rows["comment"]["missing"]
    path = tmp_path / "t.dta"
    write(tour, path, "dta")
    df, _ = pyreadstat.read_dta(str(path), user_missing=True)
    assert df["comment"][1] == ""


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_an_export_without_media_answers_removes_a_previous_exports_media_folder(db, tmp_path, layout):
    """`answers-media/` belongs to `answers.csv`: rewritten with no media answer, the old files must
    not stay beside it (the chat's and the console's ZIP would hand them over with the new table)."""
    from fieldwork.data import ExportOptions, export

    out = tmp_path / "answers.csv"
    stale = tmp_path / "answers-media"
    stale.mkdir()
    (stale / "R0001_front-0123456789ab.jpg").write_bytes(b"an earlier export's photo")

    async def run():
        async with await open_storage(db) as storage:
            await export(storage, out, ExportOptions("csv", layout, "tour"))

    asyncio.run(run())
    assert out.stat().st_size > 0 and not stale.exists()
