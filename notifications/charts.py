"""Charts drawn at delivery time from a message's context, attached inline to the HTML part.

The picture holds digits and date labels only ("11-16", "12"): its words (the legend, the title, the alt
text) are in the HTML next to it, in the reader's language. So a machine without CJK fonts draws the same
picture, never tofu boxes, and a text-only client or a screen reader misses nothing but the shape.

matplotlib is imported inside the drawing function (importing `notifications` stays cheap), and only its
object API is used (a `Figure` on an Agg canvas, no pyplot): no global state, safe in threads. The same
figures give the same PNG bytes (no Software or date text in the file) and the same Content-ID.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # notifications.email imports this module for its render() hook
    from notifications.email import InlineImage

__all__ = ["COLOURS", "HEIGHT", "WIDTH", "escalation_chart"]

WIDTH, HEIGHT = 640, 300
"""Pixels of the PNG, and of the <img> that shows it."""
_DPI = 100
COLOURS: Mapping[str, str] = MappingProxyType({
    "obligations": "#2563eb",  # overdue reports: blue bars
    "steps": "#f59e0b",  # overdue approval steps: amber bars stacked on them
    "escalated": "#b91c1c",  # escalated (督办): red line
})
_INK, _GRID = "#4b5563", "#e5e7eb"
_VERSION = 1  # part of the Content-ID: bump when the drawing changes, so a client's cache is not reused
_UNITS = {"zh": ("周", "个月"), "en": ("weeks", "months")}
_ALT = {
    "zh": "逾期趋势图：近 {n} {unit}（{first} 至 {last}）报表逾期与审批超时的数量（堆叠柱）及已督办数量（折线），"
          "本期共 {total} 项",
    "en": "Overdue trend: reports and approvals overdue (stacked bars) and escalated (line) over the last {n} "
          "{unit} ({first} to {last}); {total} now",
}


def escalation_chart(context: Mapping[str, Any], lang: str) -> InlineImage | None:
    """The escalation report's trend: stacked bars (overdue reports, then approval steps) and a line
    (escalated) for each point of `context["trend"]` (store/escalation_report.py); None without points."""
    points = [p for p in context.get("trend") or () if isinstance(p, Mapping)]
    if not points:
        return None
    from notifications.email import InlineImage

    try:
        series = {
            "labels": [str(p["label"]) for p in points],
            **{kind: [int(p[kind]) for p in points] for kind in ("obligations", "steps", "escalated")},
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"escalation chart: each trend point needs label, obligations, steps and escalated "
                         f"(whole numbers), as store/escalation_report.py writes them; got {points!r}") from exc
    wordy = [label for label in series["labels"] if not (label.isascii() and label.isprintable())]
    if wordy:  # DejaVu Sans, which matplotlib ships, has no CJK glyphs: words belong in the HTML
        raise ValueError(f"escalation chart: trend labels must be ASCII dates like '11-16', got {wordy!r}")
    digest = hashlib.sha256(json.dumps([_VERSION, series], sort_keys=True).encode()).hexdigest()[:16]
    totals = [o + s for o, s in zip(series["obligations"], series["steps"], strict=True)]
    code = "en" if lang == "en" else "zh"
    unit = _UNITS[code][context.get("period_kind") == "month"]
    alt = _ALT[code].format(n=len(points), unit=unit, first=series["labels"][0], last=series["labels"][-1],
                            total=totals[-1])
    return InlineImage(cid=f"trend.{digest}@duly", png=_draw(series, totals), description=alt)


def _draw(series: dict[str, list[Any]], totals: list[int]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(WIDTH / _DPI, HEIGHT / _DPI), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(figure)  # Agg, explicitly: never whatever backend pyplot would pick
    figure.subplots_adjust(left=0.07, right=0.99, top=0.97, bottom=0.1)
    axes = figure.add_subplot()
    x = range(len(totals))
    axes.bar(x, series["obligations"], width=0.6, color=COLOURS["obligations"], zorder=2)
    axes.bar(x, series["steps"], width=0.6, bottom=series["obligations"], color=COLOURS["steps"], zorder=2)
    axes.plot(x, series["escalated"], color=COLOURS["escalated"], linewidth=2, marker="o", markersize=5, zorder=3)
    top = max([*totals, *series["escalated"], 1])
    for i, total in enumerate(totals):
        if total:  # a bar's total above it; an empty week needs no "0" on the axis
            axes.annotate(str(total), (i, total), xytext=(0, 4), textcoords="offset points", ha="center",
                          va="bottom", fontsize=10, color=_INK, zorder=4)
    axes.set_ylim(0, top * 1.12)
    axes.set_xlim(-0.6, len(totals) - 0.4)
    axes.set_xticks(list(x), series["labels"])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    axes.tick_params(colors=_INK, labelsize=10, length=0)
    axes.grid(axis="y", color=_GRID, linewidth=0.8, zorder=0)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(_GRID)
    buffer = io.BytesIO()
    # No Software (matplotlib's version) and no date: identical figures give identical bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
