"""Estimates and standard errors equal R's survey package: the guide's published table (R's api
data, exported from the installed R package), and R itself run on synthetic data at rtol 1e-9."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

from exporters import estimation as E
from exporters.design import DesignError, design_from_dict, load_design
from r_reference import api_data, need_r, r_values, read_csv_r, synthetic_survey, write_csv  # noqa: F401

RTOL = 1e-9

STYPE = {"E": 4421, "H": 755, "M": 1018}
SCHWIDE = {"No": 1072, "Yes": 5122}


def _design(**sections):
    return design_from_dict(sections)


def _printed(x: float, decimals: int) -> float:
    """R's `format(round(x, decimals), digits = 5)`: at least 5 significant digits shown."""
    x = round(x, decimals)
    return round(x, max(0, 5 - (math.floor(math.log10(abs(x))) + 1)))


def printed(estimate: E.Estimate) -> tuple[float, float]:
    """What `print(svymean(...))` shows (R's printCoefmat with one coefficient column: the estimate
    rounded to 5 significant digits, at least 1 decimal; the SE, as a test statistic, to 4 decimals)."""
    digmin = 1 + math.floor(math.log10(abs(estimate.estimate)))
    return _printed(estimate.estimate, max(1, 5 - digmin)), _printed(estimate.se, 4)


# -- (1) the guide's table, to the printed digits ---------------------------------------------------


@pytest.fixture(scope="module")
def apistrat(api_data):
    return pd.read_csv(api_data / "apistrat.csv")


@pytest.fixture(scope="module")
def apiclus1(api_data):
    return pd.read_csv(api_data / "apiclus1.csv")


def test_guide_stratified_mean_and_total(apistrat):
    d = E.SurveyDesign.from_design(apistrat, _design(design={"strata": "stype", "weights": "pw", "fpc": "fpc"}))
    assert printed(E.mean(d, "api00")) == (662.29, 9.4089)
    assert printed(E.total(d, "enroll")) == (3687178, 114642)


def test_guide_cluster_mean(apiclus1):
    d = E.SurveyDesign.from_design(apiclus1, _design(design={"clusters": "dnum", "weights": "pw", "fpc": "fpc"}))
    assert printed(E.mean(d, "api00")) == (644.17, 23.542)


def test_guide_poststratified_mean(apiclus1):
    design = _design(design={"clusters": "dnum", "weights": "pw", "fpc": "fpc"},
                     calibrate=[{"variable": "stype", "totals": STYPE}])
    assert printed(E.mean(E.SurveyDesign.from_design(apiclus1, design), "api00")) == (642.31, 23.921)


def test_guide_raked_mean(apiclus1):
    design = _design(design={"clusters": "dnum", "weights": "pw", "fpc": "fpc"},
                     calibrate=[{"variable": "stype", "totals": STYPE}, {"variable": "sch.wide", "totals": SCHWIDE}])
    assert printed(E.mean(E.SurveyDesign.from_design(apiclus1, design), "api00")) == (641.23, 23.704)


def test_guide_table_through_the_command_functions(api_data, tmp_path):
    """The same numbers through `run_estimate` (what `khaosat estimate` calls), from a design file."""
    design = tmp_path / "design.toml"
    design.write_text('[design]\nclusters = "dnum"\nweights = "pw"\nfpc = "fpc"\n\n'
                      '[[calibrate]]\nvariable = "stype"\ntotals = { E = 4421, H = 755, M = 1018 }\n'
                      '[[calibrate]]\nvariable = "sch.wide"\ntotals = { No = 1072, Yes = 5122 }\n')
    out = tmp_path / "est.csv"
    E.run_estimate(api_data / "apiclus1.csv", design, means=["api00", "stype"], totals=["enroll"], by="stype",
                   out_path=out)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["statistic", "variable", "domain", "estimate", "se", "ci_low", "ci_high"]
    first = rows[0]
    assert (first["statistic"], first["variable"], first["domain"]) == ("mean", "api00", "")
    assert printed(E.Estimate("mean", "api00", "", float(first["estimate"]), float(first["se"]))) == (641.23, 23.704)
    assert float(first["ci_low"]) == pytest.approx(641.2302468622089 - 1.959963984540054 * 23.70364124023768)
    domains = [r["domain"] for r in rows if r["statistic"] == "mean"]
    assert domains == ["", "stype=E", "stype=H", "stype=M"]
    props = [r for r in rows if r["statistic"] == "proportion" and r["domain"] == ""]
    assert [r["variable"] for r in props] == ["stype=E", "stype=H", "stype=M"]
    assert sum(float(r["estimate"]) for r in props) == pytest.approx(1.0)


