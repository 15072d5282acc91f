"""The survey share of the index on a small example whose arithmetic is written out here."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from exporters.design import Design
from exporters.estimation import SurveyDesign
from exporters.scores import score_units
from surveys.scoring import ScoringError, load_scoring
from surveys.templates import FOLDER as TEMPLATES
from surveys.xlsform import load_questionnaire

ROOT = Path(__file__).resolve().parents[1]

RULES = """
[index]
name = "test index"
year = 2026
max_points = 3.0

[scales.s]
"1" = 0.0
"2" = 0.5
"3" = 1.0
kb = "exclude"

[groups]
g1 = 0.6
g2 = 0.4

[domains]
D1 = "Domain one"
D2 = "Domain two"

[criteria.C1]
name = "Criterion one"
domain = "D1"

[criteria.C2]
name = "Criterion two"
domain = "D2"

[[subcriteria]]
id = "S1"
criterion = "C1"
max_points = 2.0
questions = ["q1", "q2"]
scale = "s"

[[subcriteria]]
id = "S2"
criterion = "C2"
max_points = 1.0
questions = ["q3"]
scale = "s"

[satisfaction]
satisfied = ["3"]
exclude = ["kb"]
aspects.A1 = ["q1", "q2"]
aspects.A2 = ["q3"]
"""

DATA = pd.DataFrame({
    "unit":  ["X", "X", "X", "Y", "Y"],
    "group": ["g1", "g1", "g2", "g1", "g2"],
    "q1":    ["3", "1", "3", "2", "3"],
    "q2":    ["2", "kb", "3", "2", "2"],
    "q3":    ["3", "2", None, "1", "3"],
})


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    return load_scoring(path)


def value(scores, unit, level, ident):
    return next(s for s in scores if (s.unit, s.level, s.id) == (unit, level, ident))


def test_hand_worked_scores(rules):
    scores = score_units(DATA, rules, SurveyDesign(DATA, Design()), unit="unit", group="group")
    # Unit X, sub-criterion S1 (max 2 points, questions q1 and q2):
    #   row 1 (g1): q1 "3" → 1.0, q2 "2" → 0.5, share 0.75;  row 2 (g1): q1 "1" → 0.0, q2 "kb" not
    #   counted, share 0.0;  row 3 (g2): 1.0 and 1.0, share 1.0.
    #   g1 mean (0.75 + 0.0) / 2 = 0.375; g2 mean 1.0; weighted 0.6 × 0.375 + 0.4 × 1.0 = 0.625
    #   → 0.625 × 2 = 1.25 points.
    assert value(scores, "X", "subcriterion", "S1").value == pytest.approx(1.25)
    # S2 (max 1, q3): g1 rows 1.0 and 0.5 → 0.75; g2 did not answer, so g1 carries the weight alone.
    assert value(scores, "X", "subcriterion", "S2").value == pytest.approx(0.75)
    assert value(scores, "X", "criterion", "C1").value == pytest.approx(1.25)
    assert value(scores, "X", "domain", "D2").value == pytest.approx(0.75)
    assert value(scores, "X", "total", "total").value == pytest.approx(2.0)
    # Unit Y: S1 g1 0.5, g2 (1.0 + 0.5)/2 = 0.75 → 0.6 × 0.5 + 0.4 × 0.75 = 0.6 → 1.2 points;
    #         S2 g1 0.0, g2 1.0 → 0.4 → 0.4 points; total 1.6.
    assert value(scores, "Y", "subcriterion", "S1").value == pytest.approx(1.2)
    assert value(scores, "Y", "total", "total").value == pytest.approx(1.6)
    assert (value(scores, "X", "total", "total").rank, value(scores, "Y", "total", "total").rank) == (1, 2)


def test_hand_worked_standard_error(rules):
    scores = score_units(DATA, rules, SurveyDesign(DATA, Design()), unit="unit", group="group")
    # Influence of each row on X's S1 points (simple random sample, weights 1, n = 5):
    #   g1 rows: 2 × 0.6 × (0.75 − 0.375) / 2 = 0.225 and 2 × 0.6 × (0.0 − 0.375) / 2 = −0.225;
    #   the g2 row: 2 × 0.4 × (1.0 − 1.0) / 1 = 0; rows of unit Y: 0.
    #   V = n / (n − 1) × Σ (z − z̄)² = 5/4 × (0.225² + 0.225²) = 0.1265625.
    assert value(scores, "X", "subcriterion", "S1").se == pytest.approx(math.sqrt(0.1265625))
    # Unit Y has one rater per group: nothing varies within a group, so the SE is 0.
    assert value(scores, "Y", "subcriterion", "S2").se == pytest.approx(0.0)


def test_hand_worked_satisfaction(rules):
    scores = score_units(DATA, rules, SurveyDesign(DATA, Design()), unit="unit", group="group")
    # Unit X, aspect A1: q1 answers 3, 1, 3 → satisfied 2 of 3; q2 answers 2, kb (excluded), 3 →
    # 1 of 2; aspect = (2/3 + 1/2) / 2 = 7/12. A2: q3 answers 3, 2 → 1/2. Overall (7/12 + 1/2) / 2.
    assert value(scores, "X", "aspect", "A1").value == pytest.approx(7 / 12)
    assert value(scores, "X", "aspect", "A2").value == pytest.approx(0.5)
    assert value(scores, "X", "satisfaction", "overall").value == pytest.approx(13 / 24)


def test_the_bundled_example_rules_add_up_to_30_50_and_fit_the_template():
    rules = load_scoring(TEMPLATES / "scoring_par_2026.example.toml")
    assert rules.max_points == 30.50 and len(rules.domains) == 8
    rules.check_against([load_questionnaire(TEMPLATES / "par_index_officials.md")])
    sipas = load_scoring(TEMPLATES / "scoring_sipas_2026.example.toml")
    sipas.check_against([load_questionnaire(TEMPLATES / "sipas_citizen.md")])
    assert len(sipas.satisfaction.aspects) == 5


@pytest.mark.parametrize("change, message", [
    ('max_points = 3.0', "add up to 3, not index.max_points = 4", ),
    ('"2" = 0.5', "must be a share from 0 to 1"),
    ('scale = "s"\n\n[satisfaction]', "uses scale 't'"),
    ('domain = "D2"', "names domain 'D9'"),
])
def test_rules_errors_name_what_is_wrong(tmp_path, change, message):
    broken = {
        'max_points = 3.0': RULES.replace('max_points = 3.0', 'max_points = 4.0', 1),
        '"2" = 0.5': RULES.replace('"2" = 0.5', '"2" = 5'),
        'scale = "s"\n\n[satisfaction]': RULES.replace('scale = "s"\n\n[satisfaction]', 'scale = "t"\n\n[satisfaction]'),
        'domain = "D2"': RULES.replace('domain = "D2"', 'domain = "D9"'),
    }[change]
    path = tmp_path / "rules.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ScoringError, match=message):
        load_scoring(path)


def test_khaosat_score_writes_one_row_per_statistic(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    data = tmp_path / "answers.csv"
    DATA.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "score", "--data", str(data), "--rules", str(rules),
                             "--unit", "unit", "--group", "group", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert {"unit", "level", "id", "value", "se", "ci_low", "ci_high", "rank"} <= set(frame.columns)
    total = frame[(frame.level == "total") & (frame.unit == "X")].iloc[0]
    assert total.value == pytest.approx(2.0) and total["rank"] == 1
