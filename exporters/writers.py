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

A form with repeats has one more table per repeat (`ExportTable.repeats`, see
`exporters.repeat_tables`): XLSX gives each a sheet named after the repeat (its codebook rows join
the codebook sheet); every other format writes each beside the main file, named
``<file>-<repeat>.<ext>`` (`repeat_path`), written the same way.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from exporters.table import _FORMULA_PREFIXES, ExportTable, text
from storage.atomic_files import atomic_open, atomic_path, make_folder, save_workbook

FORMATS = ("csv", "xlsx", "sav", "dta", "parquet")
XLSX_MAX_ROWS = 1_048_575
STATA_NAME_LENGTH = 32
STATA_LABEL_LENGTH = 80
STATA_SKIPPED = "a"
_STATA_RESERVED = {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n",
                   "_N", "_pi", "_pred", "_rc", "_skip", "strl", "str", "using", "with"}


class ExportError(ValueError):
    """A table that cannot be written in the asked format (the message says why)."""


#: Stata file formats `--stata-version` offers: 118 (Stata 14 and later, Unicode) by default; 119 only
#: adds room for more than 32,767 variables; 117 is Stata 13; 115 (Stata 12) is what R's
#: foreign::read.dta and other older readers open. Before 118 Stata has no Unicode: text is kept as
#: UTF-8 bytes, which Stata 12/13 show garbled and readers told the encoding read right.
STATA_VERSIONS = {115: 12, 117: 13, 118: 14, 119: 15}
#: Session timestamps (ISO 8601 text with an offset in the table) written as date-times.
TIMESTAMP_COLUMNS = ("started_at", "completed_at", "updated_at", "disposition_at")
ZONE = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class WriteOptions:
    """How to write: the CSV delimiter (";" for Excel in a Vietnamese locale), the Stata format
    version, choice labels instead of codes and question labels as column headers (CSV and XLSX,
    as KoBoToolbox offers)."""

    delimiter: str = ","
    stata_version: int = 118
    labels: bool = False
    label_headers: bool = False


def write(table: ExportTable, path: Path, file_format: str, options: WriteOptions | None = None) -> None:
    options = options or WriteOptions()
    if file_format not in FORMATS:
        raise ExportError(f"unknown format {file_format!r}: use one of {', '.join(FORMATS)}")
    if options.stata_version not in STATA_VERSIONS:
        raise ExportError(f"Stata version {options.stata_version} is not one of "
                          f"{', '.join(map(str, STATA_VERSIONS))}")
    if len(options.delimiter) != 1 or options.delimiter in ('"', "\n", "\r"):
        raise ExportError(f"the CSV delimiter must be one character other than a quote or a line break, "
                          f"not {options.delimiter!r}")
    if (options.labels or options.label_headers) and file_format not in ("csv", "xlsx"):
        raise ExportError("labels instead of codes and label headers are for csv and xlsx; SPSS and Stata "
                          "files carry the labels themselves")
    path = make_folder(Path(path).parent) / Path(path).name
    repeats = table.repeats
    table = _prepared(table, options)
    with atomic_path(path) as partial:  # a failed export leaves no half file, and keeps an earlier one
        if file_format == "csv":
            write_csv(table, partial, options.delimiter)
        elif file_format == "dta":
            write_dta(table, partial, options.stata_version)
        else:
            WRITERS[file_format](table, partial)
    if file_format != "xlsx":  # XLSX holds the repeat tables as sheets of its own
        for name, repeat in repeats.items():
            write(repeat, repeat_path(path, name), file_format, options)


