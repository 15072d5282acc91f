"""`import khaosat`: the analysts' Python API gives the same tables and numbers as the commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import khaosat
from exporters import estimation as E
from exporters.design import design_from_dict
from exporters.table import read_export

DESIGN = {"design": {"strata": "stratum", "weights": "weight"},
          "calibrate": [{"variable": "sample_khu_vuc", "totals": {"thanh_thi": 1900, "nong_thon": 2100}}],
          "output": {"weight": "final_weight"}}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from analysts_data import build

    path = tmp_path_factory.mktemp("api") / "g.sqlite"
    build(path, sessions=200, communes=4, seed=11)
    return path


def test_read_weight_estimate(db, tmp_path):
    answers = khaosat.read_answers(db)
    pd.testing.assert_frame_equal(answers, read_export(db).df)
    assert len(answers) == 200 and "last_channel" in answers.columns
    weighted = khaosat.weight(answers, DESIGN)
    assert weighted["final_weight"].sum() == pytest.approx(4000)
    assert weighted.attrs["weighting"]["steps"][0]["converged"]
    table = khaosat.estimate(weighted, DESIGN, means=["hai_long_chung", "gioi_tinh"], by=["unit"], level=0.9,
                             interval="t")
    survey = E.SurveyDesign.from_design(weighted, design_from_dict(DESIGN))
    overall = E.mean(survey, "hai_long_chung")
    first = table.iloc[0]
    assert (first.statistic, first.variable, first.domain) == ("mean", "hai_long_chung", "")
    assert first.estimate == overall.estimate and first.se == overall.se
    assert set(table.domain) >= {"", "unit=xa-000", "unit=xa-003"}
    design_file = tmp_path / "design.toml"
    design_file.write_text('[design]\nstrata = "stratum"\nweights = "weight"\n', encoding="utf-8")
    from_file = khaosat.estimate(answers, design_file, means=["hai_long_chung"])
    assert from_file.estimate[0] == pytest.approx(
        E.mean(E.SurveyDesign.from_design(answers, design_from_dict({"design": DESIGN["design"]})),
               "hai_long_chung").estimate)
    with pytest.raises(khaosat.DesignError, match="interval"):
        khaosat.estimate(answers, means=["hai_long_chung"], interval="wald")
