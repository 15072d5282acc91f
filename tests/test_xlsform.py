"""The XLSForm loader: what it accepts, and where it says a form is wrong.

The requirement: a form that ODK and KoBoToolbox accept loads; what a chat cannot do is a
warning naming the sheet, row and column and what the chat does instead, never silently
ignored; what is wrong (a typo in an expression, a name used twice) is an error at its sheet,
row and column. Every expression is parsed when the form loads. Rows are spreadsheet rows
(the header is row 1); columns are headers as the author wrote them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from surveys.model import ANY_LANGUAGE, Location, QuestionType, Questionnaire
from surveys.xlsform import FormError, Problem, iter_form_files, load_questionnaire, load_questionnaire_bytes

REPO = Path(__file__).resolve().parents[1]
BROKEN = REPO / "tests" / "forms" / "broken"
LENIENT = REPO / "tests" / "forms" / "lenient"
TEMPLATES = REPO / "surveys" / "templates"
# ../shared beside the checkout; KHAOSAT_SHARED names it where the checkout is a worktree elsewhere.
SHARED = Path(os.environ.get("KHAOSAT_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "xlsforms"
EXAMPLES = SHARED / "pyxform-examples"


def load_md(text: str, filename: str = "form.md"):
    return load_questionnaire_bytes(textwrap.dedent(text).strip().encode("utf-8"), filename)


def warned(form: Questionnaire, sheet: str, row: int | None, column: str | None, fragment: str) -> bool:
    """Whether a warning at that place says `fragment` (unused columns are reported once with their rows)."""
    exact = f"{Location(sheet, row, column)}:"
    grouped = re.compile(rf"sheet '{sheet}', column '{re.escape(column or '')}' \(rows? ([^)]*)\):")
    for warning in form.warnings:
        if fragment not in warning:
            continue
        if warning.startswith(exact):
            return True
        match = grouped.match(warning)
        if match and str(row) in re.findall(r"\d+", match.group(1)):
            return True
    return False


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(FormError) as caught:
        load_questionnaire(path)
    return caught.value.problems


# -- the real forms in ../shared/xlsforms -------------------------------------------------------------


def shared_forms() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return list(iter_form_files(EXAMPLES))


@pytest.fixture(scope="module")
def examples() -> Path:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the shared XLSForms are not here ({EXAMPLES}); they live beside the repository")
    return EXAMPLES


# Forms that use only what a chat supports: they load, in every format they come in.
ACCEPTED = [
    "yes_or_no_question", "text_and_integer", "group", "specify_other", "utf_csv", "survey_no_name",
    "style_settings", "extra_columns", "extra_sheet_names", "field-list", "allow_comment_rows_test",
    "choice_name_same_as_select_name", "cascading_select_test_equivalent", "xml_escaping",
    "blank_second_row", "ict_survey_fails", "spaces_in_choices_header", "badly_named_choices_sheet",
    "ODKValidateWarnings", "choice_name_as_type", "default_time_demo",
]

# Forms that use something a chat cannot do: they load, with a warning at (sheet, row, column)
# whose message says what the chat does instead.
WARNED = {
    "loop": ("survey", 3, "type", "loop 'loop_toilet_types' is not asked in this version"),
    "simple_loop": ("survey", 2, "type", "loop 'my_table' is not asked"),
    "repeat_date_test": ("survey", 4, "label", "Repeat has no label"),
    "widgets": ("survey", 12, "type", "a chat cannot take barcode scanning"),
    "hidden": ("survey", 2, "type", "a chat cannot take hidden fields"),
    "tutorial": ("survey", 2, "tutorial notes", "not used by a chat survey"),
    "sms_info": ("survey", 2, "sms_field", "not used by a chat survey; kept with the question as metadata"),
    "case_insensitivity": ("entities", 2, None, "the 'entities' sheet is ignored"),
    "table-list": ("choices", 23, "image", "are not sent in a chat; their labels are"),
    "choice_filter_test": ("settings", 2, "allow_choice_duplicates", "choice names may repeat"),
    "xl_date_ambiguous_v1": ("settings", 2, "xml_root", "setting 'xml_root' is not used by a chat survey"),
    "UCL_Biomass_Plot_Form": ("survey", 16, "type", "the file 'UCL_regions.csv', which is not shipped beside"),
    "attribute_columns_test": ("survey", 2, "bind::saveIncomplete", "not used by a chat survey"),
    "xlsform_spec_test": ("survey", 35, "type", "a chat cannot take barcode scanning"),
    "flat_xlsform_test": ("settings", 2, "flat", "setting 'flat' is not used"),
}

# Forms that are wrong (or ask nothing): (sheet, row, column) of one problem and a fragment of it.
REJECTED = {
    "pull_data": ("survey", None, None, "the form asks no question"),
    "gps": ("survey", 2, "label", "has no label or hint"),  # gps.csv; gps.xls has a label
    "include": ("file", None, None, "This section has not been included"),
    "include_json": ("file", None, None, "This section has not been included"),
    "or_other": ("survey", 3, "choice_filter", "choice_filter reads 'yes', which is no column"),
    "calculate_without_calculation": ("survey", 34, "calculation", "Missing calculation"),
    "group_name_test": ("survey", 3, "name", "no name"),
    "unknown_question_type": ("survey", 1, "relevance", "Headers that are different names for the same column"),
    "bad_calc": ("survey", 2, "calculation", "cannot read calculation"),
    "calculate": ("survey", None, None, "the form asks no question"),
    "fruits": ("file", None, None, "cannot read the file as an XLSForm"),
    "duplicate_columns": ("file", None, None, "Duplicate column header: label"),
}


@pytest.mark.parametrize("path", shared_forms(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_shared_form_loads_or_is_refused_with_located_problems(path: Path) -> None:
    """No traceback: each real form either loads or every problem says what and where."""
    try:
        questionnaire = load_questionnaire(path)
    except FormError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.message.strip(), problem
            assert "Traceback" not in problem.message
            assert problem.location.sheet in {"file", "survey", "choices", "settings", "entities"}, problem
            if problem.location.sheet == "survey" and "asks no question" not in problem.message:
                assert problem.location.row is not None, f"a problem about a row names no row: {problem}"
            if problem.location.sheet in ("choices", "settings"):
                assert problem.location.row is not None and problem.location.column, problem
    else:
        assert questionnaire.asked or questionnaire.unaskable, "a form that loads has questions"


def test_shared_forms_folder_holds_what_the_expectations_name(examples: Path) -> None:
    stems = {p.stem for p in iter_form_files(examples)}
    assert set(ACCEPTED) <= stems
    assert set(REJECTED) <= stems and {stem.split(".")[0] for stem in WARNED} <= stems
    assert len(list(iter_form_files(examples))) >= 70


@pytest.mark.parametrize("stem", ACCEPTED)
def test_shared_form_with_supported_features_loads(examples: Path, stem: str) -> None:
    paths = sorted(examples.rglob(f"{stem}.*"))
    assert paths
    for path in paths:
        if path.suffix in (".xlsx", ".xls", ".csv", ".md"):
            assert load_questionnaire(path).asked, path


@pytest.mark.parametrize("stem", sorted(REJECTED))
def test_shared_form_with_unsupported_features_is_refused_naming_it(examples: Path, stem: str) -> None:
    sheet, row, column, fragment = REJECTED[stem]
    for path in sorted(examples.rglob(f"{stem}.*")):
        if stem == "gps" and path.suffix != ".csv":
            continue
        problems = problems_of(path)
        located = [p for p in problems if (p.location.sheet, p.location.row, p.location.column) == (sheet, row, column)]
        assert any(fragment in p.message for p in located), (path, [str(p) for p in problems])


@pytest.mark.parametrize("stem", sorted(WARNED))
def test_shared_form_with_features_a_chat_lacks_loads_with_a_located_warning(examples: Path, stem: str) -> None:
    sheet, row, column, fragment = WARNED[stem]
    for path in sorted(examples.rglob(stem if "." in stem else f"{stem}.*")):
        form = load_questionnaire(path)
        assert warned(form, sheet, row, column, fragment), (path, form.warnings)


def test_group_form_loads_its_groups_and_phone_number_as_digits(examples: Path) -> None:
    form = load_questionnaire(examples / "example_xls" / "group.md")
    assert list(form.groups) == ["father"]
    phone = form.question("phone_number")
    assert phone.type is QuestionType.TEXT and phone.groups == ("father",)
    assert phone.constraint is not None and "regex" in phone.constraint.source


def test_specify_other_form_asks_for_the_other_answer(examples: Path) -> None:
    form = load_questionnaire(examples / "example_xls" / "specify_other.xlsx")
    other = form.question("sex_other")
    assert other.type is QuestionType.TEXT
    assert other.relevant is not None and other.relevant.references == {"sex"}
    assert other.location == form.question("sex").location


# -- broken forms of our own -------------------------------------------------------------------------

# name of tests/forms/broken/NAME.md → (sheet, row, column, fragment of the message)
BROKEN_CASES = {
    "unknown_type": ("survey", 3, "type", "type 'colour' is not supported"),
    "relevant_paren": ("survey", 3, "relevant", "unclosed '('"),
    "constraint_typo": ("survey", 2, "constraint", "cannot read constraint '. >> 18'"),
    "calculation_typo": ("survey", 3, "calculation", "cannot read calculation '${age} * * 2'"),
    "choice_filter_typo": ("survey", 2, "choice_filter", "unterminated string"),
    "missing_ref_relevant": ("survey", 3, "relevant", "agee"),
    "missing_ref_label": ("survey", 3, "label::Tiếng Việt (vi)", "tenn"),
    "missing_list": ("survey", 2, "type", "List name not in choices sheet: colours"),
    "duplicate_names": ("survey", 3, "name", "must be unique"),
    "duplicate_choices": ("choices", 4, "name", "Choice names must be unique"),
    "calculate_no_calc": ("survey", 3, "calculation", "Missing calculation"),
    "group_no_end": ("survey", 2, "type", "No matching 'end_group'"),
    "no_questions": ("survey", None, None, "the form asks no question"),
    "dot_in_relevant": ("survey", 2, "relevant", "'.' (the answer being checked) is only allowed in constraints"),
    "bare_name_relevant": ("survey", 3, "relevant", "unknown name 'age' (did you mean ${age}?)"),
    "required_expr": ("survey", 2, "required", "cannot read required"),
    "choice_filter_column": ("survey", 2, "choice_filter", "reads 'kind', which is no column of the choice list 'yn'"),
    "unknown_function": ("survey", 3, "relevant", "unknown function 'fooo'"),
}

# name of tests/forms/lenient/NAME.md → (sheet, row, column, fragment of the warning): forms that
# use what a chat cannot do load, and say so at the place and what the chat does instead.
LENIENT_CASES = {
    "repeat": ("survey", 3, "repeat_count", "the chat asks \"add another?\" instead"),
    "geotrace": ("survey", 2, "type", "a chat cannot take lines and areas on a map (a geopoint is asked)"),
    "read_only": ("survey", 3, "read_only", "the chat shows it as a note and does not ask it"),
    "media_image": ("survey", 2, "media::image", "the file 'pic.png' is not beside the form; the prompt is sent without it"),
    "parameters": ("survey", 2, "parameters", "parameters have no effect in a chat"),
    "trigger_column": ("survey", 3, "trigger", "not used by a chat survey; kept with the question as metadata"),
    "settings_column": ("settings", 2, "clean_text_values", "setting 'clean_text_values' is not used"),
    "choice_image": ("choices", 2, "image", "are not sent in a chat; their labels are"),
    "entities": ("entities", 2, None, "the 'entities' sheet is ignored"),
    "from_file": ("survey", 2, "type", "the file 'places.csv', which is not shipped beside the form"),
}


def test_every_broken_or_lenient_form_has_an_expectation() -> None:
    assert {p.stem for p in BROKEN.glob("*.md")} == set(BROKEN_CASES)
    assert {p.stem for p in LENIENT.glob("*.md")} == set(LENIENT_CASES)


@pytest.mark.parametrize("name", sorted(LENIENT_CASES))
def test_form_using_what_a_chat_lacks_loads_with_a_warning_at_its_place(name: str) -> None:
    sheet, row, column, fragment = LENIENT_CASES[name]
    form = load_questionnaire(LENIENT / f"{name}.md")
    assert warned(form, sheet, row, column, fragment), form.warnings


@pytest.mark.parametrize("name", sorted(BROKEN_CASES))
def test_broken_form_is_refused_at_its_sheet_row_and_column(name: str) -> None:
    sheet, row, column, fragment = BROKEN_CASES[name]
    problems = problems_of(BROKEN / f"{name}.md")
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert (problem.location.sheet, problem.location.row, problem.location.column) == (sheet, row, column)
    assert fragment in problem.message


def test_unsupported_file_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "form.txt"
    path.write_text("type,name,label\ntext,a,A\n")
    (problem,) = problems_of(path)
    assert problem.location.sheet == "file" and "unsupported file type '.txt'" in problem.message


def test_missing_file_is_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nowhere.xlsx")
    assert problem.location.sheet == "file" and problem.message == "no such file"


def test_every_problem_is_reported_not_only_the_first() -> None:
    with pytest.raises(FormError) as caught:
        load_md("""
            | survey |
            | | type | name | label | relevant |
            | | integer | age | Age | |
            | | colour | where | Where? | |
            | | text | job | Job | ${age} >>> 3 |
        """)
    located = [(p.location.row, p.location.column) for p in caught.value.problems]
    assert located == [(3, "type"), (4, "relevant")]
    assert "row 4, column 'relevant'" in str(caught.value)


def test_pyxform_error_in_a_csv_form_keeps_its_row() -> None:
    with pytest.raises(FormError) as caught:
        load_questionnaire_bytes(b"survey,,,\n,type,name,label\n,integer,a,A\n,calculate,c,\n", "f.csv")
    (problem,) = caught.value.problems
    assert (problem.location.sheet, problem.location.row, problem.location.column) == ("survey", 3, "calculation")
    assert "[row" not in problem.message


# -- what loads ---------------------------------------------------------------------------------------

FULL = """
    | survey |
    | | type | name | label::Tiếng Việt (vi) | label::English (en) | required | relevant | constraint | calculation | appearance |
    | | start | start | | | | | | | |
    | | deviceid | device | | | | | | | |
    | | select_one yn | dong_y | Đồng ý? | Agree? | yes | | | | |
    | | begin group | chinh | Phần chính | Main part | | ${dong_y} = 'co' | | | |
    | | integer | tuoi | Tuổi? | Age? | ${dong_y} = 'co' | | . >= 18 | | |
    | | select_one kenh or_other | kenh | Kênh? | Channel? | | | | | |
    | | calculate | gap_doi | | | | | | ${tuoi} * 2 | |
    | | text | ghi_chu | Ghi chú | Note | no | | | | spinner |
    | | end group | | | | | | | | |
    | choices |
    | | list_name | name | label::Tiếng Việt (vi) | label::English (en) |
    | | yn | co | Có | Yes |
    | | yn | khong | Không | No |
    | | kenh | mot_cua | Một cửa | One-stop shop |
    | | kenh | truc_tuyen | Trực tuyến | Online |
