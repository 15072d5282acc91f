"""The report's charts, drawn with matplotlib's Agg canvas (no display, no pyplot state) in DejaVu
Sans, which matplotlib ships and which has every Vietnamese letter; each returns a PNG.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, Sequence

import numpy as np

from exporters.report.content import t

DPI = 110
FONT = "DejaVu Sans"

# Colours: plain and print-friendly (distinct in greyscale too).
BLUE, LIGHT_BLUE, RED, LIGHT_RED, GREY = "#2b6cb0", "#90cdf4", "#c53030", "#feb2b2", "#4a5568"
PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d69e2e", "#319795", "#d53f8c", "#718096",
           "#2c5282", "#9c4221", "#276749", "#553c9a")


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
