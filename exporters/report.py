"""`khaosat report`: one XLSX workbook and one self-contained HTML page with charts.

Parts, each skipped (with a line saying so) when its input is missing:

* **fieldwork** — from the database via `exporters.progress.survey_status`: a table per group
  and stratum (sampled … completed, AAPOR RR1/RR2/COOP1, quota, target, fill, pace,
  projection, lagging) and bar charts of the response rates and of the quota fill per stratum,
  lagging strata in red;
* **weights** — from a table with a weight column (e.g. the output of `khaosat weight`): a
  histogram and `exporters.weighting.weight_summary` (quartiles, Kish's design effect,
  effective n). Rows with weight 0 (nonrespondents after a nonresponse adjustment) and rows
  without a weight are left out, with a note;
* **scores** — from the CSV/XLSX of `khaosat score`: total points per unit with 95 % confidence
  intervals sorted by rank, points per domain (stacked bars and a table, maxima in the
  headers), and SIPAS satisfaction per aspect when the file has such rows.

Charts are drawn with matplotlib's Agg canvas (no display, no pyplot state) in DejaVu Sans,
which matplotlib ships and which has every Vietnamese letter. The HTML embeds them as
``data:image/png;base64`` URIs and has its stylesheet inline: one file, no network. The
workbook has one sheet per table (header row bold and frozen, number formats) and the same
charts on a ``charts`` sheet.

Only pseudonymous ids and aggregate numbers appear: no names, phones or addresses of people.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from exporters.design import DesignError, read_table
from storage.atomic_files import save_workbook, write_text
from surveys.messages import translate

LANGUAGES = ("vi", "en")
DPI = 110
FONT = "DejaVu Sans"

# Colours: plain and print-friendly (distinct in greyscale too).
BLUE, LIGHT_BLUE, RED, LIGHT_RED, GREY = "#2b6cb0", "#90cdf4", "#c53030", "#feb2b2", "#4a5568"
PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d69e2e", "#319795", "#d53f8c", "#718096",
           "#2c5282", "#9c4221", "#276749", "#553c9a")

TEXT: dict[str, dict[str, str]] = {
    "title": {"vi": "Báo cáo khảo sát", "en": "Survey report"},
    "generated": {"vi": "Lập lúc {time} (giờ Việt Nam)", "en": "Generated {time} (Vietnam time)"},
    "survey": {"vi": "Khảo sát {id}, năm chỉ số {year}: từ {opens} đến {closes}",
               "en": "Survey {id}, index year {year}: {opens} to {closes}"},
    "privacy": {"vi": "Báo cáo chỉ dùng mã định danh giả danh và số liệu tổng hợp: không có họ tên, số điện "
                      "thoại hay địa chỉ của người trả lời.",
                "en": "Only pseudonymous ids and aggregate figures are used: no names, phone numbers or "
                      "addresses of respondents."},
    "skipped": {"vi": "Phần bỏ qua", "en": "Parts skipped"},
    "contents": {"vi": "Nội dung", "en": "Contents"},
    # sections
    "fieldwork": {"vi": "Tiến độ thực địa", "en": "Fieldwork"},
    "weights": {"vi": "Trọng số", "en": "Weights"},
    "scores": {"vi": "Tổng điểm theo đơn vị", "en": "Total points by unit"},
    "domains": {"vi": "Điểm theo lĩnh vực", "en": "Points by domain"},
    "satisfaction": {"vi": "Mức độ hài lòng theo khía cạnh", "en": "Satisfaction by aspect"},
    "charts": {"vi": "Biểu đồ", "en": "Charts"},
    # fieldwork
    "group": {"vi": "Nhóm", "en": "Group"},
    "stratum": {"vi": "Mã tầng", "en": "Stratum key"},
    "stratum_name": {"vi": "Tầng", "en": "Stratum"},
    "allocated": {"vi": "Cỡ mẫu (n)", "en": "Allocated n"},
    "sampled": {"vi": "Đã chọn", "en": "Sampled"},
    "invited": {"vi": "Đã mời", "en": "Invited"},
    "contacted": {"vi": "Đã liên hệ", "en": "Contacted"},
    "started": {"vi": "Đã bắt đầu", "en": "Started"},
    "completed": {"vi": "Hoàn thành", "en": "Completed"},
    "quota": {"vi": "Hạn ngạch", "en": "Quota"},
    "target": {"vi": "Chỉ tiêu", "en": "Target"},
    "fill": {"vi": "Đạt chỉ tiêu", "en": "Quota fill"},
    "pace": {"vi": "Phiếu/ngày", "en": "Pace/day"},
    "projection": {"vi": "Dự kiến", "en": "Projection"},
    "lagging": {"vi": "Chậm", "en": "Lagging"},
    "total": {"vi": "Tổng", "en": "Total"},
    "group_total": {"vi": "{group} — tổng", "en": "{group} — total"},
    "fieldwork_note": {
        "vi": "{state}; tốc độ tính trên {pace} ngày gần nhất. Tỷ lệ trả lời RR1, RR2 và tỷ lệ hợp tác COOP1 "
              "theo AAPOR (trường hợp chưa rõ đủ điều kiện được tính là đủ điều kiện). Chỉ tiêu = hạn ngạch, "
              "hoặc số phiếu kỳ vọng (n × tỷ lệ trả lời dự kiến) nếu tầng không có hạn ngạch; dự kiến = số "
              "hoàn thành + tốc độ × số ngày còn lại. ⚠ = chậm: dự kiến không đạt chỉ tiêu.",
        "en": "{state}; pace over the last {pace} day(s). Response rates RR1, RR2 and cooperation rate COOP1 "
              "per AAPOR (cases of unknown eligibility counted as eligible). Target = the quota, or the "
              "expected completes (n × expected response rate) where a stratum has no quota; projection = "
              "completed + pace × days left. ⚠ = lagging: projected below target."},
    "open_state": {"vi": "Còn {days} ngày (đến {closes})", "en": "{days} day(s) left (until {closes})"},
    "closed_state": {"vi": "Đã kết thúc {closes}", "en": "Closed {closes}"},
    "chart_rates": {"vi": "Tỷ lệ trả lời theo tầng (AAPOR)", "en": "Response rate by stratum (AAPOR)"},
    "chart_fill": {"vi": "Mức đạt chỉ tiêu theo tầng", "en": "Quota fill by stratum"},
    "completed_share": {"vi": "Hoàn thành / chỉ tiêu", "en": "Completed / target"},
    "projected_share": {"vi": "Dự kiến khi kết thúc", "en": "Projected at close"},
    "rate": {"vi": "Tỷ lệ", "en": "Rate"},
    "no_strata": {"vi": "Khảo sát chưa có mẫu.", "en": "The survey has no sample yet."},
    # weights
    "weights_summary": {"vi": "Tóm tắt trọng số", "en": "Weight summary"},
    "statistic": {"vi": "Chỉ số", "en": "Statistic"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "n": {"vi": "Số dòng", "en": "Rows"},
    "min": {"vi": "Nhỏ nhất", "en": "Minimum"},
    "q1": {"vi": "Tứ phân vị thứ nhất", "en": "1st quartile"},
    "median": {"vi": "Trung vị", "en": "Median"},
    "q3": {"vi": "Tứ phân vị thứ ba", "en": "3rd quartile"},
    "max": {"vi": "Lớn nhất", "en": "Maximum"},
    "mean": {"vi": "Trung bình", "en": "Mean"},
    "sum": {"vi": "Tổng", "en": "Sum"},
    "deff": {"vi": "Hiệu ứng thiết kế do trọng số (Kish)", "en": "Design effect due to weighting (Kish)"},
    "n_eff": {"vi": "Cỡ mẫu hiệu dụng", "en": "Effective sample size"},
    "weights_note": {"vi": "Cột trọng số '{column}' của {file}.", "en": "Weight column '{column}' of {file}."},
    "weights_dropped": {"vi": "{n} dòng có trọng số 0 hoặc trống (không trả lời) không được tính.",
                        "en": "{n} row(s) with weight 0 or no weight (nonrespondents) left out."},
    "chart_weights": {"vi": "Phân phối trọng số", "en": "Distribution of weights"},
    "weight": {"vi": "Trọng số", "en": "Weight"},
    "respondents": {"vi": "Số người trả lời", "en": "Respondents"},
    # scores
    "rank": {"vi": "Hạng", "en": "Rank"},
    "unit": {"vi": "Mã đơn vị", "en": "Unit"},
    "name": {"vi": "Tên đơn vị", "en": "Name"},
    "points": {"vi": "Điểm", "en": "Points"},
    "maximum": {"vi": "Tối đa", "en": "Maximum"},
    "se": {"vi": "Sai số chuẩn", "en": "Standard error"},
    "ci_low": {"vi": "KTC 95% — cận dưới", "en": "95% CI — lower"},
    "ci_high": {"vi": "KTC 95% — cận trên", "en": "95% CI — upper"},
    "scores_note": {"vi": "Từ {file}. Thanh sai số: khoảng tin cậy 95%.",
                    "en": "From {file}. Error bars: 95% confidence intervals."},
    "chart_scores": {"vi": "Tổng điểm theo đơn vị (khoảng tin cậy 95%)",
                     "en": "Total points by unit (95% confidence intervals)"},
    "chart_domains": {"vi": "Điểm theo lĩnh vực", "en": "Points by domain"},
    "domain_header": {"vi": "{name} (tối đa {max})", "en": "{name} (max {max})"},
    "domains_note": {"vi": "Điểm của từng lĩnh vực; điểm tối đa ghi trong tiêu đề cột.",
                     "en": "Points per domain; the maximum is in each column's header."},
    "chart_satisfaction": {"vi": "Tỷ lệ hài lòng theo khía cạnh", "en": "Share satisfied by aspect"},
    "overall": {"vi": "Chung", "en": "Overall"},
    "satisfied_share": {"vi": "Tỷ lệ hài lòng", "en": "Share satisfied"},
    "satisfaction_note": {"vi": "Tỷ lệ câu trả lời hài lòng, trung bình theo khía cạnh.",
                          "en": "Share of satisfied answers, averaged per aspect."},
    # info sheet
    "info": {"vi": "Thông tin", "en": "About"},
    "field": {"vi": "Mục", "en": "Item"},
    "info_title": {"vi": "Tiêu đề", "en": "Title"},
    "info_survey": {"vi": "Khảo sát", "en": "Survey"},
    "info_generated": {"vi": "Thời điểm lập", "en": "Generated"},
    "info_privacy": {"vi": "Bảo vệ dữ liệu", "en": "Data protection"},
}

SKIP_TEXT = {
    "fieldwork": {"vi": "Tiến độ thực địa: chưa có cơ sở dữ liệu (--db hoặc --config).",
                  "en": "Fieldwork: no database (--db or --config)."},
    "weights": {"vi": "Trọng số: chưa có tệp trọng số (--weights).", "en": "Weights: no weights file (--weights)."},
    "scores": {"vi": "Điểm số: chưa có tệp điểm (--scores).", "en": "Scores: no scores file (--scores)."},
    "satisfaction": {"vi": "Mức độ hài lòng: tệp điểm không có dòng khía cạnh (aspect).",
                     "en": "Satisfaction: the scores file has no aspect rows."},
}


def t(key: str, lang: str, **values: Any) -> str:
    return translate(TEXT, key, lang if lang in LANGUAGES else "vi", **values)


def _nfc(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value))


# -- the report's content, independent of HTML and XLSX -------------------------------------------

#: Column kinds and their number formats in the workbook.
FORMATS = {"text": None, "int": "0", "pct": "0.0%", "points": "0.00", "float": "0.000", "weight": "#,##0.0000",
           "bool": None}


@dataclass
class Column:
    header: str
    kind: str = "text"
    width: int | None = None


@dataclass
class Table:
    sheet: str  # the workbook sheet's name
    columns: list[Column]
    rows: list[list[Any]]
    highlight: list[bool] = field(default_factory=list)  # rows shown in red (lagging)
    strong: list[bool] = field(default_factory=list)  # rows shown bold (totals)
    caption: str = ""


@dataclass
class Chart:
    key: str
    title: str
    png: bytes

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Section:
    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class ReportInputs:
    language: str = "vi"
    generated: dt.datetime | None = None
    project: Any = None  # surveys.project.SurveyProject
    status: Any = None  # exporters.progress.StatusReport
    scores: pd.DataFrame | None = None
    scores_source: str = ""
    weights: np.ndarray | None = None
    weights_dropped: int = 0
    weight_column: str = "weight"
    weights_source: str = ""
    skipped: list[str] = field(default_factory=list)  # keys of SKIP_TEXT

    @property
    def title(self) -> str:
        if self.status is not None:
            return _nfc(self.status.title)
        if self.project is not None:
            return _nfc(self.project.title)
        return t("title", self.language)


@dataclass
class Report:
    inputs: ReportInputs
    sections: list[Section] = field(default_factory=list)

    def charts(self) -> list[Chart]:
        return [chart for section in self.sections for chart in section.charts]

    def tables(self) -> list[Table]:
        return [table for section in self.sections for table in section.tables]


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


# -- charts ---------------------------------------------------------------------------------------


def _draw(draw: Callable[[Any], list | None], rows: int, width: float = 8.0) -> bytes:
    """Draw on a fresh Agg figure sized for ``rows`` bars and return the PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    style = {"font.family": "sans-serif", "font.sans-serif": [FONT], "font.size": 9, "axes.titlesize": 11,
             "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "none"}
    with matplotlib.rc_context(style):
        height = max(2.4, 1.1 + 0.34 * rows)
        figure = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(figure)
        handles = draw(figure)  # legend entries to put under the plot, if any
        if handles:
            figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
                          numpoints=1)
            figure.tight_layout(rect=(0, 0.3 / height, 1, 1))
        else:
            figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _legend_patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, label=label)


