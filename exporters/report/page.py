"""The report as one self-contained HTML page: stylesheet inline, charts as data URIs, no network."""

from __future__ import annotations

import html
import math
from typing import Any

from exporters.report.content import SKIP_TEXT, Report, Table, t

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
