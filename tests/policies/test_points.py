"""Points (积分) per department and half-year (policies/points.py; seed P12 E-13, E-06)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from policies.loader import load_policy_text
from policies.points import Outcome, PointsRule, half_year_points
from policies.recurrence import period_containing

H2_2026 = period_containing(date(2026, 7, 1), "half-yearly")
RULE = PointsRule(base=60, on_time=1, late=0, missing=-1, multipliers={"concealed": 2, "justified": 0})


def outcome(result: str, due_on: date = date(2026, 9, 4), department: str = "county_a",
            flags: frozenset[str] = frozenset()) -> Outcome:
    return Outcome(department=department, obligation="D-066", period="2026-W36", due_on=due_on,
                   result=result, flags=flags)  # type: ignore[arg-type]


def test_a_department_starts_the_half_year_at_the_base() -> None:
    tally = half_year_points(RULE, [], department="county_a", half=H2_2026)
    assert (tally.total, tally.half_year, tally.counts) == (60, "2026-H2", {"on_time": 0, "late": 0, "missing": 0})


def test_each_outcome_adds_the_points_of_its_result() -> None:
    outcomes = [outcome("on_time")] * 20 + [outcome("late")] * 2 + [outcome("missing")] * 4
    tally = half_year_points(RULE, outcomes, department="county_a", half=H2_2026)
    assert tally.total == 60 + 20 - 4
    assert tally.counts == {"on_time": 20, "late": 2, "missing": 4}


def test_concealment_is_punished_double() -> None:
    """E-06: 「若隐瞒不报的，一经查实加倍处罚」."""
    tally = half_year_points(RULE, [outcome("missing", flags=frozenset({"concealed"}))], department="county_a",
                             half=H2_2026)
    assert tally.total == 58


def test_a_zero_multiplier_cancels_a_justified_delay() -> None:
    tally = half_year_points(PointsRule(base=60, late=-2, multipliers={"justified": 0}),
                             [outcome("late", flags=frozenset({"justified"}))], department="county_a", half=H2_2026)
    assert tally.total == 60


def test_outcomes_of_other_departments_and_other_half_years_are_not_counted() -> None:
    outcomes = [outcome("missing", department="county_b"), outcome("missing", due_on=date(2026, 6, 30)),
                outcome("on_time", due_on=date(2026, 12, 31))]
    assert half_year_points(RULE, outcomes, department="county_a", half=H2_2026).total == 61


def test_an_unknown_flag_is_an_error_not_a_silent_times_one() -> None:
    with pytest.raises(ValueError) as excinfo:
        half_year_points(RULE, [outcome("missing", flags=frozenset({"concealled"}))], department="county_a",
                         half=H2_2026)
    assert str(excinfo.value) == "D-066 2026-W36: unknown flag 'concealled' (multipliers: concealed, justified)"


def test_points_are_counted_per_half_year_only() -> None:
    with pytest.raises(ValueError) as excinfo:
        half_year_points(RULE, [], department="county_a", half=period_containing(date(2026, 7, 1), "quarterly"))
    assert "per half-year" in str(excinfo.value)


def test_points_load_from_a_calendar_policy() -> None:
    text = """\
kind: calendar
id: info
title: 信息工作
defaults: {recurrence: weekly, due: friday of this week, owner: {department: office}}
obligations: [{id: D-066, title: 每周信息}]
points: {base: 60, on_time: 1, missing: -1, multipliers: {concealed: 2}}
"""
    policy = load_policy_text(text).policy
    assert policy.points == PointsRule(base=60, on_time=1, late=0, missing=-1,  # type: ignore[union-attr]
                                       multipliers={"concealed": 2})


def test_a_multiplier_must_be_a_whole_number_from_0_to_100() -> None:
    with pytest.raises(ValidationError):
        PointsRule(base=60, multipliers={"concealed": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        PointsRule(base=60, multipliers={"Concealed": 2})
