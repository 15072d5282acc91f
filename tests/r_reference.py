"""Run R's survey package on the same data as the Python code, for tests that compare with it.

Needs `Rscript` and the survey package (Debian: `apt-get install -y r-cran-survey`). Tests that
use `need_r` / the `api_data` fixture are skipped with `R_MISSING` when R is absent. R results
are printed with 17 significant digits (`%.17g`), so comparisons can be to a relative 1e-9.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

R_MISSING = "R and its survey package are not installed (apt-get install r-cran-survey)"

# Helpers available in every script: out(name, values) prints "name<TAB>value" per value;
# stat(prefix, s) prints coef and SE of a svystat/svyby as "prefix|coefname|est" and "|se".
PRELUDE = r"""
suppressMessages(library(survey))
out <- function(name, x) {
  x <- as.numeric(x)
  nm <- if (length(x) == 1) name else paste0(name, "|", seq_along(x))
  cat(sprintf("%s\t%.17g\n", nm, x), sep = "")
}
stat <- function(prefix, s) {
  est <- coef(s); se <- SE(s); nm <- names(est)
  cat(sprintf("%s|%s|est\t%.17g\n", prefix, nm, as.numeric(est)), sep = "")
  cat(sprintf("%s|%s|se\t%.17g\n", prefix, nm, as.numeric(se)), sep = "")
}
"""


@functools.cache
def have_r() -> bool:
    if shutil.which("Rscript") is None:
        return False
    try:
        done = subprocess.run(["Rscript", "-e", "suppressMessages(library(survey))"], capture_output=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


need_r = pytest.mark.skipif(not have_r(), reason=R_MISSING)


def run_r(script: str, timeout: float = 300) -> str:
    """Run an R script (the PRELUDE is prepended) and return its standard output."""
    if not have_r():
        pytest.skip(R_MISSING)
    done = subprocess.run(["Rscript", "--vanilla", "-"], input=PRELUDE + textwrap.dedent(script),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"R failed:\n{done.stderr}\n--- script ---\n{script}")
    return done.stdout


def r_values(script: str) -> dict[str, float]:
    """Run a script whose output is `out`/`stat` lines; return {name: value}."""
    values = {}
    for line in run_r(script).splitlines():
        if "\t" in line:
            name, value = line.split("\t", 1)
            values[name] = float(value)
    return values


EXPORT = r"""
data(api)
fmt <- function(d) { d[] <- lapply(d, function(c) if (is.double(c)) ifelse(is.na(c), NA, sprintf("%.17g", c)) else c); d }
for (nm in c("apistrat", "apiclus1", "apiclus2", "apipop"))
  write.csv(fmt(get(nm)), file.path("{folder}", paste0(nm, ".csv")), row.names = FALSE)
"""


@pytest.fixture(scope="session")
def api_data(tmp_path_factory) -> Path:
    """R's `data(api)` written as CSV (full precision) to a temporary folder: apistrat.csv, apiclus1.csv,
    apiclus2.csv, apipop.csv. Never committed: exported from the installed R package each session."""
    if not have_r():
        pytest.skip(R_MISSING)
    folder = tmp_path_factory.mktemp("api")
    run_r(EXPORT.replace("{folder}", folder.as_posix()))
    return folder


# -- synthetic surveys (generated here, seeded; nothing is copied from R packages) ----------------

STRATA = ("s1", "s2", "s3", "s4")
PSUS_SAMPLED = (6, 8, 5, 7)
PSUS_POPULATION = (40, 60, 30, 50)
UNITS_POPULATION = (3000, 5200, 2100, 4400)


def synthetic_survey(seed: int = 1) -> pd.DataFrame:
    """A stratified two-stage sample: 4 strata, 26 PSUs, ~500 people; numeric y (some missing),
    a select_one q (some missing), region/sex/agegrp for margins, x for linear calibration."""
    rng = np.random.default_rng(seed)
    rows = []
    psu = 0
    for h, (name, m, M, N) in enumerate(zip(STRATA, PSUS_SAMPLED, PSUS_POPULATION, UNITS_POPULATION)):
        for _ in range(m):
            psu += 1
            size = int(rng.integers(10, 31))
            within = rng.uniform(5, 15)
            for _ in range(size):
                rows.append({"stratum": name, "psu": psu, "fpc_psu": M, "fpc_unit": N, "fpc_all": sum(PSUS_POPULATION),
                             "w": (M / m) * within * rng.uniform(0.8, 1.25), "h": h})
    df = pd.DataFrame(rows)
    n = len(df)
    df["frac"] = df.groupby("stratum")["stratum"].transform("size") / df["fpc_unit"]
    df["psu_local"] = df.groupby("stratum")["psu"].rank(method="dense").astype(int)  # restarts per stratum
    psu_effect = rng.normal(0, 4, df["psu"].max() + 1)[df["psu"]]
    df["region"] = rng.choice(["north", "centre", "south"], n, p=[0.4, 0.25, 0.35])
    df["sex"] = rng.choice(["F", "M"], n)
    df["agegrp"] = rng.integers(1, 5, n)
    df["x"] = rng.gamma(4.0, 10.0, n)
    df["y"] = 50 + 3 * df["h"] + psu_effect + 0.2 * df["x"] + 2 * (df["sex"] == "M") + rng.normal(0, 8, n)
    df.loc[rng.random(n) < 0.03, "y"] = np.nan
    q = np.where(rng.random(n) < 0.5, "a", rng.choice(["b", "c", "d"], n))
    q = np.where((df["region"] == "south") & (rng.random(n) < 0.3), "d", q).astype(object)
    q[rng.random(n) < 0.05] = None
    df["q"] = q
    df["responded"] = (rng.random(n) < 0.8).astype(int)
    df["p"] = 1 / df["w"]
    return df.drop(columns="h")


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False, float_format="%.17g")
    return path


def read_csv_r(path: Path) -> str:
    """The R line that reads a CSV written by `write_csv` into `df`."""
    return f'df <- read.csv("{Path(path).as_posix()}", na.strings = c("", "NA"))\n'