"""


@pytest.fixture(scope="module")
def full():
    return load_md(FULL)


def test_languages_are_read_from_the_label_headers(full) -> None:
    assert [(lang.code, lang.name) for lang in full.languages] == [("vi", "Tiếng Việt"), ("en", "English")]
    assert full.default_language == "vi"
    assert full.question("dong_y").label.get("vi") == "Đồng ý?"
    assert full.question("dong_y").label.get("en") == "Agree?"


def test_required_yes_becomes_an_expression_and_no_becomes_optional(full) -> None:
    assert full.question("dong_y").required.source == "true()"
    assert full.question("tuoi").required.references == {"dong_y"}
    assert full.question("ghi_chu").required is None


def test_expressions_are_parsed_at_load(full) -> None:
    assert full.question("tuoi").constraint.uses_current
    assert full.question("gap_doi").calculation.references == {"tuoi"}


def test_or_other_adds_an_other_choice_and_a_text_asked_only_then(full) -> None:
    kenh = full.question("kenh")
    other = kenh.choices[-1]
    assert other.name == "other"
    assert (other.label.get("vi"), other.label.get("en")) == ("Khác", "Other")
    follow_up = full.question("kenh_other")
    assert follow_up.type is QuestionType.TEXT
    assert follow_up.relevant.source == "selected(${kenh}, 'other')"
    assert follow_up.groups == ("chinh",)
    assert full.index("kenh_other") == full.index("kenh") + 1


def test_group_relevance_is_recorded_and_applies_to_its_questions(full) -> None:
    group = full.groups["chinh"]
    assert group.relevant.references == {"dong_y"}
    assert group.label.get("en") == "Main part"
    assert group.location.row == 5
    assert [c.source for c in full.conditions(full.question("tuoi"))] == ["${dong_y} = 'co'"]


def test_choice_keys_are_positions_from_one(full) -> None:
    assert [(c.key, c.name) for c in full.question("dong_y").choices] == [("1", "co"), ("2", "khong")]
    assert [c.key for c in full.question("kenh").choices] == ["1", "2", "3"]


def test_metadata_is_filled_from_the_session_or_kept_empty_with_a_warning(full) -> None:
    assert full.question("start").type is QuestionType.START
    assert full.question("device").type is QuestionType.EMPTY_METADATA
    assert any("row 3" in w and "'deviceid' has no value in a chat" in w for w in full.warnings)
    assert not full.question("start").type.is_asked


def test_unknown_appearance_is_a_warning_with_its_place(full) -> None:
    assert any("row 9, column 'appearance'" in w and "spinner" in w for w in full.warnings)


def test_missing_version_uses_a_content_hash_with_a_warning(full) -> None:
    assert full.version.startswith("sha-") and len(full.version) == 14
    assert any("no 'version'" in w for w in full.warnings)
    assert load_md(FULL).version == full.version
    assert load_md(FULL + "    | | yn | ? | ? | ? |\n").version != full.version


def test_settings_are_read_whatever_their_case() -> None:
    form = load_md("""
        | survey |
        | | type | name | label::English (en) |
        | | text | a | A |
        | settings |
        | | FORM_ID | Version | form_title | DEFAULT_LANGUAGE | style |
        | | my_form | 7 | My form | English (en) | pages |
    """)
    assert (form.form_id, form.version, form.title, form.default_language) == ("my_form", "7", "My form", "en")
    assert any("column 'style'" in w for w in form.warnings)


def test_pyxform_aliases_of_supported_types_load_as_those_types() -> None:
    form = load_md("""
        | survey |
        | | type | name | label |
        | | string | a | A |
        | | int | b | B |
        | | percentage | c | C |
        | | imei | d | |
    """)
    assert [q.type for q in form.questions] == [QuestionType.TEXT, QuestionType.INTEGER, QuestionType.INTEGER,
                                                QuestionType.EMPTY_METADATA]
    assert form.question("c").constraint.source == "0 <= . and . <= 100"


def test_a_note_without_a_name_loads_at_its_row() -> None:
    form = load_md("""
        | survey |
        | | type | name | label |
        | | note | | Hello |
        | | text | a | A |
    """)
    (note,) = [q for q in form.questions if q.type is QuestionType.NOTE]
    assert note.location.row == 2 and note.label.get(ANY_LANGUAGE) == "Hello"


def test_table_list_group_loads_as_its_questions() -> None:
    form = load_md("""
        | survey |
        | | type | name | label | appearance |
        | | begin group | tbl | Rate each | table-list |
        | | select_one yn | a | A | |
        | | select_one yn | b | B | |
        | | end group | | | |
        | choices |
        | | list_name | name | label |
        | | yn | yes | Yes |
        | | yn | no | No |
    """)
    assert [q.name for q in form.asked] == ["a", "b"]
    (note,) = [q for q in form.questions if q.type is QuestionType.NOTE]
    assert note.label.get(ANY_LANGUAGE) == "Rate each" and note.location.row == 2


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.md")), ids=lambda p: p.name)
def test_bundled_templates_load_without_problems(template: Path) -> None:
    form = load_questionnaire(template)
    assert form.asked and form.language_codes[:1] == ("vi",)


# -- the command line ---------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "bot.cli", "form", "check", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_cli_prints_a_summary_and_exits_0_for_the_templates() -> None:
    result = run_cli(*map(str, sorted(TEMPLATES.glob("*.md"))))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "questions asked" in output and "2 of 2 forms can run in a chat" in output
    assert "Traceback" not in output


def test_cli_names_sheet_row_and_column_and_exits_1_for_a_broken_form() -> None:
    result = run_cli(str(BROKEN / "relevant_paren.md"))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "sheet 'survey', row 3, column 'relevant'" in output and "unclosed '('" in output
    assert "Traceback" not in output


def test_cli_checks_a_whole_folder_without_a_traceback(examples: Path) -> None:
    result = run_cli(str(examples))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output
    assert "forms can run in a chat" in output
