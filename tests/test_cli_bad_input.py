"""Bad input a real user gives the command line: a clear message and exit 1 or 2, never a traceback."""

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "surveys" / "templates"


def khaosat(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "notdb.sqlite").write_text("not a database at all\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "cp1258.csv").write_bytes("score,answer\n1,Không\n".encode("cp1258"))
    (tmp_path / "fake.xlsx").write_text("this is text, not a workbook\n")
    (tmp_path / "data.csv").write_text("unit,score\na,1\nb,2\na,3\nb,4\n")
    (tmp_path / "design.toml").write_text("[design]\n")
    (tmp_path / "design1258.toml").write_bytes(b'[design]\nstrata = "t\xe1ng"\n')  # "táng" in Windows-1258
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty_dir").mkdir()
    rules = (TEMPLATES / "scoring_par_2026.example.toml").read_text(encoding="utf-8")
    (tmp_path / "nomax.toml").write_text(rules.replace("max_points = 30.50", "", 1), encoding="utf-8")
    (tmp_path / "comma.toml").write_text(rules.replace("max_points = 0.75", 'max_points = "0,75"', 1),
                                         encoding="utf-8")
    (tmp_path / "noscale.toml").write_text(rules.replace('scale = "danh_gia"\n', "", 1), encoding="utf-8")
    (tmp_path / "empty.toml").write_text("")
    return tmp_path


def refused(result, *words, code=1):
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    for word in words:
        assert word in out, out


@pytest.mark.parametrize("args", [
    ["status", "--db", "notdb.sqlite"],
    ["survey", "list", "--db", "notdb.sqlite"],
    ["survey", "load", TEMPLATES / "survey.example.toml", "--db", "notdb.sqlite"],
    ["frame", "import", TEMPLATES / "frame.example.csv", "--db", "notdb.sqlite"],
    ["sample", "draw", "--seed", "1", "--db", "notdb.sqlite"],
    ["invite", "--db", "notdb.sqlite", "--out", "letters", "--telegram", "bot"],
    ["remind", "--list-unreached", "--out", "u.csv", "--db", "notdb.sqlite"],
    ["try", TEMPLATES / "sipas_citizen.md", "--db", "notdb.sqlite"],
    ["weight", "--db", "notdb.sqlite", "--design", "design.toml", "--out", "w.csv"],
])
def test_a_file_that_is_not_a_database_is_named(files, args):
    refused(khaosat(*args, cwd=files), "notdb.sqlite is not a khaosat database")
    assert (files / "notdb.sqlite").read_text() == "not a database at all\n"


def test_a_database_newer_than_the_code_is_refused_clearly(files):
    db = files / "new.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 9999")
    refused(khaosat("survey", "list", "--db", db, cwd=files), "newer than this khaosat supports")


@pytest.mark.parametrize("data, words", [
    ("empty.csv", ["empty.csv: the file is empty"]),
    ("cp1258.csv", ["cp1258.csv: line 2: not UTF-8", "CSV UTF-8"]),
    ("fake.xlsx", ["fake.xlsx: not a readable XLSX file"]),
])
def test_unreadable_data_tables(files, data, words):
    refused(khaosat("estimate", "--data", data, "--mean", "score", "--out", "e.csv", cwd=files), *words)
    refused(khaosat("report", "--out", "rep", "--scores", data, cwd=files), *words)


def test_design_file_not_utf8(files):
    refused(khaosat("weight", "--data", "data.csv", "--design", "design1258.toml", "--out", "w.csv", cwd=files),
            "design1258.toml: not UTF-8")


def test_output_that_cannot_be_written(files):
    refused(khaosat("estimate", "--data", "data.csv", "--mean", "score", "--out", "afile/e.csv", cwd=files),
            "afile")


@pytest.mark.parametrize("rules, words", [
    ("nomax.toml", ["[index] has no max_points"]),
    ("comma.toml", ["[[subcriteria]] #1 max_points must be a number, not '0,75'"]),
    ("noscale.toml", ["[[subcriteria]] #1 has no scale"]),
    ("empty.toml", ["nothing to score"]),
])
def test_scoring_rules_with_a_missing_or_wrong_key(files, rules, words):
    refused(khaosat("score", "--data", "data.csv", "--rules", rules, "--unit", "unit", "--out", "s.csv",
                    cwd=files), *words)


def test_config_errors_keep_their_brackets_and_encoding(files):
    (files / "typo.toml").write_text('[storage]\npath = "x.sqlite"\n[bogus]\n')
    refused(khaosat("--config", "typo.toml", "status", cwd=files), "[bogus]: unknown section")
    (files / "c1258.toml").write_bytes(b'[storage]\npath = "t\xe1ng.sqlite"\n')
    refused(khaosat("--config", "c1258.toml", "status", cwd=files), "c1258.toml: not UTF-8")


def test_form_check_of_a_folder_without_forms(files):
    refused(khaosat("form", "check", "empty_dir", cwd=files), "no questionnaire files")


def test_status_with_a_bad_at_time(files):
    db = files / "s.sqlite"
    refused(khaosat("survey", "load", TEMPLATES / "survey.example.toml", "--db", db, cwd=files), code=0)
    refused(khaosat("status", "--db", db, "--at", "yesterday", cwd=files), "--at", code=2)