def repeat_path(path: Path, repeat: str) -> Path:
    """Where a repeat's table is written beside the main file: ``answers.csv`` → ``answers-member.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{repeat}{path.suffix}")


def _prepared(table: ExportTable, options: WriteOptions) -> ExportTable:
    """Labels for codes and label headers, as asked, on the table and its repeat tables."""
    prepared = table
    if options.labels:
        prepared = labelled(prepared)
    if options.label_headers:
        prepared = label_headers(prepared)
    if prepared is not table and table.repeats:
        prepared = _replace(prepared, prepared.df,
                            repeats={name: _prepared(repeat, options) for name, repeat in table.repeats.items()})
    return prepared


def labelled(table: ExportTable) -> ExportTable:
    """Codes replaced by their labels (select_one and the 0/1 choice columns); skipped cells stay empty."""
    df = table.df.copy()
    for column, labels in table.value_labels.items():
        if column in df.columns and table.kinds.get(column) in ("select_one", "choice"):
            df[column] = pd.array(df[column].map(labels, na_action="ignore").astype(object)
                                  .where(df[column].notna(), None), dtype=object)
    return _replace(table, df, value_labels={k: v for k, v in table.value_labels.items()
                                             if table.kinds.get(k) not in ("select_one", "choice")})


def label_headers(table: ExportTable) -> ExportTable:
    """Question labels as column headers (made unique with the XLSForm name where two agree)."""
    seen: dict[str, int] = {}
    for column in table.df.columns:
        label = table.variable_labels.get(column) or column
        seen[label] = seen.get(label, 0) + 1
    headers = {c: (table.variable_labels.get(c) or c) if seen[table.variable_labels.get(c) or c] == 1
               else f"{table.variable_labels.get(c) or c} [{c}]" for c in table.df.columns}
    df = table.df.rename(columns=headers)
    return _replace(table, df, variable_labels={headers[c]: v for c, v in table.variable_labels.items() if c in headers},
                    value_labels={headers[c]: v for c, v in table.value_labels.items() if c in headers},
                    kinds={headers[c]: v for c, v in table.kinds.items() if c in headers},
                    skipped={headers[c]: v for c, v in table.skipped.items() if c in headers})


def _replace(table: ExportTable, df: pd.DataFrame, **changes: Any) -> ExportTable:
    import dataclasses

    return dataclasses.replace(table, df=df, **changes)


def typed_columns(table: ExportTable, zone_aware: bool) -> dict[str, pd.Series]:
    """Date questions (and ``today``) as dates, session timestamps and ``start``/``end`` as date-times
    in Vietnam's time (naive local time where the format has no zones: SAV, DTA, XLSX; zone-aware in
    Parquet). The table keeps ISO 8601 text, which CSV writes as it is."""
    out: dict[str, pd.Series] = {}
    for column in table.df.columns:
        kind = table.kinds.get(column)
        series = table.df[column]
        if kind not in ("date", "metadata") and column not in TIMESTAMP_COLUMNS:
            continue
        present = series.dropna()
        if present.empty or series.dtype.kind in "if":
            continue
        text_ = present.astype(str)
        if text_.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all():
            dates = pd.to_datetime(series, format="%Y-%m-%d", errors="coerce")
            out[column] = dates.dt.date.astype(object).where(dates.notna(), None)
        elif text_.str.match(r"\d{4}-\d{2}-\d{2}T").all():
            times = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce").dt.tz_convert(ZONE)
            out[column] = times if zone_aware else times.dt.tz_localize(None)
    return out


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


def write_csv(table: ExportTable, path: Path, delimiter: str = ",") -> None:
    """UTF-8 with BOM, quoted only where needed; pyarrow's writer (10× pandas' on big tables)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = _neutralised(table.df)
    try:
        arrow = pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects in a column: pandas copes
        data.to_csv(path, index=False, encoding="utf-8-sig", sep=delimiter)
        return
    with open(path, "wb") as handle:
        handle.write(b"\xef\xbb\xbf")
        pacsv.write_csv(arrow, handle, pacsv.WriteOptions(quoting_style="needed", delimiter=delimiter))


def write_csv_chunks(tables: Iterable[ExportTable], path: Path, delimiter: str = ",") -> int:
    """`write_csv` of a sequence of tables with the same columns (e.g. `read_long_chunks`), one
    after another into one file with one header: memory holds one chunk. Returns the rows written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = make_folder(Path(path).parent) / Path(path).name
    rows, header = 0, False
    with atomic_open(path, "wb") as handle:
        handle.write(b"\xef\xbb\xbf")
        for table in tables:
            arrow = pa.Table.from_pandas(_neutralised(table.df), preserve_index=False)
            if len(arrow) or not header:
                pacsv.write_csv(arrow, handle, pacsv.WriteOptions(quoting_style="needed", delimiter=delimiter,
                                                                  include_header=not header))
                header = True
            rows += len(arrow)
    return rows


_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write_xlsx(table: ExportTable, path: Path) -> None:
    if len(table.df) > XLSX_MAX_ROWS:
        raise ExportError(f"{len(table.df):,} rows do not fit in an Excel sheet (at most {XLSX_MAX_ROWS:,}): "
                          "use csv, parquet, sav or dta")
    from openpyxl import Workbook

    for name, repeat in table.repeats.items():
        if len(repeat.df) > XLSX_MAX_ROWS:
            raise ExportError(f"the repeat '{name}' has {len(repeat.df):,} rows, more than an Excel sheet holds "
                              f"(at most {XLSX_MAX_ROWS:,}): use csv, parquet, sav or dta")
    workbook = Workbook(write_only=True)
    _data_sheet(workbook, "data", table)
    sheets = {"data", "codebook"}
    for name, repeat in table.repeats.items():
        _data_sheet(workbook, _sheet_name(name, sheets), repeat)
    codebook = workbook.create_sheet("codebook")
    fields = ["variable", "label", "type", "values", "missing", "question"]
    codebook.append(fields)
    for entry in [*table.codebook, *(entry for repeat in table.repeats.values() for entry in repeat.codebook)]:
        codebook.append([_xlsx_cell(_neutral(entry.get(f, ""))) for f in fields])
    save_workbook(workbook, path)


def _data_sheet(workbook: Any, name: str, table: ExportTable) -> None:
    sheet = workbook.create_sheet(name)
    sheet.append(list(table.df.columns))
    data = _neutralised(table.df).astype(object).where(table.df.notna(), None)
    for column, typed in typed_columns(table, zone_aware=False).items():
        data[column] = typed.astype(object).where(typed.notna(), None)
    for row in data.itertuples(index=False, name=None):
        sheet.append([_xlsx_cell(v) for v in row])


def _sheet_name(repeat: str, taken: set[str]) -> str:
    """A repeat's sheet: its name, cut to Excel's 31 characters and made unique."""
    base = re.sub(r"[\\/*?:\[\]]", "_", repeat)[:31]
    name, number = base, 2
    while name.lower() in {t.lower() for t in taken}:
        name = f"{base[:28]}~{number}"
        number += 1
    taken.add(name)
    return name


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
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


# -- variable names for SPSS and Stata -------------------------------------------------------


def legal_names(columns: list[str], length: int = STATA_NAME_LENGTH) -> dict[str, str]:
    """XLSForm names → names SPSS and Stata both accept: ``q/choice`` → ``q_choice``.

    ASCII letters, digits and ``_``, starting with a letter (SPSS refuses ``_`` first: ``_index`` of
    the repeat tables becomes ``v_index``), at most ``length``
    characters (Stata's 32), not a Stata reserved word, unique (``_2``, ``_3`` … replace the
    end when two would collide, case-insensitively as SPSS compares them).
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        ascii_name = unicodedata.normalize("NFKD", column.replace("đ", "d").replace("Đ", "D"))
        ascii_name = ascii_name.encode("ascii", "ignore").decode()
        name = re.sub(r"[^A-Za-z0-9_]", "_", ascii_name) or "v"
        if not re.match(r"[A-Za-z]", name):
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
    typed = typed_columns(table, zone_aware=False)
    for column, legal in names.items():
        series = table.df[column]
        labels[legal] = _label_with_name(table, column, legal)
        if column in typed:  # dates have no skipped code here: skipped is system-missing
            data[legal] = typed[column]
            continue
        numeric = _is_numeric(series)
        out = series.astype("float64") if numeric else series.astype(object).where(series.notna(), None)
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
    formats, measures = sav_formats(table, sav)
    pyreadstat.write_sav(sav.df, str(path), column_labels=sav.column_labels,
                         variable_value_labels=sav.value_labels or None, missing_ranges=sav.missing or None,
                         file_label=_file_label(table), variable_format=formats or None,
                         variable_measure=measures or None)


