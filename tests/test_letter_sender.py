"""Invitation letters carry the survey's title, the organising agency that sends them and whom to
ask (phone, e-mail), from the survey project's optional [organiser] table; bad values are refused
naming the key. Through the real CLI on a real database."""

from __future__ import annotations

import csv
import html
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from surveys.project import SurveyError, SurveyProject, load_survey, parse_survey

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "surveys" / "templates"
EXAMPLE = TEMPLATES / "survey.example.toml"
BASE = """
[survey]
id = "s1"
title = "Khảo sát SIPAS 2026, Tỉnh Quảng Trị"
index_year = 2026
opens = 2026-08-01
closes = 2026-08-31
levels = ["province", "commune"]

[[units]]
id = "p"
name = "Tỉnh P"
level = "province"

[groups.citizen]
label = { vi = "Người dân" }
form_id = "f1"
allocation = { method = "census" }
"""
ORGANISER = """
[organiser]
name = "Sở Nội vụ tỉnh Quảng Trị"
contact = "Phòng Cải cách hành chính"
phone = "0233 3852 123"
email = "khaosat@snv.quangtri.gov.vn"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SurveyError) as caught:
        parse_survey(textwrap.dedent(text), "t.toml")
    return caught.value.problems


def test_the_organiser_is_read_and_kept_through_storage():
    project = parse_survey(BASE + ORGANISER)
    organiser = project.organiser
    assert (organiser.name, organiser.contact, organiser.phone, organiser.email) == (
        "Sở Nội vụ tỉnh Quảng Trị", "Phòng Cải cách hành chính", "0233 3852 123", "khaosat@snv.quangtri.gov.vn")
    assert SurveyProject.from_json(project.to_json()) == project


def test_a_project_without_an_organiser_is_stored_as_before():
    """Reloading an unchanged file after an upgrade must not become a new version."""
    project = parse_survey(BASE)
    assert project.organiser.name is None
    assert "organiser" not in project.to_json()
    assert SurveyProject.from_json(project.to_json()) == project


@pytest.mark.parametrize("table, expected", [
    ('phone = "gọi tôi"', "organiser.phone: 'gọi tôi' is not a phone number"),
    ('phone = "12"', "organiser.phone: '12' is not a phone number"),
    ("phone = 2333852123", "organiser.phone: must be text"),
    ('email = "khaosat.snv.gov.vn"', "organiser.email: 'khaosat.snv.gov.vn' is not an e-mail address"),
    ('email = "a b@x.vn"', "organiser.email: 'a b@x.vn' is not an e-mail address"),
    ('name = ""', "organiser.name: must be non-empty text"),
    ('fax = "0233"', "organiser.fax: unknown key"),
])
def test_bad_organiser_values_name_the_key(table, expected):
    found = problems(BASE + "\n[organiser]\n" + table + "\n")
    assert any(expected in p for p in found), found


def test_the_bundled_example_documents_the_organiser():
    organiser = load_survey(EXAMPLE).organiser
    assert organiser.name and organiser.phone and organiser.email


def khaosat(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def fielded(tmp_path: Path, survey_text: str) -> Path:
    """survey load, frame import and sample draw through the CLI, with the bundled units and frame."""
    survey = tmp_path / "survey.toml"
    survey.write_text(survey_text, encoding="utf-8")
    (tmp_path / "units.example.csv").write_bytes((TEMPLATES / "units.example.csv").read_bytes())
    db = tmp_path / "s.sqlite"
    for step in (("survey", "load", survey, "--db", db), ("frame", "import", TEMPLATES / "frame.example.csv",
                                                          "--db", db), ("sample", "draw", "--seed", "1", "--db", db)):
        result = khaosat(*step, cwd=tmp_path)
        assert result.returncode == 0, (step, result.stderr)
    return db


def visible(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_letters_carry_the_survey_title_the_sender_and_a_contact(tmp_path):
    db = fielded(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    result = khaosat("invite", "--db", db, "--out", tmp_path / "letters", "--zalo", "Bot Khảo sát", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = load_survey(EXAMPLE)
    page = (tmp_path / "letters" / "letters.html").read_text(encoding="utf-8")
    text = visible(page)
    letters = page.count("THƯ MỜI THAM GIA KHẢO SÁT")
    assert letters > 1
    assert text.count(project.title) >= letters and "Khảo sát cải cách hành chính" not in text
    assert text.count(project.organiser.name) >= letters
    assert text.count(project.organiser.phone) == letters and text.count(project.organiser.email) == letters
    assert f"<title>{html.escape(project.title)}" in page
    rows = list(csv.DictReader((tmp_path / "letters" / "invitations.csv").open(encoding="utf-8-sig")))
    assert len(rows) == letters
    assert {(r["survey_title"], r["sender"], r["contact_phone"], r["contact_email"]) for r in rows} == {
        (project.title, project.organiser.name, project.organiser.phone, project.organiser.email)}
    assert "no contact" not in result.stderr


def test_without_an_organiser_letters_fall_back_and_the_coordinator_is_told(tmp_path):
    without = re.sub(r"\n\[organiser\][^\n]*\n(?:[^\[\n][^\n]*\n|\n)*", "\n", EXAMPLE.read_text(encoding="utf-8"))
    assert "[organiser]" not in without
    db = fielded(tmp_path, without)
    result = khaosat("invite", "--db", db, "--out", tmp_path / "letters", "--zalo", "Bot Khảo sát", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = visible((tmp_path / "letters" / "letters.html").read_text(encoding="utf-8"))
    assert load_survey(EXAMPLE).title in text  # the survey's own title, not a generic one
    assert "Ban tổ chức khảo sát" in text  # signed by the organisers, unnamed
    assert "liên hệ" not in text
    assert "[organiser]" in result.stderr and "no contact" in result.stderr


def test_title_given_on_the_command_line_wins(tmp_path):
    db = fielded(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    result = khaosat("invite", "--db", db, "--out", tmp_path / "letters", "--zalo", "Bot Khảo sát",
                     "--title", "Khảo sát đặc biệt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = visible((tmp_path / "letters" / "letters.html").read_text(encoding="utf-8"))
    assert "Khảo sát đặc biệt" in text and load_survey(EXAMPLE).organiser.name in text