def chart_rates(labels: Sequence[str], rr1: Sequence[float | None], rr2: Sequence[float | None],
                lagging: Sequence[bool], lang: str) -> bytes:
    n = len(labels)

    def draw(figure):
        ax = figure.add_subplot()
        y = np.arange(n)
        h = 0.38
        a = [0 if v is None else v for v in rr1]
        b = [0 if v is None else v for v in rr2]
        ax.barh(y - h / 2, a, h, color=[RED if lag else BLUE for lag in lagging])
        ax.barh(y + h / 2, b, h, color=[LIGHT_RED if lag else LIGHT_BLUE for lag in lagging])
        for i, (v1, v2) in enumerate(zip(rr1, rr2)):
            ax.text(a[i] + 0.01, i - h / 2, "–" if v1 is None else f"{v1:.0%}", va="center", fontsize=8)
            ax.text(b[i] + 0.01, i + h / 2, "–" if v2 is None else f"{v2:.0%}", va="center", fontsize=8)
        ax.set_yticks(y, [("⚠ " if lag else "") + label for label, lag in zip(labels, lagging)])
        for tick, lag in zip(ax.get_yticklabels(), lagging):
            if lag:
                tick.set_color(RED)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0, 1.08)
        _percent_axis(ax.xaxis)
        ax.set_title(t("chart_rates", lang), loc="left")
        handles = [_legend_patch(BLUE, "RR1"), _legend_patch(LIGHT_BLUE, "RR2")]
        if any(lagging):
            handles.append(_legend_patch(RED, t("lagging", lang)))
        return handles

    return _draw(draw, 2 * n + 1)


