"""The report as an XLSX workbook: one sheet per table (header row bold and frozen, number
formats), an ``info`` sheet and the charts on a ``charts`` sheet.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from exporters.report.content import FORMATS, SKIP_TEXT, Report, t
from storage.atomic_files import save_workbook

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
