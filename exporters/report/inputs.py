"""Reading the report's inputs: the scores table of `khaosat score` and a weights column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from exporters.design import DesignError, read_table
from exporters.report.content import _nfc

# -- reading the inputs ---------------------------------------------------------------------------

SCORE_COLUMNS = ("unit", "level", "id", "value", "maximum")


def load_scores(path: str | Path) -> pd.DataFrame:
    """The table of `khaosat score` (CSV or XLSX); ids stay text ("01" is not 1)."""
    path = Path(path)
    if not path.exists():
        raise DesignError(f"scores file {path} does not exist")
    text = {"unit": str, "level": str, "id": str, "name": str}
    frame = read_table(path, text)
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise DesignError(f"{path.name} is not a scores table from khaosat score: it has no column(s) "
                          f"{', '.join(missing)}")
    for column in ("unit", "level", "id", "name"):
        if column in frame.columns:
            frame[column] = frame[column].map(lambda v: "" if pd.isna(v) else _nfc(v))
    if "name" not in frame.columns:
        frame["name"] = frame["id"]
    for column in ("value", "maximum", "se", "ci_low", "ci_high", "rank"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    if "se" not in frame.columns:
        frame["se"] = np.nan
    if "ci_low" not in frame.columns or "ci_high" not in frame.columns:
        half = 1.959964 * frame["se"]  # a 95 % interval from the standard error
        frame["ci_low"], frame["ci_high"] = frame["value"] - half, frame["value"] + half
    if "rank" not in frame.columns:
        frame["rank"] = np.nan
    if not (frame["level"] == "total").any():
        raise DesignError(f"{path.name} has no rows of level 'total' (is it the output of khaosat score?)")
    return frame


def load_weights(path: str | Path, column: str) -> tuple[np.ndarray, int]:
    """The positive weights of a table's column, and how many rows were left out (0 or empty)."""
    frame = read_table(path)
    if column not in frame.columns:
        raise DesignError(f"{Path(path).name} has no weight column {column!r} (give --weight-column); its columns "
                          f"are: {', '.join(map(str, frame.columns))}")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column].notna() & values.isna()
    if bad.any():
        raise DesignError(f"{Path(path).name}: column {column!r} has values that are not numbers, e.g. "
                          f"{frame[column][bad].iloc[0]!r}")
    w = values.to_numpy(dtype=float)
    if np.any(w < 0) or np.any(np.isinf(w)):
        raise DesignError(f"{Path(path).name}: column {column!r} has negative or infinite weights")
    keep = np.isfinite(w) & (w > 0)
    if not keep.any():
        raise DesignError(f"{Path(path).name}: column {column!r} has no positive weight")
    return w[keep], int((~keep).sum())
