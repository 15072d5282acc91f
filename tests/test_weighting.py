"""Weights: arithmetic by hand, the design file, and R's rake/trimWeights on the same data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from exporters import weighting as W
from exporters.design import EXAMPLE, Design, DesignError, design_from_dict, load_design
from r_reference import need_r, r_values, read_csv_r, synthetic_survey, write_csv


# -- nonresponse, trimming, summary: by hand ------------------------------------------------------


def test_nonresponse_adjustment_by_hand():
    df = pd.DataFrame({"cls": ["a", "a", "a", "b", "b", "b"],
                       "resp": ["yes", "no", "yes", 1, 0, "true"],
                       "elig": [1, 1, 1, 1, 1, 0]})
    w = np.array([10.0, 20.0, 30.0, 5.0, 5.0, 7.0])
    new, report = W.nonresponse_adjust(df, w, "cls", "resp", eligible="elig")
    # class a: eligible 60, respondents 40 -> 1.5; class b: eligible 10 (the ineligible 7 left out),
    # respondents 5 -> 2; the ineligible unit keeps its weight, the nonrespondents get 0.
    assert new.tolist() == [15.0, 0.0, 45.0, 10.0, 0.0, 7.0]
    assert report.details["factors"] == {"a": 1.5, "b": 2.0}
    assert (report.details["respondents"], report.details["nonrespondents"], report.details["ineligible"]) == (3, 2, 1)
    assert w.tolist() == [10.0, 20.0, 30.0, 5.0, 5.0, 7.0]  # the caller's array is untouched


def test_nonresponse_class_without_respondents_is_an_error():
    df = pd.DataFrame({"cls": ["a", "b"], "resp": [1, 0]})
    with pytest.raises(DesignError, match="no respondents"):
        W.nonresponse_adjust(df, [1.0, 1.0], ["cls"], "resp")
    with pytest.raises(DesignError, match="column 'resp'.*'maybe'"):
        W.nonresponse_adjust(pd.DataFrame({"cls": ["a"], "resp": ["maybe"]}), [1.0], "cls", "resp")


def test_trim_by_hand():
    w, report = W.trim_weights([1.0, 2.0, 3.0, 10.0], upper=6.0)
    # 4 trimmed off the last weight, given back equally (4/3) to the three others
    assert w == pytest.approx([1 + 4 / 3, 2 + 4 / 3, 3 + 4 / 3, 6.0])
    assert report.iterations == 1 and report.converged
    w, report = W.trim_weights([1.0, 5.0, 5.5, 12.0], upper=6.0, strict=False)
    assert not report.converged and report.iterations == 1  # 5.5 + 2 > 6: strict would go on
    w, report = W.trim_weights([1.0, 2.0, 5.5, 12.0], upper=6.0, strict=True)
    assert report.converged and report.iterations > 1 and w.max() <= 6.0
    assert w.sum() == pytest.approx(20.5)
    # impossible bounds (the total cannot fit under them) end after max_rounds, reported
    w, report = W.trim_weights([1.0, 4.0, 4.5, 20.0], upper=6.0, strict=True, max_rounds=50)
    assert not report.converged and report.iterations == 50


def test_weight_summary_by_hand():
    s = W.weight_summary([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s["min"], s["q1"], s["median"], s["q3"], s["max"]) == (1.0, 2.0, 3.0, 4.0, 10.0)
    assert s["mean"] == 4.0 and s["sum"] == 20.0
    # Kish: n Σw² / (Σw)² = 5 · 130 / 400 ; effective n = 400 / 130
    assert s["deff"] == pytest.approx(5 * 130 / 400)
    assert s["n_eff"] == pytest.approx(400 / 130)
    assert W.weight_summary([3.0] * 4)["deff"] == pytest.approx(1.0)


def test_base_weights():
    df = pd.DataFrame({"s": ["a", "a", "b", "b", "b"], "p": [0.5, 0.25, 0.1, 0.1, 0.2], "N": [10, 10, 30, 30, 30]})
    assert W.base_weights(df, Design(probabilities="p")).tolist() == [2.0, 4.0, 10.0, 10.0, 5.0]
    assert W.base_weights(df, Design(strata="s", fpc="N")).tolist() == [5.0, 5.0, 10.0, 10.0, 10.0]
    assert W.base_weights(df, Design()).tolist() == [1.0] * 5
    with pytest.raises(DesignError, match="probabilities column 'p' must be in"):
        W.base_weights(df.assign(p=[0.5, 0, 1, 1, 1]), Design(probabilities="p"))


# -- post-stratification and raking ---------------------------------------------------------------


def test_poststratify_hits_the_totals():
    df = pd.DataFrame({"g": ["x", "x", "y", 1]})
    w, report = W.poststratify(df, [1.0, 3.0, 2.0, 2.0], ("g", {"x": 40, "y": 10, "1": 5}))
    assert w.tolist() == [10.0, 30.0, 10.0, 5.0]
    assert report.max_margin_error == 0.0
    with pytest.raises(DesignError, match="level 'z' \\(row 2\\) is in the sample but has no population total"):
        W.poststratify(pd.DataFrame({"g": ["x", "y", "z"]}), [1.0, 1.0, 1.0], ("g", {"x": 1, "y": 1}))
    with pytest.raises(DesignError, match="level\\(s\\) y have a population total but no one"):
        W.poststratify(pd.DataFrame({"g": ["x", "x"]}), [1.0, 1.0], ("g", {"x": 1, "y": 1}))


def test_rake_converges_and_reports():
    df = synthetic_survey(3)
    margins = {"region": {"north": 14500, "centre": 9500, "south": 12000}, "sex": {"F": 17600, "M": 18400}}
    w, report = W.rake(df, df["w"], margins, maxit=100, epsilon=1e-10)
    assert report.converged and 1 < report.iterations < 100
    assert report.max_margin_error < 1e-4
    assert w[df["sex"].to_numpy() == "F"].sum() == pytest.approx(17600)


def test_rake_that_does_not_converge_says_so():
    df = synthetic_survey(3)
    margins = [("region", {"north": 14500, "centre": 9500, "south": 12000}), ("sex", {"F": 17600, "M": 18400}),
               ("agegrp", {"1": 9200, "2": 9000, "3": 9300, "4": 8500})]
    w, report = W.rake(df, df["w"], margins, maxit=2, epsilon=1e-12)
    assert (report.converged, report.iterations, report.maxit) == (False, 2, 2)
    assert report.max_margin_error > 0
    assert report.as_dict()["converged"] is False


@need_r
def test_rake_iterations_and_nonconvergence_match_r(tmp_path):
    """Same sweeps as R's rake (joint-table convergence test), including when it stops at maxit."""
    df = synthetic_survey(11)
    path = write_csv(df, tmp_path / "s.csv")
    df = pd.read_csv(path)
    margins = [("region", {"north": 14500, "centre": 9500, "south": 12000}), ("sex", {"F": 17600, "M": 18400}),
               ("agegrp", {"1": 9200, "2": 9000, "3": 9300, "4": 8500})]
    pops = ('list(data.frame(region = c("north", "centre", "south"), Freq = c(14500, 9500, 12000)), '
            'data.frame(sex = c("F", "M"), Freq = c(17600, 18400)), '
            'data.frame(agegrp = 1:4, Freq = c(9200, 9000, 9300, 8500)))')
    for maxit, epsilon in [(10, 1), (2, 1e-12), (3, 0.5), (50, 1e-6)]:
        r = r_values(read_csv_r(path) + f"""
            d0 <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = df)
            d <- withCallingHandlers(rake(d0, list(~region, ~sex, ~agegrp), {pops},
                                          control = list(maxit = {maxit}, epsilon = {epsilon})),
                                     warning = function(w) {{ out("warned", 1); invokeRestart("muffleWarning") }})
            out("w", weights(d))
        """)
        w, report = W.rake(df, df["w"], margins, maxit=maxit, epsilon=epsilon)
        expected = np.array([r[f"w|{i + 1}"] for i in range(len(df))])
        np.testing.assert_allclose(w, expected, rtol=1e-12)
        assert report.converged == ("warned" not in r), (maxit, epsilon)


