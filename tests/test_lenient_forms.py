"""Forms using what a chat cannot do as written load, and the chat does what their warnings say.

Each case loads a small form and then takes it through the engine: a question a chat cannot
ask is skipped and stored as missing, a range is asked as buttons or as a bounded number,
read_only is worked out or shown, CSV files beside the form feed pulldata(), instance() and
select_one_from_file, and once()/uuid() keep their value for the whole session.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveys import engine as E
from surveys.engine import Ask, PromptKind, Status
from surveys.expressions import NOT_APPLICABLE
from surveys.model import QuestionType
from surveys.xlsform import FormError, load_questionnaire, load_questionnaire_bytes
from surveys.xlsform_extras import RANGE_BUTTONS, read_range

ROOT = Path(__file__).resolve().parents[1]


def form_of(text: str, attachments: dict[str, bytes] | None = None):
    return load_questionnaire_bytes(textwrap.dedent(text).strip().encode("utf-8"), "form.md", attachments)


class Session:
    """One respondent: typed replies, as the console sends them."""

    def __init__(self, form, start: dt.datetime = dt.datetime(2026, 3, 2, 9, 0)):
        self.form = form
        self.at = start
        self.state = E.new_session(form, "en")
        self.result = E.step(form, self.state, E.Start(self.at))
        self.state = self.result.state
        self.reply("yes")  # consent

    def reply(self, text: str) -> E.Step:
        self.at += dt.timedelta(minutes=1)
        self.result = E.step(self.form, self.state, E.Reply(text, self.at, self.state.seq))
        self.state = self.result.state
        return self.result

    @property
    def ask(self) -> Ask:
        return E.current_prompt(self.form, self.state)

    @property
    def answers(self):
        return self.state.answers


GEO = """
    | survey |
    | | type | name | label | relevant | priority |
    | | integer | n | How many? | | high |
    | | geotrace | where | Where? | | |
    | | barcode | code | Scan the code? | ${n} > 5 | low |
    | | text | last | Anything else? | | high |
"""


def test_a_question_a_chat_cannot_ask_is_kept_skipped_and_stored_as_missing() -> None:
    form = form_of(GEO)
    where = form.question("where")
    assert where.type is QuestionType.UNASKABLE and where.source_type == "geotrace"
    assert where.unaskable == "lines and areas on a map (a geopoint is asked)"
    assert [q.name for q in form.unaskable] == ["where", "code"]
    assert any("'where' (geotrace) is not asked" in w and "row 3, column 'type'" in w for w in form.warnings)
    chat = Session(form)
    assert chat.ask.question == "n"
    chat.reply("3")
    assert chat.ask.question == "last"  # the map line and the barcode were never asked
    chat.reply("nothing")
    assert chat.state.status is Status.COMPLETED
    assert chat.answers["where"] is None  # reached: missing, with its own code in exports
    assert chat.answers["code"] is NOT_APPLICABLE  # not relevant: skipped by the form's logic


def test_annotation_columns_are_kept_with_each_question_and_reported_once_with_their_rows() -> None:
    form = form_of(GEO)
    assert form.question("n").metadata == {"priority": "high"}
    assert form.question("last").metadata == {"priority": "high"}
    about = [w for w in form.warnings if "column 'priority'" in w]
    assert about == ["sheet 'survey', column 'priority' (rows 2, 4, 5): not used by a chat survey; "
                     "kept with the question as metadata"]


RANGES = """
    | survey |
    | | type | name | label | parameters | constraint |
    | | range | stars | Stars? | start=1 end=5 | |
    | | range | half | Half steps? | start=0 end=2 step=0.5 | |
    | | range | percent | Percent? | start=0 end=100 step=1 | . != 50 |
    | | range | plain | Default range? | | |