def test_invite_keeps_the_letters_it_cannot_replace(files):
    db = files / "s.sqlite"
    shutil.copy(TEMPLATES / "units.example.csv", files / "units.example.csv")
    for args in (["survey", "load", TEMPLATES / "survey.example.toml"], ["frame", "import", TEMPLATES / "frame.example.csv"],
                 ["sample", "draw", "--seed", "1"]):
        refused(khaosat(*args, "--db", db, cwd=files), code=0)
    # a folder that cannot be made: refused before any code is issued
    refused(khaosat("invite", "--db", db, "--out", "afile/sub", "--telegram", "bot", cwd=files),
            "cannot write the letters")
    refused(khaosat("invite", "--db", db, "--out", "letters", "--telegram", "bot", cwd=files), code=0)
    letters = (files / "letters" / "invitations.csv").read_text(encoding="utf-8-sig")
    assert len(letters.splitlines()) > 1
    # nobody left: the letters already written (codes stored only as hashes) are not overwritten
    refused(khaosat("invite", "--db", db, "--out", "letters", "--telegram", "bot", cwd=files), "nobody to invite")
    assert (files / "letters" / "invitations.csv").read_text(encoding="utf-8-sig") == letters


def test_remind_list_to_an_unwritable_place(files):
    db = files / "s.sqlite"
    refused(khaosat("survey", "load", TEMPLATES / "survey.example.toml", "--db", db, cwd=files), code=0)
    refused(khaosat("remind", "--list-unreached", "--out", "afile/u.csv", "--db", db, cwd=files), "cannot write")


def test_an_empty_or_fake_form_file_is_named_plainly(tmp_path):
    empty, fake = tmp_path / "empty.md", tmp_path / "fake.xlsx"
    empty.write_text("", encoding="utf-8")
    fake.write_text("hello world\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "form", "check", str(empty), str(fake)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "the file is empty" in result.stderr
    assert "not a readable .xlsx XLSForm" in result.stderr and "Argument 'definition'" not in result.stderr


def in_process(*args):
    """The command in this process (faster than a new interpreter for each of many cases)."""
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


#: Commands that read an existing database; "{db}" is the --db given, "{dir}" the test folder.
READERS = [
    ["status", "--db", "{db}"],
    ["survey", "list", "--db", "{db}"],
    ["frame", "import", TEMPLATES / "frame.example.csv", "--db", "{db}"],
    ["sample", "draw", "--seed", "1", "--db", "{db}"],
    ["sample", "import", TEMPLATES / "frame.example.csv", "--db", "{db}"],
    ["sample", "replace", "--nonrespondents", "--db", "{db}"],
    ["invite", "--db", "{db}", "--out", "{dir}/letters", "--telegram", "bot"],
    ["remind", "--list-unreached", "--out", "{dir}/u.csv", "--db", "{db}"],
    ["export", "--db", "{db}", "--out", "{dir}/x.csv"],
    ["weight", "--db", "{db}", "--design", "{dir}/design.toml", "--out", "{dir}/w.csv"],
    ["estimate", "--db", "{db}", "--mean", "score", "--out", "{dir}/e.csv"],
    ["score", "--db", "{db}", "--rules", TEMPLATES / "scoring_par_2026.example.toml", "--unit", "unit",
     "--out", "{dir}/s.csv"],
    ["report", "--db", "{db}", "--out", "{dir}/rep"],
]


@pytest.mark.parametrize("args", READERS, ids=lambda args: " ".join(map(str, args[:2])))
def test_an_empty_or_missing_database_is_refused_and_nothing_is_created(files, args):
    (files / "empty.sqlite").write_bytes(b"")
    before = sorted(p.name for p in files.iterdir())
    for db, message in (("empty.sqlite", "empty.sqlite is empty, not a khaosat database"),
                        ("missing.sqlite", "missing.sqlite does not exist")):
        result = in_process(*(str(a).format(db=files / db, dir=files) for a in args))
        assert result.exit_code == 1 and message in result.stderr, result.output
    assert sorted(p.name for p in files.iterdir()) == before  # no database, -wal, letters, CSV or report
    assert (files / "empty.sqlite").read_bytes() == b""


@pytest.mark.parametrize("db", ["empty.sqlite", "new.sqlite"])
def test_commands_that_create_a_database_still_do(files, db):
    (files / "empty.sqlite").write_bytes(b"")
    path = files / db
    done = in_process("survey", "load", TEMPLATES / "survey.example.toml", "--db", path)
    assert done.exit_code == 0, done.output
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    assert in_process("survey", "list", "--db", path).exit_code == 0


def test_try_creates_its_database_from_an_empty_file(files):
    (files / "empty.sqlite").write_bytes(b"")
    done = khaosat("try", TEMPLATES / "sipas_citizen.md", "--db", "empty.sqlite", cwd=files)
    assert done.returncode == 0, done.stderr
    assert (files / "empty.sqlite").read_bytes().startswith(b"SQLite format 3\x00")


def test_remind_list_for_an_unknown_survey_writes_nothing(files):
    db = files / "s.sqlite"
    refused(khaosat("survey", "load", TEMPLATES / "survey.example.toml", "--db", db, cwd=files), code=0)
    refused(khaosat("remind", "--list-unreached", "--out", "u.csv", "--survey", "NOPE", "--db", db, cwd=files),
            "no survey 'NOPE'")
    assert not (files / "u.csv").exists()


def test_run_refuses_a_configured_database_that_does_not_exist(tmp_path):
    config = tmp_path / "khaosat.toml"
    config.write_text('[storage]\npath = "typo.sqlite"\n\n[[telegram]]\nname = "t"\ntoken = "1:x"\n'
                      f'forms = ["{(TEMPLATES / "sipas_citizen.md").as_posix()}"]\n', encoding="utf-8")
    result = khaosat("--config", config, "run", cwd=tmp_path)
    assert result.returncode == 1 and "typo.sqlite does not exist" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["khaosat.toml"]
