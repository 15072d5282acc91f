"""The report's content, independent of HTML and XLSX: its texts in both languages, and the
sections, tables and charts that ``exporters.report.sections`` fills and the HTML page and the
workbook render.
"""

from __future__ import annotations

import base64
import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from surveys.messages import translate

LANGUAGES = ("vi", "en")

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