def chart_fill(labels: Sequence[str], fill: Sequence[float | None], projected: Sequence[float | None],
               lagging: Sequence[bool], lang: str) -> bytes:
    n = len(labels)

    def draw(figure):
        ax = figure.add_subplot()
        y = np.arange(n)
        values = [0 if v is None else v for v in fill]
        ax.barh(y, values, 0.6, color=[RED if lag else BLUE for lag in lagging])
        marks = [(i, p) for i, p in enumerate(projected) if p is not None]
        if marks:
            ax.plot([p for _, p in marks], [i for i, _ in marks], "D", color=GREY, markersize=5)
        for i, v in enumerate(fill):
            ax.text(values[i] + 0.01, i, "–" if v is None else f"{v:.0%}", va="center", fontsize=8)
        ax.axvline(1.0, color=GREY, linewidth=1, linestyle="--")
        ax.set_yticks(y, [("⚠ " if lag else "") + label for label, lag in zip(labels, lagging)])
        for tick, lag in zip(ax.get_yticklabels(), lagging):
            if lag:
                tick.set_color(RED)
        ax.set_ylim(n - 0.5, -0.5)
        top = max([1.0, *values, *(p for _, p in marks)])
        ax.set_xlim(0, top * 1.12)
        _percent_axis(ax.xaxis)
        ax.set_title(t("chart_fill", lang), loc="left")
        from matplotlib.lines import Line2D

        handles = [_legend_patch(BLUE, t("completed_share", lang)),
                   Line2D([], [], marker="D", color=GREY, linestyle="none", label=t("projected_share", lang))]
        if any(lagging):
            handles.append(_legend_patch(RED, t("lagging", lang)))
        return handles

    return _draw(draw, n + 1)