"""


def test_a_short_range_is_asked_as_numbered_buttons() -> None:
    form = form_of(RANGES)
    stars = form.question("stars")
    assert stars.type is QuestionType.SELECT_ONE and [c.name for c in stars.choices] == ["1", "2", "3", "4", "5"]
    assert [c.name for c in form.question("half").choices] == ["0", "0.5", "1", "1.5", "2"]
    assert len(form.question("plain").choices) == 10  # pyxform's defaults: 1 to 10
    assert any("row 2, column 'type': range is asked as 5 numbered buttons (1 to 5)" in w for w in form.warnings)
    chat = Session(form)
    assert chat.ask.kind is PromptKind.SELECT_ONE and [o.label for o in chat.ask.options] == ["1", "2", "3", "4", "5"]
    chat.reply("4")
    assert chat.answers["stars"] == "4"


def test_a_long_range_is_asked_as_a_number_within_its_bounds_and_its_own_constraint() -> None:
    form = form_of(RANGES)
    percent = form.question("percent")
    assert percent.type is QuestionType.INTEGER
    assert any("row 4, column 'type': range is asked as a number from 0 to 100" in w for w in form.warnings)
    chat = Session(form)
    chat.reply("1")
    chat.reply("1")
    assert chat.ask.question == "percent"
    for refused in ("101", "50"):
        assert chat.reply(refused).accepted is False
    assert chat.reply("75").accepted
    assert chat.answers["percent"] == 75


def test_read_only_is_worked_out_when_it_has_a_calculation_and_shown_as_a_note_otherwise() -> None:
    form = form_of("""
        | survey |
        | | type | name | label | read_only | calculation |
        | | integer | age | Age? | | |
        | | integer | months | Months | yes | ${age} * 12 |
        | | text | info | Read this | true | |
    """)
    assert form.question("months").type is QuestionType.CALCULATE
    assert form.question("info").type is QuestionType.NOTE
    chat = Session(form)
    chat.reply("30")
    assert chat.state.status is Status.COMPLETED
    assert chat.answers["months"] == 360
    # The note is the form's last words, so it is the thank-you (with the line saying it is done).
    assert [say.text.split("\n")[0] for say in chat.result.say if say.tone is E.Tone.THANKS] == ["Read this"]


def test_questions_inside_a_repeat_are_asked_per_instance_and_a_name_shared_with_one_outside_keeps_apart() -> None:
    form = form_of("""
        | survey |
        | | type | name | label | repeat_count |
        | | text | name | Your name? | |
        | | begin repeat | member | Member | 2 |
        | | text | name | Member's name? | |
        | | integer | age | Member's age? | |
        | | end repeat | | | |
        | | integer | total | Total? | |
    """)
    assert form.question("name").type is QuestionType.TEXT
    assert form.question("member/name").type is QuestionType.TEXT and form.question("member/name").repeats == ("member",)
    assert not form.unaskable and not any("repeat" in w for w in form.warnings)
    chat = Session(form)
    chat.reply("An")
    for number, (name, age) in enumerate((("Bình", "30"), ("Chi", "5")), start=1):
        assert chat.ask.question == f"member[{number}]/name"
        chat.reply(name)
        chat.reply(age)
    assert chat.ask.question == "total"
    chat.reply("2")
    assert chat.answers["name"] == "An" and chat.answers["member[1]/name"] == "Bình"
    assert chat.answers["member[2]/age"] == 5


CSV_FORM = """
    | survey |
    | | type | name | label | calculation |
    | | select_one_from_file places.csv | place | Where do you live? | |
    | | calculate | zone | | pulldata('places', 'zone', 'name', ${place}) |
    | | calculate | zone_label | | instance('zones')/root/item[name = ${zone}]/label |
    | | note | said | You live in zone ${zone_label}. | |
    | choices |
    | | list_name | name | label |
    | | zones | north | North |
    | | zones | south | South |
