"""A survey design described in a TOML file: strata, clusters, weights, adjustments, margins, trimming.

The statistics (`exporters.weighting`, `exporters.estimation`) take a plain table plus a `Design`,
so they work on the bot's answers and on paper forms typed into Excel alike. Every key is
documented, with comments, in `exporters/design.example.toml`; unknown keys are errors that name
the key, and columns named by the design are checked against the data (`Design.check_columns`).

The shape follows R's survey package: ``[design]`` is ``svydesign(ids=~clusters, strata=~strata,
weights=~weights or probs=~probabilities, fpc=~fpc, nest=nest)``; ``[[calibrate]]`` tables are
population margins (one categorical table = ``postStratify``, several = ``rake``, ``method =
"linear"`` = ``calibrate(calfun="linear")``); ``[trimming]`` is ``trimWeights``.
"""

from __future__ import annotations

import math
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

EXAMPLE = Path(__file__).with_name("design.example.toml")

CALIBRATION_METHODS = ("auto", "poststratify", "rake", "linear", "logit")
TRIM_RELATIVE = ("value", "mean", "median")


class DesignError(ValueError):
    """A design file or a design/data mismatch that the user must fix; the message says where."""


@dataclass(frozen=True)
class Margin:
    """One population margin: a categorical column with a total per level, or a numeric column's total."""

    variable: str
    totals: Mapping[str, float] | None = None  # categorical: level -> population count
    total: float | None = None  # numeric column: population total (linear calibration only)

    @property
    def categorical(self) -> bool:
        return self.totals is not None


@dataclass(frozen=True)
class Trimming:
    upper: float = float("inf")
    lower: float = float("-inf")
    relative_to: str = "value"  # "value": bounds are weights; "mean"/"median": multiples of it
    strict: bool = False

    def bounds(self, weights) -> tuple[float, float]:
        import numpy as np

        w = np.asarray(weights, dtype=float)
        if self.relative_to == "value":
            scale = 1.0
        elif self.relative_to == "mean":
            scale = float(np.mean(w))
        else:
            scale = float(np.median(w))
        return self.lower * scale, self.upper * scale


#: R's survey.lonely.psu rules: stop; leave the stratum out (remove) or count it as taken with
#: certainty (both add nothing in one stage); centre its PSU at zero, the grand mean of the
#: influence values (adjust); or give it the average variance of the other strata (average).
LONELY_PSU = ("fail", "remove", "certainty", "adjust", "average")


@dataclass(frozen=True)
class Design:
    """A survey design; columns are names in the data table. See `exporters/design.example.toml`."""

    strata: str | None = None
    clusters: str | None = None
    weights: str | None = None
    probabilities: str | None = None
    fpc: str | None = None
    nest: bool = False
    # R's options(survey.lonely.psu): what a stratum with a single PSU contributes to the variance.
    lonely_psu: str = "fail"
    # Nonresponse adjustment within weighting classes.
    nonresponse_classes: tuple[str, ...] = ()
    responded: str | None = None
    eligible: str | None = None
    # Calibration to population margins.
    calibrate: tuple[Margin, ...] = ()
    calibration_method: str = "auto"
    population: float | None = None  # population size (intercept) for linear calibration
    maxit: int | None = None  # None: R's default of the method (rake 10, linear 50)
    epsilon: float | None = None  # None: R's default of the method (rake 1, linear 1e-7)
    bounds: tuple[float, float] | None = None  # linear calibration: bounds on g-weights
    trimming: Trimming | None = None
    weight_column: str = "weight"  # the column `khaosat weight` writes
    source: str = field(default="", compare=False)  # the file it came from, for messages

    def __post_init__(self):
        if self.weights and self.probabilities:
            raise DesignError(f"{self._where('design')}: give weights or probabilities, not both")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise DesignError(f"{self._where('calibration.method')}: {self.calibration_method!r} is not one of "
                              f"{', '.join(CALIBRATION_METHODS)}")
        if self.nonresponse_classes and not self.responded:
            raise DesignError(f"{self._where('nonresponse')}: 'classes' needs 'responded' (the column that says who answered)")
        method = self.method
        if method in ("poststratify", "rake"):
            for m in self.calibrate:
                if not m.categorical:
                    raise DesignError(f"{self._where('calibrate')}: {m.variable!r} has a numeric 'total'; "
                                      f"{method} needs 'totals' per level (or use method = \"linear\")")
        if method == "logit" and (self.bounds is None or not (self.bounds[0] < 1 < self.bounds[1])
                                  or not all(math.isfinite(b) for b in self.bounds)):
            raise DesignError(f"{self._where('calibration.bounds')}: logit calibration needs finite bounds "
                              f"[lower, upper] on the g-weights with lower < 1 < upper, e.g. [0.5, 2]")
        if method == "poststratify" and len(self.calibrate) != 1:
            raise DesignError(f"{self._where('calibration.method')}: poststratify takes exactly one [[calibrate]] table")

    def _where(self, key: str) -> str:
        return f"{self.source}: [{key}]" if self.source else f"[{key}]"

    @property
    def method(self) -> str | None:
        """The calibration actually applied: None, 'poststratify', 'rake', 'linear' or 'logit'."""
        if not self.calibrate:
            return None
        if self.calibration_method != "auto":
            return self.calibration_method
        if any(not m.categorical for m in self.calibrate):
            return "linear"
        return "poststratify" if len(self.calibrate) == 1 else "rake"

    def columns(self) -> list[tuple[str, str]]:
        """(key, column) for every column the design names."""
        named = [("design.strata", self.strata), ("design.clusters", self.clusters),
                 ("design.weights", self.weights), ("design.probabilities", self.probabilities),
                 ("design.fpc", self.fpc), ("nonresponse.responded", self.responded),
                 ("nonresponse.eligible", self.eligible)]
        named += [("nonresponse.classes", c) for c in self.nonresponse_classes]
        named += [("calibrate.variable", m.variable) for m in self.calibrate]
        return [(k, c) for k, c in named if c]

    def check_columns(self, df: pd.DataFrame) -> None:
        """Raise DesignError naming the first column the design names that the data lacks."""
        for key, column in self.columns():
            if column not in df.columns:
                raise DesignError(f"column {column!r} (named by {key} in {self.source or 'the design'}) "
                                  f"is not in the data; its columns are: {', '.join(map(str, df.columns))}")