@need_r
def test_trim_weights_match_r(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.lognormal(3, 0.8, 300)
    df = pd.DataFrame({"id": np.arange(300), "w": w})
    path = write_csv(df, tmp_path / "w.csv")
    w = pd.read_csv(path)["w"].to_numpy()
    for lower, upper, strict in [(-math.inf, 60.0, False), (8.0, 45.0, False), (8.0, 45.0, True), (5.0, 40.0, True)]:
        lo = "-Inf" if lower == -math.inf else repr(lower)
        r = r_values(read_csv_r(path) + f"""
            d <- trimWeights(svydesign(id = ~1, weights = ~w, data = df), lower = {lo}, upper = {upper!r},
                             strict = {"TRUE" if strict else "FALSE"})
            out("w", weights(d))
        """)
        got, _ = W.trim_weights(w, lower, upper, strict=strict)
        np.testing.assert_allclose(got, [r[f"w|{i + 1}"] for i in range(len(w))], rtol=1e-12)


# -- the design file and `khaosat weight` -----------------------------------------------------------


def test_example_design_covers_every_key():
    import tomllib

    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = EXAMPLE.read_text(encoding="utf-8")
    from exporters.design import _KEYS

    for section, keys in _KEYS.items():
        assert section in raw, section
        for key in keys:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} is not documented"
    design = load_design(EXAMPLE)
    assert (design.strata, design.clusters, design.weights, design.fpc) == ("stype", "dnum", "pw", "fpc")
    assert [m.variable for m in design.calibrate] == ["stype", "sch.wide"]


