"""Export benchmark: 1,000,000 rows × 40 questions to CSV and Parquet (median of 3).

The table is a synthetic `ExportTable` built directly (not read from a database): session
and paradata columns, then 40 questions — 24 select_one (16 on a 1–5 integer scale, 8 with
text codes), 4 select_multiple with 4 choices each (names column + 4 dummies), 6 integer
and 6 free text (Vietnamese, 1 in 50 starting with "=", "+", "-" or "@" so neutralising has
work to do), about 5 % skipped and 10 % not applicable. The writers are the real ones
(`exporters.writers.write`).

    python bench/export.py                 # 1,000,000 rows, csv and parquet, 3 runs each
    python bench/export.py --rows 100000 --formats csv parquet sav dta
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporters.table import ExportTable, codebook_rows  # noqa: E402
from exporters.writers import write  # noqa: E402

SCALE = {1: "Rất không hài lòng", 2: "Không hài lòng", 3: "Bình thường", 4: "Hài lòng", 5: "Rất hài lòng"}
TEXT_CHOICES = {"co": "Có", "khong": "Không", "khac": "Khác"}
MULTI = {"mot_cua": "Trực tiếp tại bộ phận một cửa", "truc_tuyen": "Dịch vụ công trực tuyến",
         "buu_chinh": "Dịch vụ bưu chính công ích", "zalo": "Zalo"}
COMMENTS = np.array(["Thủ tục nhanh, cán bộ nhiệt tình.", "Cần rút ngắn thời gian chờ đợi ở bộ phận một cửa.",
                     "Không có ý kiến.", "Trang dịch vụ công đôi khi bị lỗi khi nộp hồ sơ trực tuyến.",
                     "=HYPERLINK(\"http://x\")", "+84 912 345 678", "-", "@admin"], dtype=object)


def synthetic(rows: int, seed: int = 1) -> ExportTable:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    labels: dict[str, str] = {}
    value_labels: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, np.ndarray] = {}
    ids = np.arange(1, rows + 1)
    data["respondent"] = pd.array(np.char.add("R", np.char.zfill(ids.astype(str), 10)), dtype=object)
    data["session"] = pd.array(ids, dtype="Int64")
    data["form_id"] = pd.array(np.full(rows, "sipas_citizen"), dtype=object)
    data["form_version"] = pd.array(np.full(rows, "2026.1"), dtype=object)
    data["channel"] = pd.array(np.where(rng.random(rows) < 0.6, "telegram", "zalo"), dtype=object)
    data["status"] = pd.array(np.where(rng.random(rows) < 0.8, "completed", "paused"), dtype=object)
    data["language"] = pd.array(np.where(rng.random(rows) < 0.95, "vi", "en"), dtype=object)
    start = np.datetime64("2026-08-01T08:00:00") + rng.integers(0, 30 * 86400, rows).astype("timedelta64[s]")
    duration = rng.integers(120, 1800, rows)
    data["started_at"] = pd.array(np.char.add(np.datetime_as_string(start, unit="s").astype(str), "+07:00"),
                                  dtype=object)
    data["completed_at"] = pd.array(np.char.add(np.datetime_as_string(start + duration.astype("timedelta64[s]"),
                                                                      unit="s").astype(str), "+07:00"), dtype=object)
    data["duration_seconds"] = duration.astype("float64")
    data["disposition"] = data["status"]
    data["stratum"] = pd.array(np.char.add("citizen/xa-", rng.integers(1, 100, rows).astype(str)), dtype=object)
    data["weight"] = rng.uniform(5, 50, rows)
    data["number_of_reminders"] = pd.array(rng.integers(0, 3, rows), dtype="Int64")
    for name in list(data):
        kinds[name] = "meta"
        labels[name] = name

    def missing_masks() -> tuple[np.ndarray, np.ndarray]:
        u = rng.random(rows)
        return u < 0.05, (u >= 0.05) & (u < 0.15)  # skipped, not applicable

    for q in range(1, 41):
        name = f"q{q:02d}"
        labels[name] = f"Câu hỏi số {q}: quý vị hài lòng ở mức nào?"
        skip, na = missing_masks()
        empty = skip | na
        if q <= 16:
            values = pd.array(rng.integers(1, 6, rows), dtype="Int64")
            values[empty] = pd.NA
            data[name], value_labels[name], kinds[name] = values, SCALE, "select_one"
        elif q <= 24:
            values = np.array(list(TEXT_CHOICES), dtype=object)[rng.integers(0, 3, rows)]
            values[empty] = None
            data[name], value_labels[name], kinds[name] = values, TEXT_CHOICES, "select_one"
        elif q <= 28:
            picks = rng.random((rows, len(MULTI))) < 0.4
            picks[:, 0] |= ~picks.any(axis=1)
            names = np.array(list(MULTI), dtype=object)
            joined = np.full(rows, "", dtype=object)
            for i, choice in enumerate(names):
                joined = np.where(picks[:, i], np.where(joined == "", choice, joined + " " + choice), joined)
            joined[empty] = None
            data[name], kinds[name] = joined, "select_multiple"
            for i, (choice, label) in enumerate(MULTI.items()):
                dummy = pd.array(picks[:, i].astype("int64"), dtype="Int64")
                dummy[empty] = pd.NA
                column = f"{name}/{choice}"
                data[column], labels[column], kinds[column] = dummy, f"{labels[name]}: {label}", "choice"
                value_labels[column] = {0: "Không chọn", 1: "Có chọn"}
                skipped[column] = skip
        elif q <= 34:
            values = pd.array(rng.integers(1940, 2008, rows), dtype="Int64")
            values[empty] = pd.NA
            data[name], kinds[name] = values, "integer"
        else:
            weights = np.array([0.3, 0.25, 0.2, 0.17, 0.02, 0.02, 0.02, 0.02])
            values = COMMENTS[rng.choice(len(COMMENTS), rows, p=weights)].copy()
            values[empty] = None
            data[name], kinds[name] = values, "text"
        skipped[name] = skip
    df = pd.DataFrame({k: (pd.array(v, dtype=object) if isinstance(v, np.ndarray) and v.dtype == object else v)
                       for k, v in data.items()})
    table = ExportTable(df, labels, value_labels, kinds=kinds, skipped=skipped,
                        questions={c: c.split("/")[0] for c in df.columns if c.startswith("q")},
                        forms=(("sipas_citizen", "2026.1"),))
    table.codebook = codebook_rows(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"])
    args = parser.parse_args()
    started = time.perf_counter()
    table = synthetic(args.rows)
    print(f"built {len(table.df):,} rows × {len(table.df.columns)} columns "
          f"(40 questions) in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        for file_format in args.formats:
            times = []
            path = Path(folder) / f"bench.{file_format}"
            for _ in range(args.runs):
                t = time.perf_counter()
                write(table, path, file_format)
                times.append(time.perf_counter() - t)
            size = os.path.getsize(path) / 1e6
            print(f"{file_format:8s} median {statistics.median(times):6.2f} s  "
                  f"(runs: {', '.join(f'{x:.2f}' for x in times)})  {size:,.0f} MB")


if __name__ == "__main__":
    main()