"""
PLACES = "name,label,zone\nhanoi,Hà Nội,north\nhcmc,TP Hồ Chí Minh,south\n".encode()


def test_csv_files_beside_the_form_feed_select_from_file_pulldata_and_instance_lookups(tmp_path: Path) -> None:
    (tmp_path / "form.md").write_text(textwrap.dedent(CSV_FORM).strip(), encoding="utf-8")
    (tmp_path / "places.csv").write_bytes(PLACES)
    form = load_questionnaire(tmp_path / "form.md")
    assert form.question("place").type is QuestionType.SELECT_ONE
    assert [c.label.get("en") for c in form.question("place").choices] == ["Hà Nội", "TP Hồ Chí Minh"]
    chat = Session(form)
    chat.reply("2")
    assert chat.state.status is Status.COMPLETED
    assert chat.answers["zone"] == "south" and chat.answers["zone_label"] == "South"
    assert any("You live in zone South." in say.text for say in chat.result.say)


def test_csv_files_can_be_given_with_the_bytes_of_a_stored_form() -> None:
    form = form_of(CSV_FORM, {"places.csv": PLACES})
    assert form.question("zone").type is QuestionType.CALCULATE


def test_without_its_csv_files_the_form_still_loads_and_says_what_is_missing() -> None:
    form = form_of(CSV_FORM)
    assert form.question("place").type is QuestionType.UNASKABLE
    assert form.question("zone").type is QuestionType.UNASKABLE
    assert any("'places.csv', which is not shipped beside the form" in w and "column 'calculation'" in w
               for w in form.warnings)


def test_once_now_and_uuid_keep_their_values_for_the_whole_session() -> None:
    form = form_of("""
        | survey |
        | | type | name | label | calculation |
        | | calculate | reached | | once(format-date-time(now(), '%H:%M')) |
        | | calculate | key | | uuid() |
        | | integer | a | A? | |
        | | integer | b | B? | |
    """)
    chat = Session(form)
    first_time, key = chat.answers["reached"], chat.answers["key"]
    assert first_time == "09:01"
    chat.reply("1")
    chat.reply("2")
    assert chat.state.status is Status.COMPLETED
    assert (chat.answers["reached"], chat.answers["key"]) == (first_time, key)
    other = Session(form, start=dt.datetime(2026, 3, 2, 10, 0))
    assert other.answers["key"] != key


def test_an_odk_function_the_chat_does_not_evaluate_is_dropped_with_a_warning_a_typo_is_an_error() -> None:
    form = form_of("""
        | survey |
        | | type | name | label | relevant | constraint |
        | | integer | a | A? | | |
        | | integer | b | B? | area(${a}) > 0 | wq:length(5) |
    """)
    assert form.question("b").relevant is None and form.question("b").constraint is None
    assert any("row 3, column 'relevant'" in w and "the chat treats it as always true" in w for w in form.warnings)
    assert any("row 3, column 'constraint'" in w and "answers are not checked against it" in w for w in form.warnings)
    with pytest.raises(FormError, match="unknown function 'selectd'"):
        form_of("""
            | survey |
            | | type | name | label | relevant |
            | | integer | a | A? | selectd(${a}, 1) |
        """)


def test_settings_pyxform_accepts_are_warnings() -> None:
    form = form_of("""
        | settings |
        | | form_id | allow_choice_duplicates | clean_text_values |
        | | f | yes | yes |
        | survey |
        | | type | name | label |
        | | select_one yn | a | A? |
        | choices |
        | | list_name | name | label |
        | | yn | 1 | Yes |
        | | yn | 1 | Also yes |
    """)
    assert [c.name for c in form.question("a").choices] == ["1", "1"]
    assert form.settings == {"allow_choice_duplicates": "yes", "clean_text_values": "yes"}
    assert any("allow_choice_duplicates': choice names may repeat" in w for w in form.warnings)
    assert any("setting 'clean_text_values' is not used by a chat survey" in w for w in form.warnings)


def test_form_check_lists_the_questions_a_chat_does_not_ask(tmp_path: Path) -> None:
    path = tmp_path / "geo.md"
    path.write_text(textwrap.dedent(GEO).strip(), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "form", "check", str(path)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "not asked in a chat (2)" in result.stdout
    assert ("where (geotrace, sheet 'survey', row 3, column 'type'): lines and areas on a map (a geopoint is asked)"
            in result.stdout)
    assert "column 'priority' (rows 2, 4, 5)" in result.stdout


@given(start=st.integers(-20, 20), count=st.integers(1, 30), step=st.integers(1, 7))
def test_range_bounds_become_exactly_its_values_or_its_bounds(start: int, count: int, step: int) -> None:
    end = start + step * (count - 1)
    bounds = read_range({"start": str(start), "end": str(end), "step": str(step)})
    if count <= RANGE_BUTTONS:
        assert [int(v) for v in bounds.values] == list(range(start, end + 1, step))
    else:
        assert bounds.values is None and bounds.constraint() == f". >= {start} and . <= {end}"


@pytest.mark.parametrize("parameters, problem", [
    ({"start": "a"}, "range parameter start=a is not a number"),
    ({"start": "5", "end": "1"}, "has no values"),
    ({"step": "0"}, "has no values"),
])
def test_a_range_without_values_is_not_asked_and_says_why(parameters, problem) -> None:
    assert problem in read_range(parameters)


def test_a_csv_that_is_not_utf8_is_named_in_a_warning() -> None:
    form = form_of(CSV_FORM, {"places.csv": "name,label,zone\nhue,Huế,central\n".encode("utf-16")})
    assert "file 'places.csv' beside the form: it is not UTF-8 text (save it as 'CSV UTF-8'); " \
           "what reads it is not used" in form.warnings
    assert form.question("place").type is QuestionType.UNASKABLE


def test_khaosat_try_reads_the_csv_beside_the_form(tmp_path: Path) -> None:
    (tmp_path / "form.md").write_text(textwrap.dedent(CSV_FORM).strip(), encoding="utf-8")
    (tmp_path / "places.csv").write_bytes(PLACES)
    result = subprocess.run([sys.executable, "-m", "bot.cli", "try", str(tmp_path / "form.md"), "--db",
                             str(tmp_path / "try.sqlite"), "--lang", "en"], input="yes\n2\n", capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "TP Hồ Chí Minh" in result.stdout and "You live in zone South." in result.stdout


def test_select_one_external_takes_its_choices_from_the_external_choices_sheet() -> None:
    form = load_questionnaire(ROOT / "tests" / "forms" / "real" / "getodk-xlsform-offline" / "external-itemsets.xlsx")
    county = form.question("county")
    assert county.type is QuestionType.SELECT_ONE and county.choice_filter.source == "state=${state}"
    chat = Session(form)
    washington = next(o.number for o in chat.ask.options if o.name == "washington")
    chat.reply(str(washington))
    assert {o.name for o in chat.ask.options} == {c.name for c in county.choices if c.columns["state"] == "washington"}