@pytest.mark.parametrize("raw, message", [
    ({"design": {"stratum": "x"}}, "unknown key design.stratum"),
    ({"desing": {}}, "unknown section \\[desing\\]"),
    ({"calibrate": [{"variable": "a", "totals": {"x": 1}, "extra": 1}]}, "unknown key calibrate.extra"),
    ({"calibrate": [{"variable": "a"}]}, "give totals"),
    ({"design": {"weights": "w", "probabilities": "p"}}, "weights or probabilities, not both"),
    ({"trimming": {"upper": 1, "lower": 2}}, "lower must be below"),
    ({"calibration": {"method": "magic"}}, "calibration.method must be one of"),
    ({"nonresponse": {"classes": ["a"]}}, "needs 'responded'"),
    ({"calibration": {"method": "rake"}, "calibrate": [{"variable": "x", "total": 3}]}, "numeric 'total'"),
])
def test_design_errors_name_the_key(raw, message):
    with pytest.raises(DesignError, match=message):
        design_from_dict(raw)


def test_missing_column_is_named(tmp_path):
    design = tmp_path / "d.toml"
    design.write_text('[design]\nweights = "pw"\n[[calibrate]]\nvariable = "province"\ntotals = { A = 1 }\n')
    data = write_csv(pd.DataFrame({"pw": [1.0, 2.0]}), tmp_path / "d.csv")
    with pytest.raises(DesignError, match="column 'province' \\(named by calibrate.variable"):
        W.run_weight(data, design, tmp_path / "out.csv")


def test_run_weight_writes_weights_and_summary(tmp_path):
    df = synthetic_survey(2)
    data = write_csv(df, tmp_path / "survey.csv")
    design = tmp_path / "design.toml"
    design.write_text("""
[design]
strata = "stratum"
clusters = "psu"
weights = "w"

[nonresponse]
classes = ["stratum"]
responded = "responded"

[[calibrate]]
variable = "region"
totals = { north = 14500, centre = 9500, south = 12000 }

[[calibrate]]
variable = "sex"
totals = { F = 17600, M = 18400 }

[trimming]
upper = 3.5
relative_to = "median"

[output]
weight = "final_w"
""")
    out = tmp_path / "weighted.csv"
    summary = W.run_weight(data, design, out)
    written = pd.read_csv(out)
    assert list(written.columns) == [*df.columns, "final_w"]
    assert [s["method"] for s in summary["steps"]] == ["nonresponse", "rake", "trim"]
    rake_step = summary["steps"][1]
    assert rake_step["converged"] and rake_step["maxit"] == 10 and rake_step["epsilon"] == 1
    assert (written.loc[written["responded"] == 0, "final_w"] == 0).all()
    assert written["final_w"].sum() == pytest.approx(36000)
    assert set(summary["weights"]) == {"n", "min", "q1", "median", "q3", "max", "mean", "sum", "deff", "n_eff"}
