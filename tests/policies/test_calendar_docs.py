"""The calendar section of docs/policy-language.md says what the code does: its YAML loads, its tables of
rules parse to the dates they show, and its sample problems are the ones reported."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from policies.calendar import WorkCalendar
from policies.due import nominal_date, parse_due_rule
from policies.errors import PolicyError
from policies.events import parse_event_rule
from policies.loader import load_policy_text
from policies.models import CalendarPolicy
from policies.recurrence import period_containing, period_from_key

DOC = (Path(__file__).resolve().parents[2] / "docs" / "policy-language.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## `kind: calendar`"):]
BLOCKS = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)
CALENDAR = WorkCalendar.default()
HEADER = """\
kind: calendar
id: stats
title: 统计报表
defaults:
  due: day 15 of next month
  owner: {department: performance, role: statistician}
obligations:
"""


def table(title: str) -> list[list[str]]:
    """The body rows of the first table after the heading `title`, cells stripped of backticks."""
    lines = SECTION[SECTION.index(title):].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows


def load(text: str) -> CalendarPolicy:
    policy = load_policy_text(text, file="doc.yaml").policy
    assert isinstance(policy, CalendarPolicy)
    return policy


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.startswith("  - {id: D-001")],
                         ids=lambda b: b.splitlines()[0])
def test_every_yaml_example_loads(block: str) -> None:
    if block.startswith("kind:"):
        load(block)
    elif block.startswith("points:"):
        load(HEADER + "  - {id: D-001, title: 门诊}\n" + block)
    else:
        assert block.startswith("- id:"), block
        load(HEADER + "".join(f"  {line}\n" for line in block.splitlines()))


def test_the_main_example_gives_the_dates_the_text_says() -> None:
    policy = load(next(b for b in BLOCKS if b.startswith("kind: calendar")))
    october = period_containing(date(2026, 10, 1), "monthly")
    assert policy.due_for("D-001", october, CALENDAR).at.isoformat() == "2026-11-15T23:59:59+08:00"  # type: ignore[union-attr]
    q3 = period_containing(date(2026, 7, 1), "quarterly")
    assert policy.due_for("D-014", q3, CALENDAR).at.isoformat() == "2026-10-15T23:59:59+08:00"  # type: ignore[union-attr]
    annual = policy.due_for("D-016", period_containing(date(2026, 1, 1), "yearly"), CALENDAR)
    assert annual.at.isoformat() == "2027-01-20T23:59:59+08:00" and annual.provisional  # type: ignore[union-attr]
    assert policy.rules_for("D-019").owner.codes == ("district_bureau",)
    assert policy.rules_for("D-001").owner.codes == ("hospital_h", "district_bureau")
    internal = policy.due_for("D-050", october, CALENDAR).internal_at
    assert internal is not None and internal.isoformat() == "2026-11-11T23:59:59+08:00"


def _period(text: str) -> object:
    key = text.split(" ")[0]
    for kind in ("daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly"):
        try:
            return period_from_key(key, kind)
        except ValueError:
            continue
    raise AssertionError(f"not a period key: {text}")


@pytest.mark.parametrize("row", [r for r in table("### Period-relative due rules") if not r[0].startswith("{")],
                         ids=lambda r: r[0])
def test_the_table_of_period_rules_is_what_the_parser_does(row: list[str]) -> None:
    english, chinese, period, due = row
    rule = parse_due_rule(english)
    assert nominal_date(_period(period), rule).isoformat() == due.split(" ")[0]  # type: ignore[arg-type]
    for form in (c.strip() for c in chinese.split(",") if c.strip()):
        assert parse_due_rule(form).model_copy(update={"text": english}) == rule, form


@pytest.mark.parametrize("row", table("### Event-relative obligations"), ids=lambda r: r[0])
def test_the_table_of_event_rules_is_what_the_parser_does(row: list[str]) -> None:
    english, chinese, _ = row
    rule = parse_event_rule(english)
    for form in (c.strip() for c in chinese.split(",") if c.strip()):
        other = parse_event_rule(form)
        assert (other.kind, other.duration and other.duration.model_copy(update={"text": ""})) == (
            rule.kind, rule.duration and rule.duration.model_copy(update={"text": ""})), form


def test_the_sample_problems_are_the_ones_reported() -> None:
    obligations = next(b for b in BLOCKS if b.startswith("  - {id: D-001"))
    shown = re.search(r"```\n(p\.yaml:.*?)```", SECTION, re.S)
    assert shown is not None
    with pytest.raises(PolicyError) as excinfo:
        load_policy_text(HEADER + obligations, file="p.yaml")
    reported = [str(p) for p in excinfo.value.problems]
    expected = shown.group(1).splitlines()
    assert len(reported) == len(expected)
    for got, doc in zip(reported, expected, strict=True):
        for piece in doc.split("…"):
            assert piece in got, (piece, got)
