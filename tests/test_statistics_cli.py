"""`khaosat weight` and `khaosat estimate` on a plain table, as an analyst runs them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporters.design import load_design
from exporters.estimation import SurveyDesign, mean

ROOT = Path(__file__).resolve().parents[1]
DESIGN = """
[design]
strata = "stratum"
weights = "pw"
fpc = "fpc"

[[calibrate]]
variable = "stratum"
totals = { a = 600, b = 400 }
"""


def khaosat(*args):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


@pytest.fixture()
def survey(tmp_path):
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"stratum": ["a"] * 30 + ["b"] * 20, "pw": [20.0] * 30 + [20.0] * 20,
                         "fpc": [600] * 30 + [400] * 20, "score": rng.integers(1, 6, 50),
                         "answer": rng.choice(["co", "khong"], 50)})
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "design.toml").write_text(DESIGN, encoding="utf-8")
    return tmp_path


def test_estimate_writes_the_statistics_the_library_computes(survey):
    out = survey / "estimates.csv"
    result = khaosat("estimate", "--data", str(survey / "data.csv"), "--design", str(survey / "design.toml"),
                     "--mean", "score", "--mean", "answer", "--total", "score", "--by", "stratum", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns[:5]) == ["statistic", "variable", "domain", "estimate", "se"]
    overall = table[(table.statistic == "mean") & (table.variable == "score") & (table.domain == "")].iloc[0]
    data = pd.read_csv(survey / "data.csv")
    expected = mean(SurveyDesign.from_design(data, load_design(survey / "design.toml")), "score")
    assert overall.estimate == pytest.approx(expected.estimate) and overall.se == pytest.approx(expected.se)
    assert set(table[table.variable.str.startswith("answer")].variable) | set(table.domain) >= {"stratum=a", "stratum=b"}


def test_weight_writes_calibrated_weights_and_a_summary(survey):
    out = survey / "weighted.csv"
    result = khaosat("weight", "--data", str(survey / "data.csv"), "--design", str(survey / "design.toml"),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    weighted = pd.read_csv(out)
    weight_column = [c for c in weighted.columns if c not in ("stratum", "pw", "fpc", "score", "answer")][0]
    totals = weighted.groupby("stratum")[weight_column].sum()
    assert totals["a"] == pytest.approx(600) and totals["b"] == pytest.approx(400)
    assert "effective" in result.stdout.lower()


def test_a_column_missing_from_the_data_is_named(survey):
    broken = survey / "broken.toml"
    broken.write_text(DESIGN.replace('"pw"', '"poids"'), encoding="utf-8")
    result = khaosat("estimate", "--data", str(survey / "data.csv"), "--design", str(broken), "--mean", "score",
                     "--out", str(survey / "x.csv"))
    assert result.returncode == 1
    assert "poids" in result.stderr and "Traceback" not in result.stderr


def test_estimates_straight_from_the_survey_database(tmp_path):
    """--db reads the answers the bot stored, under pseudonyms, without an export step."""
    db = tmp_path / "tour.sqlite"
    for lines in (["yes", "30", "nu", "khong", "", ""], ["yes", "50", "nam", "khong", "", ""]):
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "try", str(ROOT / "tests" / "forms" / "tour.md"), "--db", str(db),
             "--respondent", lines[1]], input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
    out = tmp_path / "est.csv"
    result = khaosat("estimate", "--db", str(db), "--form", "tour", "--mean", "age", "--out", str(out))
    assert result.returncode == 0, result.stderr
    row = pd.read_csv(out, keep_default_na=False).iloc[0]
    assert (row.statistic, row.variable, row.estimate) == ("mean", "age", 40.0)
    both = khaosat("estimate", "--db", str(db), "--data", str(out), "--mean", "age", "--out", str(out))
    assert both.returncode == 2 and "either --data FILE or --db PATH" in both.stderr


def test_estimate_options_proportions_ratios_crossed_domains_and_intervals(survey):
    """--proportion of a 1–5 score, --ratio, two --by (crossed, never the second alone), --ci, --level."""
    data = pd.read_csv(survey / "data.csv")
    data["on_time"] = (data["score"] >= 3).astype(int)
    data["procedures"] = 1 + (data["score"] % 2)
    data.to_csv(survey / "data.csv", index=False)
    out = survey / "est.csv"
    result = khaosat("estimate", "--data", str(survey / "data.csv"), "--design", str(survey / "design.toml"),
                     "--proportion", "score", "--ratio", "on_time/procedures", "--by", "stratum", "--by", "answer",
                     "--ci", "logit", "--level", "0.9", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, keep_default_na=False)
    overall = table[table.domain == ""]
    assert sorted(overall[overall.statistic == "proportion"].variable) == [f"score={k}" for k in range(1, 6)]
    assert overall[overall.statistic == "proportion"].estimate.sum() == pytest.approx(1.0)
    assert set(table.domain) - {""} == {f"stratum={s}, answer={a}" for s in "ab" for a in ("co", "khong")}
    props = table[table.statistic == "proportion"]
    assert ((props.ci_low >= 0) & (props.ci_high <= 1)).all()
    ratio = overall[overall.statistic == "ratio"].iloc[0]
    design = SurveyDesign.from_design(data, load_design(survey / "design.toml"))
    w = design.weights
    assert ratio.estimate == pytest.approx((w * data.on_time).sum() / (w * data.procedures).sum(), rel=1e-12)
    bad = khaosat("estimate", "--data", str(survey / "data.csv"), "--ci", "wald", "--mean", "score", "--out", str(out))
    assert bad.returncode == 2 and "wald" in bad.stderr