def chart_weights(w: np.ndarray, summary: dict, lang: str) -> bytes:
    def draw(figure):
        ax = figure.add_subplot()
        bins = min(40, max(5, int(math.sqrt(len(w))) + 1))
        ax.hist(w, bins=bins, color=BLUE, edgecolor="white")
        ax.axvline(summary["median"], color=GREY, linestyle="--", linewidth=1,
                   label=f"{t('median', lang)} {summary['median']:,.2f}")
        ax.axvline(summary["mean"], color=RED, linestyle=":", linewidth=1.2,
                   label=f"{t('mean', lang)} {summary['mean']:,.2f}")
        ax.set_xlabel(t("weight", lang))
        ax.set_ylabel(t("respondents", lang))
        ax.set_title(t("chart_weights", lang) + f" — deff {summary['deff']:.2f}, n_eff {summary['n_eff']:,.0f}",
                     loc="left")
        ax.legend(fontsize=8, frameon=False)

    return _draw(draw, 8)


def chart_totals(labels: Sequence[str], values: Sequence[float], low: Sequence[float], high: Sequence[float],
                 maximum: float, lang: str) -> bytes:
    n = len(labels)

    def draw(figure):
        ax = figure.add_subplot()
        y = np.arange(n)
        v = np.array(values, dtype=float)
        lo = np.where(np.isnan(low), v, low)
        hi = np.where(np.isnan(high), v, high)
        ax.barh(y, np.nan_to_num(v), 0.6, color=LIGHT_BLUE)
        ax.errorbar(v, y, xerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)], fmt="o", color=BLUE,
                    ecolor=GREY, capsize=3, markersize=4)
        for i, value in enumerate(v):
            if not np.isnan(value):
                ax.text(max(value, hi[i]) + maximum * 0.01, i, f"{value:.2f}", va="center", fontsize=8)
        ax.set_yticks(y, labels)
        ax.set_ylim(n - 0.5, -0.5)
        right = max([maximum, *(x for x in hi if not np.isnan(x))]) if maximum > 0 else None
        ax.set_xlim(0, right * 1.08 if right else None)
        ax.set_xlabel(f"{t('points', lang)} ({t('maximum', lang).lower()} {maximum:g})")
        ax.set_title(t("chart_scores", lang), loc="left")

    return _draw(draw, n)


