"""The escalation report's trend chart: a PNG drawn at render time from the context's figures, inline in the HTML."""

from __future__ import annotations

import email.policy
import io
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from typing import Any

import pytest
from PIL import Image

from notifications.charts import COLOURS, HEIGHT, WIDTH, escalation_chart
from notifications.email import build_email, render

BEIJING = timezone(timedelta(hours=8))
LABELS = ["09-28", "10-05", "10-12", "10-19", "10-26", "11-02", "11-09", "11-16"]
# (reports, approvals, escalated) per week, oldest first: a quiet autumn, then October's reports fall due.
FIGURES = [(0, 0, 0), (0, 1, 1), (0, 1, 1), (1, 1, 1), (0, 2, 1), (0, 1, 1), (0, 1, 1), (12, 1, 13)]


def _counts(obligations: int, steps: int, escalated: int) -> dict[str, int]:
    return {"obligations": obligations, "steps": steps, "escalated": escalated, "total": obligations + steps}


def report_context(figures: list[tuple[int, int, int]] = FIGURES, *, labels: list[str] = LABELS) -> dict[str, Any]:
    """An escalation_report context as store/escalation_report.report_context builds it (the chart's part)."""
    trend = [{"period": f"2026-W{40 + i}", "label": label, "as_of": "2026-11-20T09:00:00+08:00", **_counts(*f)}
             for i, (label, f) in enumerate(zip(labels, figures, strict=True))]
    now, before = (_counts(*figures[-1]), _counts(*figures[-2])) if figures else (_counts(0, 0, 0),) * 2
    return {
        "manager_name": "陈静", "period_kind": "week", "period": "2026-W47", "previous_period": "2026-W46",
        "as_of": "2026-11-20T09:00:00+08:00", "previous_as_of": "2026-11-13T09:00:00+08:00",
        "totals": now, "previous": before, "change": {k: now[k] - before[k] for k in now},
        "departments": [{"code": "performance", "name": "绩效办", "relation": "leader_in_charge", "now": now,
                         "previous": before, "change": {k: now[k] - before[k] for k in now}, "obligations": [],
                         "obligations_more": 0, "steps": [], "steps_more": 0, "trend": [t["total"] for t in trend]}],
        "trend": trend,
        "link": "https://duly.example.cn/calendar?state=late",
    }


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _hex(rgb: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


class TestTheImage:
    def test_is_a_png_of_the_announced_size_with_each_series_colour(self):
        chart = escalation_chart(report_context(), "zh")
        assert chart is not None and chart.png.startswith(b"\x89PNG\r\n\x1a\n")
        image = _image(chart.png)
        assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT)) == ("PNG", (640, 300))
        colours = {_hex(c) for _, c in image.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT)}
        assert len(colours) > 10  # bars, line, text and anti-aliasing: not a blank canvas
        assert {COLOURS["obligations"], COLOURS["steps"], COLOURS["escalated"], "#ffffff"} <= colours

    def test_the_same_figures_give_the_same_bytes_and_content_id(self):
        first, second = escalation_chart(report_context(), "zh"), escalation_chart(report_context(), "en")
        assert first is not None and second is not None
        assert (first.png, first.cid) == (second.png, second.cid)  # the language changes only the alt text
        assert first.cid.startswith("trend.") and first.cid.endswith("@duly")
        assert first.description != second.description

    def test_other_figures_give_another_picture_and_content_id(self):
        changed = [*FIGURES[:-1], (11, 1, 12)]
        first, second = escalation_chart(report_context(), "zh"), escalation_chart(report_context(changed), "zh")
        assert first is not None and second is not None
        assert first.cid != second.cid and first.png != second.png

    def test_the_file_names_neither_matplotlib_nor_a_date(self):
        chart = escalation_chart(report_context(), "zh")
        assert chart is not None
        assert not {"Software", "Creation Time", "date:create"} & set(_image(chart.png).info)
        assert b"matplotlib" not in chart.png.lower()

    def test_draws_without_missing_glyphs_whatever_fonts_the_machine_has(self):
        """Only digits and '-' are drawn (DejaVu Sans ships with matplotlib): no CJK font is needed."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
            assert escalation_chart(report_context(), "zh") is not None

    def test_all_zero_weeks_still_draw_an_axis(self):
        chart = escalation_chart(report_context([(0, 0, 0)] * 8), "zh")
        assert chart is not None and _image(chart.png).size == (WIDTH, HEIGHT)

    def test_drawing_in_threads_gives_the_same_bytes(self):
        contexts = [report_context([*FIGURES[:-1], (n, 1, n)]) for n in range(6)]
        serial = [escalation_chart(c, "zh").png for c in contexts]  # type: ignore[union-attr]
        with ThreadPoolExecutor(max_workers=3) as pool:
            threaded = list(pool.map(lambda c: escalation_chart(c, "zh").png, contexts))  # type: ignore[union-attr]
        assert threaded == serial and len(set(serial)) == 6


class TestNothingToDraw:
    @pytest.mark.parametrize("trend", [None, [], "missing"])
    def test_no_trend_no_image(self, trend):
        context = report_context()
        if trend == "missing":
            del context["trend"]
        else:
            context["trend"] = trend
        assert escalation_chart(context, "zh") is None

    def test_a_report_queued_before_trends_existed_renders_without_image_or_trend(self):
        context = report_context()
        del context["trend"]
        rendered = render("escalation_report", context, lang="zh-CN")
        assert rendered.images == () and "cid:" not in rendered.html and "趋势" not in rendered.text


class TestBadFigures:
    def test_a_point_without_a_count_names_the_fields_needed(self):
        context = report_context()
        del context["trend"][3]["steps"]
        with pytest.raises(ValueError) as raised:
            escalation_chart(context, "zh")
        assert "label, obligations, steps and escalated" in str(raised.value)

    def test_a_label_in_words_is_refused_rather_than_drawn_as_boxes(self):
        with pytest.raises(ValueError) as raised:
            escalation_chart(report_context(labels=[*LABELS[:-1], "本周"]), "zh")
        assert "'本周'" in str(raised.value) and "ASCII" in str(raised.value)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
class TestTheMessage:
    def test_the_image_is_a_related_part_whose_content_id_the_html_points_at(self, lang):
        rendered = render("escalation_report", report_context(), lang=lang)
        [image] = rendered.images
        assert f'src="cid:{image.cid}"' in rendered.html and f'alt="{image.description}"' in rendered.html
        assert 'width="526" height="247"' in rendered.html  # the layout's column, at the PNG's aspect
        message = build_email(rendered, sender="duly@localhost", to_address="chen.jing@hospital.example",
                              to_name="陈静", message_id="report.test@duly.test",
                              date=datetime(2026, 11, 20, 9, tzinfo=BEIJING))
        parsed = BytesParser(policy=email.policy.default).parsebytes(message.as_bytes())
        _, related = parsed.get_payload()
        html_part, image_part = related.get_payload()
        assert related.get_content_type() == "multipart/related"
        assert image_part["Content-ID"] == f"<{image.cid}>" and image_part.get_content_disposition() == "inline"
        assert f"cid:{image.cid}" in html_part.get_content()
        assert image_part.get_payload(decode=True) == image.png

    def test_the_legend_and_every_figure_are_in_words_beside_the_image(self, lang):
        rendered = render("escalation_report", report_context(), lang=lang)
        words = {"zh-CN": ("报表逾期", "审批超时", "已督办"), "en": ("Reports", "Approvals", "Escalated")}[lang]
        for word, colour in zip(words, (COLOURS["obligations"], COLOURS["steps"], COLOURS["escalated"]),
                                strict=True):
            assert f"background-color:{colour};vertical-align:middle;\"></span> {word}" in rendered.html
        for label in LABELS:
            assert f">{label}</th>" in rendered.html
        assert rendered.html.count("<td") >= 4 * len(LABELS)

    def test_the_text_part_lists_the_trend(self, lang):
        text = render("escalation_report", report_context(), lang=lang).text
        rows = [f"{label} | {o} | {s} | {e} | {o + s}" for label, (o, s, e) in zip(LABELS, FIGURES, strict=True)]
        assert all(row + "\n" in text for row in rows)
        assert text.index(rows[0]) < text.index(rows[-1])


def test_importing_notifications_does_not_import_matplotlib():
    code = "import sys, notifications.email, notifications.charts; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