def sav_formats(table: ExportTable, sav: StatisticalFile) -> tuple[dict[str, str], dict[str, str]]:
    """SPSS display formats (whole numbers F8.0, not F8.2) and measurement levels: codes of a
    select_one are ordinal when they are numbers (a scale), else nominal; 0/1 choices nominal;
    counts, decimals and weights scale; text nominal."""
    formats: dict[str, str] = {}
    measures: dict[str, str] = {}
    for column, legal in sav.names.items():
        series = table.df[column]
        kind = table.kinds.get(column, "meta")
        numeric = _is_numeric(series)
        if numeric and str(series.dtype) == "Int64":
            formats[legal] = "F8.0"
        if kind == "select_one":
            measures[legal] = "ordinal" if numeric else "nominal"
        elif kind == "choice":
            measures[legal] = "nominal"
        elif kind == "rank_position":
            measures[legal] = "ordinal"
        elif numeric or sav.df[legal].dtype.kind == "M" or column in TIMESTAMP_COLUMNS:
            measures[legal] = "scale"
        else:
            measures[legal] = "nominal"
    return formats, measures


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
    typed = typed_columns(table, zone_aware=False)
    for column, legal in names.items():
        series = table.df[column]
        labels[legal] = _label_with_name(table, column, legal)[:STATA_LABEL_LENGTH]
        if column in typed:
            data[legal] = typed[column]
            continue
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


def write_dta(table: ExportTable, path: Path, version: int = 118) -> None:
    import pyreadstat

    dta = dta_frame(table)
    if version < 118:  # labels are 80 bytes there, not 80 characters: Vietnamese needs up to 3 a letter
        dta = StatisticalFile(dta.df, {k: _cut_bytes(v, STATA_LABEL_LENGTH) for k, v in dta.column_labels.items()},
                              {k: {c: _cut_bytes(v, 32_000) for c, v in labels.items()}
                               for k, labels in dta.value_labels.items()}, dta.missing, dta.names)
    try:
        pyreadstat.write_dta(dta.df, str(path), column_labels=dta.column_labels,
                             variable_value_labels=dta.value_labels or None,
                             missing_user_values=dta.missing or None, version=STATA_VERSIONS[version],
                             file_label=_cut_bytes(_file_label(table), STATA_LABEL_LENGTH))
    except (pyreadstat.ReadstatError, UnicodeEncodeError) as error:
        raise ExportError(f"Stata {version} cannot hold this table ({error}); use --stata-version 118") from None


def _cut_bytes(text_: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, cut at a character boundary."""
    return text_.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


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

    typed = typed_columns(table, zone_aware=True)
    df = table.df.assign(**typed) if typed else table.df
    arrow = pa.Table.from_pandas(df, preserve_index=False)
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
