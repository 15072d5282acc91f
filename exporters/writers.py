"""Write an `ExportTable` as CSV, XLSX, SPSS (.sav), Stata (.dta) or Parquet.

Per format (see `exporters.table` for codes and missing values):

- **csv**: UTF-8 with a byte-order mark (Excel then shows Vietnamese correctly), XLSForm
  column names, text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
  ``@``, tab, CR first) prefixed with an apostrophe. Missing and skipped are both empty.
- **xlsx**: sheet ``data`` (neutralised the same way) and sheet ``codebook`` (variable,
  label, type, values, missing, question). At most 1,048,575 data rows (Excel's limit).
- **sav**: legal variable names (see `legal_names`), the original name kept at the start of
  the variable label when it had to change; value labels (text codes keep text value
  labels); skipped cells a user-missing code. Answers are kept as typed (no apostrophes).
- **dta**: the same names; Stata labels only integers, so text-coded select_one questions
  become the choice's 1-based position with the label, skipped is ``.a``; variable labels
  are cut to Stata's 80 characters. Text is kept as typed.
- **parquet**: the table as is (nullable integers, text), with `ExportTable.metadata()` as
  JSON under the schema metadata key ``khaosat`` and each column's label as field metadata.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from exporters.table import _FORMULA_PREFIXES, ExportTable, text

FORMATS = ("csv", "xlsx", "sav", "dta", "parquet")
XLSX_MAX_ROWS = 1_048_575
STATA_NAME_LENGTH = 32
STATA_LABEL_LENGTH = 80
STATA_SKIPPED = "a"
_STATA_RESERVED = {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n",
                   "_N", "_pi", "_pred", "_rc", "_skip", "strl", "str", "using", "with"}


class ExportError(ValueError):
    """A table that cannot be written in the asked format (the message says why)."""


def write(table: ExportTable, path: Path, file_format: str) -> None:
    if file_format not in FORMATS:
        raise ExportError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[file_format](table, path)


# -- spreadsheets ----------------------------------------------------------------------------


def neutralise_series(series: pd.Series) -> pd.Series:
    """Text cells starting like a formula get a leading apostrophe (vectorised)."""
    if series.dtype != object and not pd.api.types.is_string_dtype(series.dtype):
        return series
    try:
        risky = series.str.startswith(_FORMULA_PREFIXES, na=False).astype(bool)
    except AttributeError:  # no text at all in the column
        return series
    if not risky.any():
        return series
    out = series.copy()
    out[risky] = "'" + series[risky].astype(str)
    return out


def _neutralised(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: neutralise_series(df[c]) for c in df.columns}, index=df.index)


def write_csv(table: ExportTable, path: Path) -> None:
    """UTF-8 with BOM, quoted only where needed; pyarrow's writer (10× pandas' on big tables)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = _neutralised(table.df)
    try:
        arrow = pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects in a column: pandas copes
        data.to_csv(path, index=False, encoding="utf-8-sig")
        return
    with open(path, "wb") as handle:
        handle.write(b"\xef\xbb\xbf")
        pacsv.write_csv(arrow, handle, pacsv.WriteOptions(quoting_style="needed"))


_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write_xlsx(table: ExportTable, path: Path) -> None:
    if len(table.df) > XLSX_MAX_ROWS:
        raise ExportError(f"{len(table.df):,} rows do not fit in an Excel sheet (at most {XLSX_MAX_ROWS:,}): "
                          "use csv, parquet, sav or dta")
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append(list(table.df.columns))
    data = _neutralised(table.df).astype(object).where(table.df.notna(), None)
    for row in data.itertuples(index=False, name=None):
        sheet.append([_xlsx_cell(v) for v in row])
    codebook = workbook.create_sheet("codebook")
    fields = ["variable", "label", "type", "values", "missing", "question"]
    codebook.append(fields)
    for entry in table.codebook:
        codebook.append([_xlsx_cell(_neutral(entry.get(f, ""))) for f in fields])
    workbook.save(path)


def _neutral(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES) else value


def _xlsx_cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, str):
        return _ILLEGAL_XML.sub("", value)
    return value


# -- variable names for SPSS and Stata -------------------------------------------------------