def chart_domains(labels: Sequence[str], domains: Sequence[str], points: np.ndarray, lang: str) -> bytes:
    """Stacked bars: points[i, j] = unit i's points on domain j."""
    n = len(labels)

    def draw(figure):
        ax = figure.add_subplot()
        y = np.arange(n)
        left = np.zeros(n)
        for j, domain in enumerate(domains):
            column = np.nan_to_num(points[:, j])
            ax.barh(y, column, 0.6, left=left, color=PALETTE[j % len(PALETTE)], label=domain,
                    edgecolor="white", linewidth=0.5)
            left += column
        ax.set_yticks(y, labels)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(t("points", lang))
        ax.set_title(t("chart_domains", lang), loc="left")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _draw(draw, max(n, len(domains) * 0.6), width=9.5)


def chart_satisfaction(labels: Sequence[str], aspects: Sequence[str], shares: np.ndarray, lang: str) -> bytes:
    """Grouped bars: shares[i, j] = unit i's share satisfied on aspect j."""
    n, k = len(labels), len(aspects)

    def draw(figure):
        ax = figure.add_subplot()
        y = np.arange(n)
        h = 0.8 / max(k, 1)
        for j, aspect in enumerate(aspects):
            ax.barh(y - 0.4 + h * (j + 0.5), np.nan_to_num(shares[:, j]), h, color=PALETTE[j % len(PALETTE)],
                    label=aspect)
        ax.set_yticks(y, labels)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0, 1.0)
        _percent_axis(ax.xaxis)
        ax.set_xlabel(t("satisfied_share", lang))
        ax.set_title(t("chart_satisfaction", lang), loc="left")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _draw(draw, n * max(1, k) * 0.45, width=9.5)


# -- sections -------------------------------------------------------------------------------------


def _group_name(project, gid: str, lang: str) -> str:
    group = project.groups.get(gid) if project is not None else None
    return _nfc(group.label_in(lang)) if group else gid


def stratum_label(row, project, lang: str) -> str:
    """"Người dân / Xã Á" for citizen/xa-a; totals as "Tổng" and "Người dân — tổng"."""
    if row.group == "*":
        return t("total", lang)
    name = _group_name(project, row.group, lang)
    if row.stratum == "*":
        return t("group_total", lang, group=name)
    rest = row.stratum.split("/", 1)[1] if "/" in row.stratum else ""
    if project is not None and rest:
        rest = "/".join(_nfc(project.units[p].name) if p in project.units else p for p in rest.split("/"))
    return f"{name} / {rest}" if rest else name


def _fill(row) -> float | None:
    """Completes over target: the quota fill where there is a quota (target = quota)."""
    return row.completed / row.target if row.target else None


def fieldwork_section(status, project, lang: str) -> Section:
    state = (t("closed_state", lang, closes=status.closes) if status.closed else
             t("open_state", lang, days=status.days_left, closes=status.closes))
    section = Section("fieldwork", t("fieldwork", lang),
                      notes=[t("fieldwork_note", lang, state=state, pace=status.pace_days)])
    columns = [Column(t("group", lang), width=18), Column(t("stratum", lang), width=18),
               Column(t("stratum_name", lang), width=28)]
    columns += [Column(t(name, lang), "int", 10) for name in ("allocated", "sampled", "invited", "contacted",
                                                              "started", "completed")]
    columns += [Column("RR1", "pct", 8), Column("RR2", "pct", 8), Column("COOP1", "pct", 8),
                Column(t("quota", lang), "int", 10), Column(t("target", lang), "int", 10),
                Column(t("fill", lang), "pct", 10), Column(t("pace", lang), "float", 10),
                Column(t("projection", lang), "points", 10), Column(t("lagging", lang), "bool", 8)]
    table = Table("fieldwork", columns, [], caption=t("fieldwork", lang))
    for row in status.rows:
        total = "*" in (row.group, row.stratum)
        group = t("total", lang) if row.group == "*" else _group_name(project, row.group, lang)
        table.rows.append([group, row.stratum, stratum_label(row, project, lang), row.allocated, row.sampled,
                           row.invited, row.contacted, row.started, row.completed, row.rr1, row.rr2, row.coop1,
                           row.quota, row.target, _fill(row), row.pace, row.projection, row.lagging])
        table.highlight.append(row.lagging)
        table.strong.append(total)
    section.tables.append(table)
    strata = status.strata()
    if not strata:
        section.notes.append(t("no_strata", lang))
        return section
    labels = [stratum_label(r, project, lang) for r in strata]
    lagging = [r.lagging for r in strata]
    section.charts.append(Chart("fieldwork_rates", t("chart_rates", lang),
                                chart_rates(labels, [r.rr1 for r in strata], [r.rr2 for r in strata], lagging,
                                            lang)))
    section.charts.append(Chart("fieldwork_fill", t("chart_fill", lang),
                                chart_fill(labels, [_fill(r) for r in strata],
                                           [r.projection / r.target if r.target else None for r in strata],
                                           lagging, lang)))
    return section