# -- loading -------------------------------------------------------------------------------------

_KEYS = {
    "design": {"strata", "clusters", "weights", "probabilities", "fpc", "nest", "lonely_psu"},
    "nonresponse": {"classes", "responded", "eligible"},
    "calibration": {"method", "population", "maxit", "epsilon", "bounds"},
    "calibrate": {"variable", "totals", "total"},
    "trimming": {"upper", "lower", "relative_to", "strict"},
    "output": {"weight"},
}


def load_design(path: str | Path) -> Design:
    """Read and validate a design file (TOML). Unknown keys and wrong types are errors naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DesignError(f"design file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise DesignError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DesignError(f"{path}: not UTF-8 text (byte {exc.start}; perhaps Windows-1258 or TCVN3): "
                          "save it as UTF-8") from None
    return design_from_dict(raw, source=str(path))


def design_from_dict(raw: Mapping[str, Any], source: str = "") -> Design:
    where = f"{source}: " if source else ""

    def fail(msg: str):
        raise DesignError(where + msg)

    for top in raw:
        if top not in _KEYS:
            fail(f"unknown section [{top}] (known: {', '.join(sorted(_KEYS))})")

    def table(name: str) -> dict:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            fail(f"[{name}] must be a table")
        for key in value:
            if key not in _KEYS[name]:
                fail(f"unknown key {name}.{key} (known: {', '.join(sorted(_KEYS[name]))})")
        return value

    def string(section: dict, name: str, key: str) -> str | None:
        value = section.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            fail(f"{name}.{key} must be a column name (a non-empty string)")
        return value

    def number(section: dict, name: str, key: str, positive: bool = False) -> float | None:
        value = section.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{name}.{key} must be a number")
        if positive and not value > 0:
            fail(f"{name}.{key} must be positive")
        return float(value)

    d = table("design")
    if "nest" in d and not isinstance(d["nest"], bool):
        fail("design.nest must be true or false")
    if d.get("lonely_psu", "fail") not in LONELY_PSU:
        fail(f"design.lonely_psu must be one of {', '.join(LONELY_PSU)} (R's survey.lonely.psu), "
             f"not {d.get('lonely_psu')!r}")
    nr = table("nonresponse")
    classes = nr.get("classes", [])
    if isinstance(classes, str):
        classes = [classes]
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        fail("nonresponse.classes must be a column name or a list of column names")
    cal = table("calibration")
    method = cal.get("method", "auto")
    if method not in CALIBRATION_METHODS:
        fail(f"calibration.method must be one of {', '.join(CALIBRATION_METHODS)}, not {method!r}")
    maxit = cal.get("maxit")
    if maxit is not None and (isinstance(maxit, bool) or not isinstance(maxit, int) or maxit < 1):
        fail("calibration.maxit must be a positive integer")
    bounds = cal.get("bounds")
    if bounds is not None:
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
            fail("calibration.bounds must be [lower, upper] (numbers; g-weights)")
        bounds = (float(bounds[0]), float(bounds[1]))

    margins_raw = raw.get("calibrate", [])
    if isinstance(margins_raw, dict):
        margins_raw = [margins_raw]
    if not isinstance(margins_raw, list):
        fail("[[calibrate]] must be an array of tables")
    margins = []
    seen = set()
    for i, m in enumerate(margins_raw, 1):
        if not isinstance(m, dict):
            fail(f"[[calibrate]] #{i} must be a table")
        for key in m:
            if key not in _KEYS["calibrate"]:
                fail(f"unknown key calibrate.{key} in [[calibrate]] #{i} (known: variable, totals, total)")
        variable = m.get("variable")
        if not isinstance(variable, str) or not variable:
            fail(f"[[calibrate]] #{i} needs variable = \"column\"")
        if variable in seen:
            fail(f"[[calibrate]] #{i}: variable {variable!r} appears twice")
        seen.add(variable)
        if ("totals" in m) == ("total" in m):
            fail(f"[[calibrate]] #{i} ({variable}): give totals = {{level = count, ...}} "
                 f"(categorical) or total = number (numeric), exactly one")
        if "totals" in m:
            totals = m["totals"]
            if not isinstance(totals, dict) or not totals:
                fail(f"calibrate.totals for {variable!r} must be a non-empty table of level = count")
            for level, count in totals.items():
                if isinstance(count, bool) or not isinstance(count, (int, float)) or count < 0:
                    fail(f"calibrate.totals.{level} for {variable!r} must be a non-negative number")
            margins.append(Margin(variable, totals={str(k): float(v) for k, v in totals.items()}))
        else:
            total = m["total"]
            if isinstance(total, bool) or not isinstance(total, (int, float)):
                fail(f"calibrate.total for {variable!r} must be a number")
            margins.append(Margin(variable, total=float(total)))

    tr = table("trimming")
    trimming = None
    if tr:
        relative = tr.get("relative_to", "value")
        if relative not in TRIM_RELATIVE:
            fail(f"trimming.relative_to must be one of {', '.join(TRIM_RELATIVE)}, not {relative!r}")
        strict = tr.get("strict", False)
        if not isinstance(strict, bool):
            fail("trimming.strict must be true or false")
        upper = number(tr, "trimming", "upper")
        lower = number(tr, "trimming", "lower")
        if upper is None and lower is None:
            fail("[trimming] needs upper and/or lower")
        trimming = Trimming(upper=float("inf") if upper is None else upper,
                            lower=float("-inf") if lower is None else lower,
                            relative_to=relative, strict=strict)
        if trimming.lower >= trimming.upper:
            fail("trimming.lower must be below trimming.upper")
    out = table("output")

    return Design(
        strata=string(d, "design", "strata"), clusters=string(d, "design", "clusters"),
        weights=string(d, "design", "weights"), probabilities=string(d, "design", "probabilities"),
        fpc=string(d, "design", "fpc"), nest=d.get("nest", False), lonely_psu=d.get("lonely_psu", "fail"),
        nonresponse_classes=tuple(classes), responded=string(nr, "nonresponse", "responded"),
        eligible=string(nr, "nonresponse", "eligible"),
        calibrate=tuple(margins), calibration_method=method,
        population=number(cal, "calibration", "population", positive=True),
        maxit=maxit, epsilon=number(cal, "calibration", "epsilon", positive=True), bounds=bounds,
        trimming=trimming, weight_column=string(out, "output", "weight") or "weight", source=source,
    )


# -- reading data --------------------------------------------------------------------------------


def read_table(path: str | Path, text_columns: Mapping[str, type] | None = None) -> pd.DataFrame:
    """A data table from CSV, Excel (.xlsx/.xls), Parquet (needs pyarrow) or SPSS .sav (needs pyreadstat).

    ``text_columns`` (CSV only) are read as text, so an id "01" stays "01"."""
    path = Path(path)
    if not path.exists():
        raise DesignError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        raw = path.read_bytes()
        if not raw.strip():
            raise DesignError(f"{path}: the file is empty")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise DesignError(f"{path}: line {line}: not UTF-8 text (perhaps "
                              "Windows-1258 or TCVN3); in Excel save as 'CSV UTF-8'") from None
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=text_columns, encoding="utf-8-sig")
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".sav":
            return pd.read_spss(path)
    except ImportError as exc:
        raise DesignError(f"reading {path.name} needs an optional package: {exc}") from None
    except (ValueError, OSError, zipfile.BadZipFile, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DesignError(f"{path}: not a readable {suffix.lstrip('.').upper()} file ({exc})") from None
    except Exception as exc:  # pyreadstat raises its own ReadstatError for a file that is not SPSS
        if type(exc).__name__ != "ReadstatError":
            raise
        raise DesignError(f"{path}: not a readable SAV file ({exc})") from None
    raise DesignError(f"{path}: unknown data format {suffix!r} (use .csv, .xlsx, .parquet or .sav)")