def legal_names(columns: list[str], length: int = STATA_NAME_LENGTH) -> dict[str, str]:
    """XLSForm names → names SPSS and Stata both accept: ``q/choice`` → ``q_choice``.

    ASCII letters, digits and ``_``, starting with a letter or ``_``, at most ``length``
    characters (Stata's 32), not a Stata reserved word, unique (``_2``, ``_3`` … replace the
    end when two would collide, case-insensitively as SPSS compares them).
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        ascii_name = unicodedata.normalize("NFKD", column.replace("đ", "d").replace("Đ", "D"))
        ascii_name = ascii_name.encode("ascii", "ignore").decode()
        name = re.sub(r"[^A-Za-z0-9_]", "_", ascii_name) or "v"
        if not re.match(r"[A-Za-z_]", name):
            name = "v" + name
        if name.lower() in _STATA_RESERVED or name in _STATA_RESERVED:
            name += "_"
        name = name[:length]
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            suffix = f"_{n}"
            candidate = name[: length - len(suffix)] + suffix
        taken.add(candidate.lower())
        names[column] = candidate
    return names


def _label_with_name(table: ExportTable, column: str, legal: str) -> str:
    label = table.variable_labels.get(column, "")
    return label if legal == column else f"{column}: {label}" if label else column


# -- SPSS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatisticalFile:
    """What a .sav/.dta writer was given: the frame, its labels and missing-value declarations."""

    df: pd.DataFrame
    column_labels: dict[str, str]
    value_labels: dict[str, dict[Any, str]]
    missing: dict[str, list[Any]]
    names: dict[str, str]


def _skip_code(values: pd.Series, numeric: bool) -> Any:
    present = set(values.dropna().tolist())
    for code in (-99, -999, -9999, -99999, -999999):
        candidate = code if numeric else str(code)
        if candidate not in present and (numeric or float(code) not in present):
            return candidate
    raise ExportError("no free skipped code")


def sav_frame(table: ExportTable) -> StatisticalFile:
    names = legal_names(list(table.df.columns))
    data: dict[str, Any] = {}
    labels: dict[str, str] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[Any]] = {}
    skipped_label = text("skipped", table.language)
    for column, legal in names.items():
        series = table.df[column]
        numeric = _is_numeric(series)
        out = series.astype("float64") if numeric else series.astype(object).where(series.notna(), None)
        labels[legal] = _label_with_name(table, column, legal)
        if table.value_labels.get(column):
            value_labels[legal] = {(float(k) if numeric else str(k)): v for k, v in table.value_labels[column].items()}
        skip = table.skipped.get(column)
        if skip is not None and skip.any():
            code = _skip_code(series, numeric)
            out = out.copy()
            out[skip] = code
            missing[legal] = [float(code) if numeric else code]
            value_labels.setdefault(legal, {})[float(code) if numeric else code] = skipped_label
        data[legal] = out
    return StatisticalFile(pd.DataFrame(data, index=table.df.index), labels, value_labels, missing, names)


def write_sav(table: ExportTable, path: Path) -> None:
    import pyreadstat

    sav = sav_frame(table)
    pyreadstat.write_sav(sav.df, str(path), column_labels=sav.column_labels,
                         variable_value_labels=sav.value_labels or None, missing_ranges=sav.missing or None,
                         file_label=_file_label(table))


# -- Stata -----------------------------------------------------------------------------------


def stata_codes(table: ExportTable, column: str) -> dict[Any, int] | None:
    """For a text-coded labelled column: code → 1-based position (Stata needs integers)."""
    labels = table.value_labels.get(column)
    if not labels or all(isinstance(k, (int, np.integer)) for k in labels):
        return None
    return {code: position for position, code in enumerate(labels, 1)}


def dta_frame(table: ExportTable) -> StatisticalFile:
    names = legal_names(list(table.df.columns))
    data: dict[str, Any] = {}
    labels: dict[str, str] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[Any]] = {}
    skipped_label = text("skipped", table.language)
    for column, legal in names.items():
        series = table.df[column]
        labels[legal] = _label_with_name(table, column, legal)[:STATA_LABEL_LENGTH]
        codes = stata_codes(table, column)
        if codes is not None:
            out = series.map(codes, na_action="ignore").astype("float64")
            value_labels[legal] = {float(codes[k]): v for k, v in table.value_labels[column].items()}
            numeric = True
        elif _is_numeric(series):
            out = series.astype("float64")
            if table.value_labels.get(column):
                value_labels[legal] = {float(k): v for k, v in table.value_labels[column].items()}
            numeric = True
        else:
            out = series.astype(object).where(series.notna(), "")
            numeric = False
        skip = table.skipped.get(column)
        if numeric and skip is not None and skip.any():
            out = out.astype(object)
            out[skip] = STATA_SKIPPED
            missing[legal] = [STATA_SKIPPED]
            value_labels.setdefault(legal, {})[STATA_SKIPPED] = skipped_label
        data[legal] = out
    return StatisticalFile(pd.DataFrame(data, index=table.df.index), labels, value_labels, missing, names)


def write_dta(table: ExportTable, path: Path) -> None:
    import pyreadstat

    dta = dta_frame(table)
    pyreadstat.write_dta(dta.df, str(path), column_labels=dta.column_labels,
                         variable_value_labels=dta.value_labels or None,
                         missing_user_values=dta.missing or None, version=15,
                         file_label=_file_label(table)[:STATA_LABEL_LENGTH])


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _file_label(table: ExportTable) -> str:
    forms = ", ".join(f"{f} v{v}" for f, v in table.forms)
    flag = " PERSONAL DATA" if table.personal else ""
    return f"khaosat {table.layout} {forms}{flag}".strip()


# -- Parquet ---------------------------------------------------------------------------------


def write_parquet(table: ExportTable, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table.df, preserve_index=False)
    fields = [f.with_metadata({"label": table.variable_labels.get(f.name, "")}) for f in arrow.schema]
    metadata = dict(arrow.schema.metadata or {})
    metadata[b"khaosat"] = json.dumps(table.metadata(), ensure_ascii=False, default=str).encode("utf-8")
    arrow = arrow.cast(pa.schema(fields, metadata=metadata))
    pq.write_table(arrow, path)


def read_parquet_metadata(path: Path) -> dict[str, Any]:
    """The labels and codebook a parquet export carries (`ExportTable.metadata()`)."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[b"khaosat"])


WRITERS: dict[str, Callable[[ExportTable, Path], None]] = {
    "csv": write_csv, "xlsx": write_xlsx, "sav": write_sav, "dta": write_dta, "parquet": write_parquet,
}