def weights_section(w: np.ndarray, dropped: int, column: str, source: str, lang: str) -> Section:
    from exporters.weighting import weight_summary

    summary = weight_summary(w)
    section = Section("weights", t("weights", lang), notes=[t("weights_note", lang, column=column, file=source)])
    if dropped:
        section.notes.append(t("weights_dropped", lang, n=dropped))
    table = Table("weights", [Column(t("statistic", lang), width=40), Column(t("value", lang), "weight", 16)], [],
                  caption=t("weights_summary", lang))
    for key in ("n", "min", "q1", "median", "q3", "max", "mean", "sum", "deff", "n_eff"):
        table.rows.append([t(key, lang), summary[key]])
    section.tables.append(table)
    section.charts.append(Chart("weights", t("chart_weights", lang), chart_weights(w, summary, lang)))
    return section


def _unit_names(frame: pd.DataFrame, project) -> dict[str, str]:
    units = project.units if project is not None else {}
    return {u: (_nfc(units[u].name) if u in units else u) for u in dict.fromkeys(frame["unit"])}


def _unit_label(unit: str, names: dict[str, str]) -> str:
    name = names.get(unit, unit)
    return unit if name == unit else name


def _by_rank(totals: pd.DataFrame) -> pd.DataFrame:
    return totals.assign(_r=totals["rank"].fillna(math.inf)).sort_values(["_r", "unit"], kind="stable")


def scores_sections(frame: pd.DataFrame, project, source: str, lang: str) -> list[Section]:
    names = _unit_names(frame, project)
    totals = _by_rank(frame[frame["level"] == "total"].drop_duplicates("unit"))
    order = list(totals["unit"])
    labels = [_unit_label(u, names) for u in order]
    maximum = float(totals["maximum"].max()) if totals["maximum"].notna().any() else 0.0

    scores = Section("scores", t("scores", lang), notes=[t("scores_note", lang, file=source)])
    table = Table("scores", [Column(t("rank", lang), "int", 7), Column(t("unit", lang), width=14),
                             Column(t("name", lang), width=28), Column(t("points", lang), "points", 10),
                             Column(t("maximum", lang), "points", 10), Column(t("se", lang), "float", 12),
                             Column(t("ci_low", lang), "points", 14), Column(t("ci_high", lang), "points", 14)], [],
                  caption=t("scores", lang))
    for r in totals.itertuples():
        table.rows.append([None if pd.isna(r.rank) else int(r.rank), r.unit, names[r.unit], _num(r.value),
                           _num(r.maximum), _num(r.se), _num(r.ci_low), _num(r.ci_high)])
    scores.tables.append(table)
    scores.charts.append(Chart("scores", t("chart_scores", lang),
                               chart_totals(labels, totals["value"].to_numpy(float), totals["ci_low"].to_numpy(float),
                                            totals["ci_high"].to_numpy(float), maximum, lang)))
    sections = [scores]

    domain_rows = frame[frame["level"] == "domain"]
    if not domain_rows.empty:
        domains = list(dict.fromkeys(domain_rows["id"]))
        first = domain_rows.drop_duplicates("id").set_index("id")
        titles = [first.at[d, "name"] or d for d in domains]
        points = np.full((len(order), len(domains)), np.nan)
        value = {(r.unit, r.id): r.value for r in domain_rows.itertuples()}
        for i, u in enumerate(order):
            for j, d in enumerate(domains):
                points[i, j] = value.get((u, d), np.nan)
        section = Section("domains", t("domains", lang), notes=[t("domains_note", lang)])
        columns = [Column(t("rank", lang), "int", 7), Column(t("unit", lang), width=14),
                   Column(t("name", lang), width=28)]
        columns += [Column(t("domain_header", lang, name=title if title == d else f"{d} · {title}",
                             max=f"{_num(first.at[d, 'maximum']) or 0:g}"),
                           "points", 16) for d, title in zip(domains, titles)]
        columns.append(Column(t("domain_header", lang, name=t("total", lang), max=f"{maximum:g}"), "points", 14))
        table = Table("domains", columns, [], caption=t("domains", lang))
        for i, r in enumerate(totals.itertuples()):
            table.rows.append([None if pd.isna(r.rank) else int(r.rank), r.unit, names[r.unit],
                               *(_num(v) for v in points[i]), _num(r.value)])
        section.tables.append(table)
        section.charts.append(Chart("domains", t("chart_domains", lang),
                                    chart_domains(labels, [f"{d} · {n}" if n != d else d for d, n in
                                                           zip(domains, titles)], points, lang)))
        sections.append(section)

    aspect_rows = frame[frame["level"] == "aspect"]
    if not aspect_rows.empty:
        aspects = list(dict.fromkeys(aspect_rows["id"]))
        first = aspect_rows.drop_duplicates("id").set_index("id")
        titles = [first.at[a, "name"] or a for a in aspects]
        share = {(r.unit, r.id): r.value for r in aspect_rows.itertuples()}
        overall = {r.unit: r.value for r in frame[frame["level"] == "satisfaction"].itertuples()}
        units = [u for u in order if any((u, a) in share for a in aspects)]
        shares = np.array([[share.get((u, a), np.nan) for a in aspects] for u in units], dtype=float)
        section = Section("satisfaction", t("satisfaction", lang), notes=[t("satisfaction_note", lang)])
        columns = [Column(t("unit", lang), width=14), Column(t("name", lang), width=28)]
        columns += [Column(title, "pct", 14) for title in titles]
        columns.append(Column(t("overall", lang), "pct", 12))
        table = Table("satisfaction", columns, [], caption=t("satisfaction", lang))
        for i, u in enumerate(units):
            table.rows.append([u, names[u], *(_num(v) for v in shares[i]), _num(overall.get(u))])
        section.tables.append(table)
        section.charts.append(Chart("satisfaction", t("chart_satisfaction", lang),
                                    chart_satisfaction([_unit_label(u, names) for u in units], titles, shares,
                                                       lang)))
        sections.append(section)
    return sections


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