# -- (2) R itself on the api data and on synthetic data ---------------------------------------------


def _assert_match(python: dict[str, float], r: dict[str, float]):
    assert r, "R printed nothing"
    assert set(python) == set(r), f"only in Python: {set(python) - set(r)}; only in R: {set(r) - set(python)}"
    worst = 0.0
    for key, expected in r.items():
        got = python[key]
        assert got == pytest.approx(expected, rel=RTOL, abs=1e-12), f"{key}: Python {got!r} vs R {expected!r}"
        if expected:
            worst = max(worst, abs(got - expected) / abs(expected))
    return worst


def _put(out: dict, prefix: str, estimates):
    for e in estimates if isinstance(estimates, list) else [estimates]:
        name = e.variable.replace("=", "") if "=" in e.variable else e.variable
        out[f"{prefix}|{name}|est"] = e.estimate
        out[f"{prefix}|{name}|se"] = e.se


def _python_statistics(survey: E.SurveyDesign, df: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    _put(out, "mean", E.mean(survey, "y"))
    _put(out, "total", E.total(survey, "y"))
    _put(out, "prop", E.proportions(survey, "q"))
    _put(out, "count", E.counts(survey, "q"))
    for region in sorted(df["region"].unique()):
        m = E.mean(survey, "y", domain=("region", region))
        out[f"bymean|{region}|est"], out[f"bymean|{region}|se"] = m.estimate, m.se
        t = E.total(survey, "y", domain=("region", region))
        out[f"bytotal|{region}|est"], out[f"bytotal|{region}|se"] = t.estimate, t.se
        _put(out, f"qdom_{region}", E.proportions(survey, "q", domain=("region", region)))
    return out


R_STATISTICS = """
stat("mean", svymean(~y, d, na.rm = TRUE))
stat("total", svytotal(~y, d, na.rm = TRUE))
stat("prop", svymean(~q, d, na.rm = TRUE))
stat("count", svytotal(~q, d, na.rm = TRUE))
stat("bymean", svyby(~y, ~region, d, svymean, na.rm = TRUE))
stat("bytotal", svyby(~y, ~region, d, svytotal, na.rm = TRUE))
for (r in sort(unique(df$region))) stat(paste0("qdom_", r), svymean(~q, subset(d, region == r), na.rm = TRUE))
"""

SYNTHETIC_DESIGNS = {
    # name: (R svydesign call, khaosat [design] table)
    "stratified_fpc": ("svydesign(id = ~1, strata = ~stratum, weights = ~w, fpc = ~fpc_unit, data = df)",
                       {"strata": "stratum", "weights": "w", "fpc": "fpc_unit"}),
    "stratified_fraction": ("svydesign(id = ~1, strata = ~stratum, weights = ~w, fpc = ~frac, data = df)",
                            {"strata": "stratum", "weights": "w", "fpc": "frac"}),
    "cluster_one_stage": ("svydesign(id = ~psu, weights = ~w, fpc = ~fpc_all, data = df)",
                          {"clusters": "psu", "weights": "w", "fpc": "fpc_all"}),
    "stratified_clustered": ("svydesign(id = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, data = df)",
                             {"strata": "stratum", "clusters": "psu", "weights": "w", "fpc": "fpc_psu"}),
    "stratified_clustered_no_fpc": ("svydesign(id = ~psu, strata = ~stratum, probs = ~p, data = df)",
                                    {"strata": "stratum", "clusters": "psu", "probabilities": "p"}),
    "stratified_clustered_nested_ids": (
        "svydesign(id = ~psu_local, strata = ~stratum, nest = TRUE, weights = ~w, fpc = ~fpc_psu, data = df)",
        {"strata": "stratum", "clusters": "psu_local", "nest": True, "weights": "w", "fpc": "fpc_psu"}),
    "simple_unweighted": ("svydesign(id = ~1, data = df)", {}),
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    df = synthetic_survey(seed=7)
    path = write_csv(df, tmp_path_factory.mktemp("synthetic") / "survey.csv")
    return pd.read_csv(path), path


@need_r
@pytest.mark.parametrize("name", list(SYNTHETIC_DESIGNS))
def test_designs_match_r(name, synthetic):
    df, path = synthetic
    r_call, section = SYNTHETIC_DESIGNS[name]
    r = r_values(read_csv_r(path) + f"d <- suppressWarnings({r_call})\n" + R_STATISTICS)
    design = design_from_dict({"design": section} if section else {})
    py = _python_statistics(E.SurveyDesign.from_design(df, design), df)
    worst = _assert_match(py, r)
    print(f"{name}: max relative difference {worst:.2e}")


REGION = {"north": 14500, "centre": 9500, "south": 12000}
SEX = {"F": 17600, "M": 18400}
AGE = {"1": 9200, "2": 9000, "3": 9300, "4": 8500}
BASE_R = "d0 <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, data = df)\n"
BASE = {"strata": "stratum", "clusters": "psu", "weights": "w", "fpc": "fpc_psu"}


def _r_table(var, totals, numeric=False):
    levels = ", ".join(totals if numeric else (f'"{k}"' for k in totals))
    return f"data.frame({var} = c({levels}), Freq = c({', '.join(str(v) for v in totals.values())}))"


X_TOTAL = 36000 * 41.5

CALIBRATED = {
    "poststratify": (
        f"d <- postStratify(d0, ~region, {_r_table('region', REGION)})",
        {"calibrate": [{"variable": "region", "totals": REGION}]}),
    "rake_defaults": (
        f"d <- rake(d0, list(~region, ~sex, ~agegrp), list({_r_table('region', REGION)}, {_r_table('sex', SEX)}, "
        f"{_r_table('agegrp', AGE, numeric=True)}))",
        {"calibrate": [{"variable": "region", "totals": REGION}, {"variable": "sex", "totals": SEX},
                       {"variable": "agegrp", "totals": AGE}]}),
    "rake_tight": (
        f"d <- rake(d0, list(~region, ~sex, ~agegrp), list({_r_table('region', REGION)}, {_r_table('sex', SEX)}, "
        f"{_r_table('agegrp', AGE, numeric=True)}), control = list(maxit = 100, epsilon = 1e-9))",
        {"calibrate": [{"variable": "region", "totals": REGION}, {"variable": "sex", "totals": SEX},
                       {"variable": "agegrp", "totals": AGE}], "calibration": {"maxit": 100, "epsilon": 1e-9}}),
    "linear": (
        f"d <- calibrate(d0, ~factor(agegrp) + x, c({sum(AGE.values())}, {AGE['2']}, {AGE['3']}, {AGE['4']}, "
        f"{X_TOTAL!r}))",
        {"calibrate": [{"variable": "agegrp", "totals": AGE}, {"variable": "x", "total": X_TOTAL}]}),
    "linear_bounded": (
        f"d <- calibrate(d0, ~factor(agegrp) + x, c({sum(AGE.values())}, {AGE['2']}, {AGE['3']}, {AGE['4']}, "
        f"{X_TOTAL!r}), bounds = c(0.85, 1.15))",
        {"calibrate": [{"variable": "agegrp", "totals": AGE}, {"variable": "x", "total": X_TOTAL}],
         "calibration": {"bounds": [0.85, 1.15]}}),
    "poststratify_then_trim": (
        f"d <- trimWeights(postStratify(d0, ~region, {_r_table('region', REGION)}), upper = 100, lower = 35)",
        {"calibrate": [{"variable": "region", "totals": REGION}], "trimming": {"upper": 100, "lower": 35}}),
    "rake_then_trim_strict": (
        f"d <- trimWeights(rake(d0, list(~region, ~sex), list({_r_table('region', REGION)}, {_r_table('sex', SEX)})),"
        f" upper = 95, strict = TRUE)",
        {"calibrate": [{"variable": "region", "totals": REGION}, {"variable": "sex", "totals": SEX}],
         "trimming": {"upper": 95, "strict": True}}),
}


@need_r
@pytest.mark.parametrize("name", list(CALIBRATED))
def test_calibrated_designs_match_r(name, synthetic):
    """Weights and every statistic's estimate and SE after calibration (and trimming), vs R."""
    df, path = synthetic
    r_line, sections = CALIBRATED[name]
    r = r_values(read_csv_r(path) + BASE_R + r_line + "\nout('w', weights(d))\n" + R_STATISTICS)
    design = design_from_dict({"design": BASE, **sections})
    survey = E.SurveyDesign.from_design(df, design)
    py = _python_statistics(survey, df)
    py.update({f"w|{i + 1}": w for i, w in enumerate(survey.weights)})
    worst = _assert_match(py, r)
    print(f"{name}: max relative difference {worst:.2e}")


@need_r
def test_api_designs_match_r(api_data):
    """The guide's designs (and their domains and a select_one-like factor) vs R, at rtol 1e-9."""
    stypes = ", ".join(f'"{k}"' for k in STYPE)
    r = r_values(f"""
        strat <- read.csv("{(api_data / 'apistrat.csv').as_posix()}")
        clus1 <- read.csv("{(api_data / 'apiclus1.csv').as_posix()}")
        ds <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = strat, fpc = ~fpc)
        dc <- svydesign(id = ~dnum, weights = ~pw, data = clus1, fpc = ~fpc)
        pop <- data.frame(stype = c({stypes}), Freq = c({', '.join(map(str, STYPE.values()))}))
        dps <- postStratify(dc, ~stype, pop)
        drk <- rake(dc, list(~stype, ~sch.wide), list(pop, data.frame(sch.wide = c("No", "Yes"), Freq = c(1072, 5122))))
        for (nm in c("ds", "dc", "dps", "drk")) {{
          d <- get(nm)
          stat(paste0(nm, "|mean"), svymean(~api00, d))
          stat(paste0(nm, "|total"), svytotal(~enroll, d))
          stat(paste0(nm, "|awards"), svymean(~awards, d))
          stat(paste0(nm, "|by"), svyby(~api00, ~awards, d, svymean))
        }}
    """)
    strat = pd.read_csv(api_data / "apistrat.csv")
    clus1 = pd.read_csv(api_data / "apiclus1.csv")
    cl = {"clusters": "dnum", "weights": "pw", "fpc": "fpc"}
    designs = {
        "ds": E.SurveyDesign.from_design(strat, _design(design={"strata": "stype", "weights": "pw", "fpc": "fpc"})),
        "dc": E.SurveyDesign.from_design(clus1, _design(design=cl)),
        "dps": E.SurveyDesign.from_design(clus1, _design(design=cl, calibrate=[{"variable": "stype", "totals": STYPE}])),
        "drk": E.SurveyDesign.from_design(clus1, _design(design=cl, calibrate=[
            {"variable": "stype", "totals": STYPE}, {"variable": "sch.wide", "totals": SCHWIDE}])),
    }
    py: dict[str, float] = {}
    for nm, d in designs.items():
        _put(py, f"{nm}|mean", E.mean(d, "api00"))
        _put(py, f"{nm}|total", E.total(d, "enroll"))
        _put(py, f"{nm}|awards", E.proportions(d, "awards"))
        for e in E.by(d, E.mean, "api00", "awards"):
            level = e.domain.split("=", 1)[1]
            py[f"{nm}|by|{level}|est"], py[f"{nm}|by|{level}|se"] = e.estimate, e.se
    _assert_match(py, r)


# -- confidence intervals, errors ---------------------------------------------------------------------


def test_ci_is_normal_like_confint():
    e = E.Estimate("mean", "y", "", 10.0, 2.0)
    lo, hi = e.ci()
    assert lo == pytest.approx(10 - 1.959963984540054 * 2, rel=1e-15)
    assert hi == pytest.approx(10 + 1.959963984540054 * 2, rel=1e-15)
    assert e.ci(0.9)[1] == pytest.approx(10 + 1.6448536269514722 * 2, rel=1e-15)


def test_lonely_psu_fails_like_r():
    df = pd.DataFrame({"s": ["a", "a", "b"], "y": [1.0, 2.0, 3.0], "w": [1.0, 1.0, 1.0]})
    survey = E.SurveyDesign(df, _design(design={"strata": "s", "weights": "w"}))
    with pytest.raises(E.LonelyPSUError, match="stratum 'b' has only one PSU"):
        E.mean(survey, "y")
    # a certainty stratum (fpc = population size = 1) is not an error: it has no variance
    df["N"] = [10, 10, 1]
    survey = E.SurveyDesign(df, _design(design={"strata": "s", "weights": "w", "fpc": "N"}))
    assert E.mean(survey, "y").se > 0


def test_missing_column_is_named(tmp_path):
    df = pd.DataFrame({"y": [1.0, 2.0], "w": [1.0, 2.0]})
    with pytest.raises(DesignError, match="'stratum'.*design.strata"):
        E.SurveyDesign(df, _design(design={"strata": "stratum", "weights": "w"}))
    data = write_csv(df, tmp_path / "d.csv")
    (tmp_path / "d.toml").write_text('[design]\nweights = "w"\n')
    with pytest.raises(DesignError, match="column 'income' is not in the data"):
        E.run_estimate(data, tmp_path / "d.toml", means=["income"], out_path=tmp_path / "o.csv")


def test_non_numeric_mean_says_which_column():
    df = pd.DataFrame({"y": ["1", "2", "three"], "w": [1.0, 1.0, 1.0]})
    survey = E.SurveyDesign(df, _design(design={"weights": "w"}))
    with pytest.raises(DesignError, match="column 'y' is not numeric.*'three'"):
        E.mean(survey, "y")


def test_domain_keeps_every_psu():
    """A domain estimate equals the zero-padded full-design computation, not a subset design's."""
    df = pd.DataFrame({"s": ["a"] * 4 + ["b"] * 4, "y": [1.0, 2, 3, 4, 5, 6, 7, 8],
                       "d": [1, 0, 0, 0, 1, 1, 0, 1], "w": [2.0] * 8})
    survey = E.SurveyDesign(df, _design(design={"strata": "s", "weights": "w"}))
    e = E.mean(survey, "y", domain=("d", 1))
    inside = df["d"] == 1
    ybar = df.loc[inside, "y"].mean()
    z = np.where(inside, 2.0 * (df["y"] - ybar) / (2.0 * inside.sum()), 0.0)
    v = 0.0
    for h in ("a", "b"):
        zh = z[df["s"] == h]
        v += len(zh) / (len(zh) - 1) * ((zh - zh.mean()) ** 2).sum()
    assert e.estimate == pytest.approx(ybar)
    assert e.se == pytest.approx(math.sqrt(v), rel=1e-12)


def test_example_design_file_loads():
    design = load_design(E.__file__.replace("estimation.py", "design.example.toml"))
    assert design.strata == "stype" and design.method == "rake" and design.trimming.relative_to == "mean"


def test_clusters_must_nest_in_strata_unless_nest_is_set():
    df = pd.DataFrame({"s": ["a", "a", "b", "b"], "c": [1, 2, 1, 2], "y": [1.0, 2, 3, 4]})
    with pytest.raises(DesignError, match="clusters are not nested in strata.*nest = true"):
        E.SurveyDesign(df, _design(design={"strata": "s", "clusters": "c"}))
    survey = E.SurveyDesign(df, _design(design={"strata": "s", "clusters": "c", "nest": True}))
    assert len(survey.psu_stratum) == 4


def test_fpc_errors_are_clear():
    df = pd.DataFrame({"s": ["a", "a", "b", "b"], "y": [1.0, 2, 3, 4], "N": [1, 10, 10, 10]})
    with pytest.raises(DesignError, match="more than 100% sampling"):
        E.SurveyDesign(df, _design(design={"strata": "s", "fpc": "N"}))
    with pytest.raises(DesignError, match="mixes population sizes"):
        E.SurveyDesign(df.assign(N=[0.5, 0.5, 10, 10]), _design(design={"strata": "s", "fpc": "N"}))
    with pytest.raises(DesignError, match="varies within stratum 'b'"):
        E.SurveyDesign(df.assign(N=[10, 10, 10, 20]), _design(design={"strata": "s", "fpc": "N"}))


R_BY_CROSSED = """
stat("bymean", svyby(~y, ~region + sex, d, svymean, na.rm = TRUE))
stat("bytotal", svyby(~y, ~region + sex, d, svytotal, na.rm = TRUE))
for (s in sort(unique(df$sex))) for (r in sort(unique(df$region))) {
  domain <- subset(d, region == r & sex == s)
  stat(paste0("byprop|", r, ".", s, ":"), svymean(~q, domain, na.rm = TRUE))
  stat(paste0("bycount|", r, ".", s, ":"), svytotal(~q, domain, na.rm = TRUE))
}
stat("byone", svyby(~y, ~agegrp, d, svymean, na.rm = TRUE))
"""


def _r_domain(label: str) -> str:
    """'region=north, sex=F' → R's svyby name 'north.F'."""
    return ".".join(part.split("=", 1)[1] for part in label.split(", "))


@need_r
@pytest.mark.parametrize("name", ["stratified_clustered", "poststratify", "rake_defaults", "linear"])
def test_cross_classified_domains_match_r(name, synthetic):
    """`by` with two columns (all domains at once, from group sums) vs svyby(~y, ~region + sex)."""
    df, path = synthetic
    if name in CALIBRATED:
        r_line, sections = CALIBRATED[name]
        r_design, section = BASE_R + r_line + "\n", {"design": BASE, **sections}
    else:
        r_call, plain = SYNTHETIC_DESIGNS[name]
        r_design, section = f"d <- suppressWarnings({r_call})\n", {"design": plain}
    r = r_values(read_csv_r(path) + "df$q <- factor(df$q)\n" + r_design + R_BY_CROSSED)
    survey = E.SurveyDesign.from_design(df, design_from_dict(section))
    py: dict[str, float] = {}
    for prefix, estimator in (("bymean", E.mean), ("bytotal", E.total), ("byprop", E.proportions),
                              ("bycount", E.counts)):
        for e in E.by(survey, estimator, "y" if estimator in (E.mean, E.total) else "q", ["region", "sex"]):
            key = _r_domain(e.domain) + ("" if "=" not in e.variable else ":|" + e.variable.replace("=", ""))
            py[f"{prefix}|{key}|est"], py[f"{prefix}|{key}|se"] = e.estimate, e.se
    for e in E.by(survey, E.mean, "y", "agegrp"):
        py[f"byone|{_r_domain(e.domain)}|est"], py[f"byone|{_r_domain(e.domain)}|se"] = e.estimate, e.se
    worst = _assert_match(py, r)
    print(f"{name}: max relative difference {worst:.2e}")


def test_a_second_by_column_crosses_the_first(synthetic):
    """Two --by columns give cross-classified domains (never the second alone), in svyby's order."""
    df, _ = synthetic
    survey = E.SurveyDesign(df, design_from_dict({}))
    crossed = E.by(survey, E.mean, "y", ["region", "sex"])
    assert [e.domain for e in crossed][:4] == ["region=centre, sex=F", "region=north, sex=F",
                                               "region=south, sex=F", "region=centre, sex=M"]
    assert len(crossed) == 6
    alone = {e.domain: e for e in E.by(survey, E.mean, "y", "region")}
    north_f = next(e for e in crossed if e.domain == "region=north, sex=F")
    subset = df[(df.region == "north") & (df.sex == "F")]
    expected = np.average(subset["y"].dropna(), weights=np.ones(subset["y"].notna().sum()))
    assert north_f.estimate == pytest.approx(expected, rel=1e-12)
    assert alone["region=north"].estimate != pytest.approx(north_f.estimate)


R_INTERVALS = """
d <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, data = df)
out("degf", degf(d))
m <- svymean(~y, d, na.rm = TRUE)
out("t90", confint(m, level = 0.9, df = degf(d)))
out("normal90", confint(m, level = 0.9))
for (method in c("logit", "xlogit", "asin", "beta", "mean")) {
  ci <- svyciprop(~I(q == "a"), d, method = method, level = 0.9, na.rm = TRUE)
  out(paste0("prop_", method), c(coef(ci), attr(ci, "ci")))
}
"""


@need_r
def test_intervals_match_r(synthetic):
    """t intervals with degf(design) and svyciprop's logit, xlogit, asin, beta and mean, at 90 %."""
    from exporters.intervals import degf, interval

    df, path = synthetic
    r = r_values(read_csv_r(path) + R_INTERVALS)
    data = df.assign(is_a=np.where(df["q"].isna(), np.nan, (df["q"] == "a").astype(float)))
    survey = E.SurveyDesign.from_design(data, design_from_dict({"design": BASE}))
    df_design = degf(survey)
    assert df_design == r["degf"]
    m = E.mean(survey, "y")
    py = {"degf": float(df_design)}
    py["t90|1"], py["t90|2"] = interval("mean", m.estimate, m.se, 0.9, "t", df_design, len(df))
    py["normal90|1"], py["normal90|2"] = interval("mean", m.estimate, m.se, 0.9, "normal", df_design, len(df))
    p = E.mean(survey, "is_a")
    for method in ("logit", "xlogit", "asin", "beta", "mean"):
        low, high = interval("proportion", p.estimate, p.se, 0.9, method, df_design, len(df))
        py[f"prop_{method}|1"], py[f"prop_{method}|2"], py[f"prop_{method}|3"] = p.estimate, low, high
    worst = _assert_match(py, r)
    print(f"intervals: max relative difference {worst:.2e}")


def test_estimate_writes_the_interval_asked_for(synthetic, tmp_path):
    df, path = synthetic
    design = tmp_path / "d.toml"
    design.write_text('[design]\nstrata = "stratum"\nclusters = "psu"\nweights = "w"\n', encoding="utf-8")
    out = tmp_path / "e.csv"
    E.run_estimate(path, design, means=["q"], out_path=out, level=0.9, interval="logit")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    for row in rows:
        assert 0 < float(row["ci_low"]) < float(row["estimate"]) < float(row["ci_high"]) < 1
    with pytest.raises(DesignError, match="interval must be one of"):
        E.run_estimate(path, design, means=["q"], out_path=out, interval="wald")


@need_r
@pytest.mark.parametrize("rule", ["remove", "certainty", "adjust", "average"])
def test_lonely_psu_rules_match_r(rule, synthetic, tmp_path):
    """options(survey.lonely.psu = rule) with a stratum of one PSU: whole-sample and domain statistics."""
    df, _ = synthetic
    df = df.copy()
    first = df["psu"].min()
    df.loc[df["psu"] == first, "stratum"] = "lonely"
    path = write_csv(df, tmp_path / "lonely.csv")
    df = pd.read_csv(path)
    r = r_values(read_csv_r(path) + f'options(survey.lonely.psu = "{rule}")\n'
                 + "d <- svydesign(id = ~psu, strata = ~stratum, weights = ~w, data = df)\n" + R_STATISTICS)
    design = design_from_dict({"design": {"strata": "stratum", "clusters": "psu", "weights": "w", "lonely_psu": rule}})
    survey = E.SurveyDesign.from_design(df, design)
    py = _python_statistics(survey, df)
    for e in E.by(survey, E.mean, "y", "region"):  # the domain path (exporters/domains.py) too
        assert e.se == pytest.approx(py[f"bymean|{e.domain.split('=')[1]}|se"], rel=1e-9)
    worst = _assert_match(py, r)
    print(f"{rule}: max relative difference {worst:.2e}")
    with pytest.raises(E.LonelyPSUError):
        E.mean(E.SurveyDesign.from_design(df, design_from_dict(
            {"design": {"strata": "stratum", "clusters": "psu", "weights": "w"}})), "y")


@need_r
@pytest.mark.parametrize("name", ["stratified_clustered", "poststratify"])
def test_ratios_match_r(name, synthetic):
    """svyratio(~y, ~x) overall and svyby(..., svyratio) by region, plain and post-stratified."""
    df, path = synthetic
    if name in CALIBRATED:
        r_line, sections = CALIBRATED[name]
        r_design, section = BASE_R + r_line + "\n", {"design": BASE, **sections}
    else:
        r_call, plain = SYNTHETIC_DESIGNS[name]
        r_design, section = f"d <- suppressWarnings({r_call})\n", {"design": plain}
    r = r_values(read_csv_r(path) + r_design + """
r <- svyratio(~y, ~x, d, na.rm = TRUE)
out("ratio", c(coef(r), SE(r)))
b <- svyby(~y, ~region, denominator = ~x, d, svyratio, na.rm = TRUE)
out("byratio", c(coef(b), SE(b)))
""")
    survey = E.SurveyDesign.from_design(df, design_from_dict(section))
    whole = E.ratio(survey, "y/x")
    domains = E.by(survey, E.ratio, "y/x", "region")
    assert [e.domain for e in domains] == ["region=centre", "region=north", "region=south"]
    py = {"ratio|1": whole.estimate, "ratio|2": whole.se}
    for i, value in enumerate([e.estimate for e in domains] + [e.se for e in domains], 1):
        py[f"byratio|{i}"] = value
    worst = _assert_match(py, r)
    print(f"{name}: max relative difference {worst:.2e}")
    with pytest.raises(DesignError, match="numerator/denominator"):
        E.ratio(survey, "y")


@need_r
def test_logit_calibration_matches_r(synthetic):
    """calibrate(calfun = "logit", bounds = c(0.7, 1.6)): weights, and estimates with their SEs."""
    df, path = synthetic
    r_line = (f"d <- calibrate(d0, ~factor(agegrp) + x, c({sum(AGE.values())}, {AGE['2']}, {AGE['3']}, "
              f"{AGE['4']}, {X_TOTAL!r}), calfun = 'logit', bounds = c(0.7, 1.6))")
    r = r_values(read_csv_r(path) + BASE_R + r_line + "\nout('w', weights(d))\n" + R_STATISTICS)
    design = design_from_dict({"design": BASE,
                               "calibrate": [{"variable": "agegrp", "totals": AGE}, {"variable": "x", "total": X_TOTAL}],
                               "calibration": {"method": "logit", "bounds": [0.7, 1.6]}})
    survey = E.SurveyDesign.from_design(df, design)
    g = survey.weights / E.SurveyDesign(df, design).weights
    assert g.min() >= 0.7 - 1e-9 and g.max() <= 1.6 + 1e-9
    py = _python_statistics(survey, df)
    py.update({f"w|{i + 1}": w for i, w in enumerate(survey.weights)})
    worst = _assert_match(py, r)
    print(f"logit: max relative difference {worst:.2e}")
    with pytest.raises(DesignError, match="finite bounds"):
        design_from_dict({"design": BASE, "calibrate": [{"variable": "x", "total": X_TOTAL}],
                          "calibration": {"method": "logit"}}).method and E.SurveyDesign.from_design(df, design_from_dict(
                              {"design": BASE, "calibrate": [{"variable": "x", "total": X_TOTAL}],
                               "calibration": {"method": "logit"}}))