# -- HTML -----------------------------------------------------------------------------------------

CSS = """
body { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; color: #1a202c; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; font-size: 14px; line-height: 1.45; }
header { border-bottom: 2px solid #2d3748; margin-bottom: 1.5em; }
h1 { font-size: 1.6em; margin: 0 0 .3em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #cbd5e0; }
.meta { color: #4a5568; margin: .2em 0; } .privacy { font-style: italic; }
table { border-collapse: collapse; margin: .8em 0 1.2em; font-size: 12px; }
caption { text-align: left; font-weight: bold; padding-bottom: .3em; }
th, td { border: 1px solid #cbd5e0; padding: 3px 7px; vertical-align: top; }
th { background: #edf2f7; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.lag td { color: #c53030; } tr.total td { font-weight: bold; background: #f7fafc; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #4a5568; font-size: 12px; } .note { color: #4a5568; font-size: 12px; }
.wrap { overflow-x: auto; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } h2 { break-before: auto; }
  table, figure { break-inside: avoid; } .wrap { overflow: visible; } }
"""


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "points":
        return f"{value:,.2f}"
    if kind == "float":
        return f"{value:,.3f}"
    if kind == "weight":
        return f"{value:,.4f}" if isinstance(value, float) else str(value)
    if kind == "bool":
        return "⚠" if value else ""
    return html.escape(str(value))


def _html_table(table: Table) -> str:
    e = html.escape
    out = ['<div class="wrap"><table>', f"<caption>{e(table.caption)}</caption>" if table.caption else "",
           "<thead><tr>" + "".join(f"<th>{e(c.header)}</th>" for c in table.columns) + "</tr></thead><tbody>"]
    for i, row in enumerate(table.rows):
        classes = [name for name, on in (("lag", table.highlight[i] if table.highlight else False),
                                         ("total", table.strong[i] if table.strong else False)) if on]
        attr = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(f'<td{" class=n" if c.kind not in ("text", "bool") else ""}>{_cell(v, c.kind)}</td>'
                        for v, c in zip(row, table.columns))
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def render_html(report: Report) -> str:
    inputs, lang, e = report.inputs, report.inputs.language, html.escape
    when = inputs.generated.strftime("%d/%m/%Y %H:%M") if inputs.generated else ""
    parts = [f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(inputs.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>",
             f"<h1>{e(inputs.title)}</h1>"]
    project = inputs.project
    if project is not None:
        about = t("survey", lang, id=project.id, year=project.index_year, opens=project.opens, closes=project.closes)
        parts.append(f'<p class="meta">{e(about)}</p>')
    parts.append(f'<p class="meta">{e(t("generated", lang, time=when))}</p>')
    parts.append(f'<p class="meta privacy">{e(t("privacy", lang))}</p>')
    if report.sections:
        parts.append(f'<p class="meta">{e(t("contents", lang))}: '
                     + " · ".join(f'<a href="#{s.key}">{e(s.title)}</a>' for s in report.sections) + "</p>")
    if inputs.skipped:
        parts.append(f'<p class="note">{e(t("skipped", lang))}: '
                     + " ".join(e(SKIP_TEXT[k][lang]) for k in inputs.skipped) + "</p>")
    parts.append("</header>\n<main>")
    for section in report.sections:
        parts.append(f'<section id="{section.key}">\n<h2>{e(section.title)}</h2>')
        parts += [f'<p class="note">{e(note)}</p>' for note in section.notes]
        for chart in section.charts:
            parts.append(f'<figure><img src="{chart.data_uri()}" alt="{e(chart.title)}">'
                         f"<figcaption>{e(chart.title)}</figcaption></figure>")
        parts += [_html_table(table) for table in section.tables]
        parts.append("</section>")
    parts.append("</main>\n</body>\n</html>\n")
    return "\n".join(parts)


# -- XLSX -----------------------------------------------------------------------------------------


def write_xlsx(report: Report, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    inputs, lang = report.inputs, report.inputs.language
    workbook = Workbook()
    info = workbook.active
    info.title = "info"
    bold = Font(bold=True)
    info.append([t("field", lang), t("value", lang)])
    rows = [(t("info_title", lang), inputs.title)]
    if inputs.project is not None:
        p = inputs.project
        rows.append((t("info_survey", lang), t("survey", lang, id=p.id, year=p.index_year, opens=p.opens,
                                               closes=p.closes)))
    if inputs.generated is not None:
        rows.append((t("info_generated", lang), t("generated", lang,
                                                  time=inputs.generated.strftime("%d/%m/%Y %H:%M"))))
    rows.append((t("info_privacy", lang), t("privacy", lang)))
    for section in report.sections:
        rows += [(section.title, note) for note in section.notes]
    rows += [(t("skipped", lang), SKIP_TEXT[k][lang]) for k in inputs.skipped]
    for row in rows:
        info.append(list(row))
    _header(info, bold)
    info.column_dimensions["A"].width, info.column_dimensions["B"].width = 28, 110
    for row in info.iter_rows(min_row=2):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")

    for table in report.tables():
        sheet = workbook.create_sheet(table.sheet)
        sheet.append([c.header for c in table.columns])
        for i, row in enumerate(table.rows):
            sheet.append([_xlsx_value(v, c.kind) for v, c in zip(row, table.columns)])
            excel_row = sheet.max_row
            for j, column in enumerate(table.columns, start=1):
                cell = sheet.cell(excel_row, j)
                if isinstance(cell.value, int) and column.kind in ("float", "points", "weight"):
                    cell.number_format = "0"  # a count in a column of decimals (the weight summary's n)
                elif FORMATS.get(column.kind):
                    cell.number_format = FORMATS[column.kind]
                if table.highlight and table.highlight[i]:
                    cell.font = Font(color="C53030", bold=bool(table.strong and table.strong[i]))
                elif table.strong and table.strong[i]:
                    cell.font = bold
        _header(sheet, bold)
        for j, column in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(j)].width = column.width or max(10, len(column.header) + 2)

    charts = report.charts()
    if charts:
        sheet = workbook.create_sheet("charts")
        sheet.append([t("charts", lang)])
        sheet["A1"].font = bold
        sheet.freeze_panes = "A2"
        row = 3
        for chart in charts:
            sheet.cell(row, 1, chart.title).font = bold
            image = Image(io.BytesIO(chart.png))
            sheet.add_image(image, f"A{row + 1}")
            row += 3 + math.ceil(image.height / 20)  # default rows are 15 pt = 20 px
    save_workbook(workbook, path)


def _header(sheet, bold) -> None:
    from openpyxl.styles import PatternFill

    fill = PatternFill("solid", fgColor="EDF2F7")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
    sheet.freeze_panes = "A2"


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "bool":
        return "⚠" if value else ""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


# -- the whole report -----------------------------------------------------------------------------


def report_steps(inputs: ReportInputs, out_dir: Path) -> tuple[Report, list[tuple[str, Callable[[], None]]]]:
    """The report and its steps (label, action), run in order; the CLI shows them as a progress bar."""
    report = Report(inputs)
    lang = inputs.language
    steps: list[tuple[str, Callable[[], None]]] = []
    if inputs.status is not None:
        steps.append((t("fieldwork", lang),
                      lambda: report.sections.append(fieldwork_section(inputs.status, inputs.project, lang))))
    if inputs.weights is not None:
        steps.append((t("weights", lang), lambda: report.sections.append(
            weights_section(inputs.weights, inputs.weights_dropped, inputs.weight_column, inputs.weights_source,
                            lang))))
    if inputs.scores is not None:
        steps.append((t("scores", lang), lambda: report.sections.extend(
            scores_sections(inputs.scores, inputs.project, inputs.scores_source, lang))))

    def html_step():
        write_text(out_dir / "report.html", render_html(report))

    steps.append(("report.html", html_step))
    steps.append(("report.xlsx", lambda: write_xlsx(report, out_dir / "report.xlsx")))
    return report, steps


def build_report(inputs: ReportInputs, out_dir: str | Path, console=None) -> Report:
    """Write report.html and report.xlsx into ``out_dir``; with a rich console, show a progress bar."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if inputs.scores is not None and "satisfaction" not in inputs.skipped \
            and not (inputs.scores["level"] == "aspect").any():
        inputs.skipped.append("satisfaction")
    report, steps = report_steps(inputs, out_dir)
    if console is None:
        for _, action in steps:
            action()
        return report
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("report", total=len(steps))
        for label, action in steps:
            progress.update(task, description=label)
            action()
            progress.advance(task)
    return report
