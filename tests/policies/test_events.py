"""Event-relative due rules: obligations with `trigger:` (policies/events.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.calendar import WorkCalendar
from policies.due import DueDate
from policies.events import due_after_event, parse_event_rule
from policies.loader import load_policy_text
from policies.models import ObligationRules

CALENDAR = WorkCalendar.default()
SHANGHAI = "Asia/Shanghai"
WEDNESDAY_JUNE_10_16H = pendulum.datetime(2026, 6, 10, 16, tz=SHANGHAI)


def rules(due: str, **keys: object) -> ObligationRules:
    extra = "".join(f"\n    {k}: {v}" for k, v in keys.items())
    text = f"""\
kind: calendar
id: events
title: 事件报告
obligations:
  - id: E-1
    title: 报告
    trigger: case_created
    owner: {{department: office}}
    due: {due}{extra}
"""
    policy = load_policy_text(text).policy
    return policy.rules_for("E-1")  # type: ignore[union-attr]


def due_after(event: datetime, due: str, **keys: object) -> DueDate:
    return due_after_event(event, rules(due, **keys), CALENDAR, SHANGHAI)


class TestSupervisionCase:
    """SC-07: case information arises Wednesday 2026-06-10 16:00; 5 working days; the event day not counted."""

    def test_due_at_the_end_of_wednesday_june_17(self) -> None:
        result = due_after(WEDNESDAY_JUNE_10_16H, "within 5 working days")
        assert result.at is not None and result.at.isoformat() == "2026-06-17T23:59:59+08:00"
        assert (result.shift, result.provisional) == ("none", False)

    def test_counting_the_event_day_makes_it_due_a_working_day_sooner(self) -> None:
        result = due_after(WEDNESDAY_JUNE_10_16H, "5个工作日内", count_event_day="true")
        assert result.at == pendulum.datetime(2026, 6, 16, 23, 59, 59, tz=SHANGHAI)

    def test_a_saturday_event_day_is_not_a_working_day_to_count(self) -> None:
        saturday = pendulum.datetime(2026, 6, 13, 10, tz=SHANGHAI)
        assert due_after(saturday, "within 1 working day", count_event_day="true").at == \
            pendulum.datetime(2026, 6, 15, 23, 59, 59, tz=SHANGHAI)

    def test_an_event_given_in_utc_counts_from_its_shanghai_day(self) -> None:
        utc = pendulum.datetime(2026, 6, 9, 17, tz="UTC")  # Wednesday 01:00 in Shanghai
        assert due_after(utc, "within 5 working days").at == pendulum.datetime(2026, 6, 17, 23, 59, 59, tz=SHANGHAI)


class TestDaysAndHours:
    def test_fifteen_days_from_an_accident_end_on_the_fifteenth_day_after_it(self) -> None:
        """Seed D-105: 「自事故发生之日起15日内」; the accident day is not counted (Civil Code art. 201)."""
        assert due_after(pendulum.datetime(2026, 9, 1, 10, tz=SHANGHAI), "within 15 days").at == \
            pendulum.datetime(2026, 9, 16, 23, 59, 59, tz=SHANGHAI)

    def test_a_limit_in_days_ending_in_national_day_moves_after_the_holiday_when_asked(self) -> None:
        accident = pendulum.datetime(2026, 9, 18, 10, tz=SHANGHAI)  # + 15 days = Saturday 2026-10-03
        kept = due_after(accident, "15天内")
        moved = due_after(accident, "15天内", non_working_day="after_holiday")
        assert kept.at is not None and kept.at.date() == date(2026, 10, 3)
        assert moved.at == pendulum.datetime(2026, 10, 8, 23, 59, 59, tz=SHANGHAI)
        assert (moved.nominal, moved.shift) == (date(2026, 10, 3), "after_holiday")

    def test_hours_run_from_the_event_instant_and_ignore_the_time_of_day(self) -> None:
        result = due_after(WEDNESDAY_JUNE_10_16H, "within 2 hours", at='"09:00"')
        assert result.at == pendulum.datetime(2026, 6, 10, 18, tz=SHANGHAI)

    def test_hours_on_working_days_skip_the_weekend(self) -> None:
        friday = pendulum.datetime(2026, 6, 5, 17, tz=SHANGHAI)
        assert due_after(friday, "24 hours on working days").at == pendulum.datetime(2026, 6, 8, 17, tz=SHANGHAI)

    def test_same_day_and_next_day_end_at_the_time_of_day(self) -> None:
        assert due_after(WEDNESDAY_JUNE_10_16H, "same day").at == pendulum.datetime(2026, 6, 10, 23, 59, 59,
                                                                                      tz=SHANGHAI)
        assert due_after(WEDNESDAY_JUNE_10_16H, "次日", at='"12:00"').at == pendulum.datetime(2026, 6, 11, 12,
                                                                                               tz=SHANGHAI)

    def test_a_lead_time_gives_an_internal_deadline(self) -> None:
        result = due_after(WEDNESDAY_JUNE_10_16H, "within 5 working days", lead_time="1 working day")
        assert result.internal_at == pendulum.datetime(2026, 6, 16, 23, 59, 59, tz=SHANGHAI)

    def test_a_limit_reaching_into_2027_is_provisional(self) -> None:
        assert due_after(pendulum.datetime(2026, 12, 28, tz=SHANGHAI), "within 5 working days").provisional


class TestRuleText:
    @pytest.mark.parametrize(("text", "kind", "counting"), [
        ("within 5 working days", "within", "working_days"), ("5个工作日内", "within", "working_days"),
        ("within 15 days", "within", "calendar"), ("15日內", "within", "calendar"),
        ("within 2 hours", "within", "calendar"), ("2小时内", "within", "calendar"),
        ("next day", "next_day", None), ("当天", "same_day", None),
    ])
    def test_english_and_chinese_forms(self, text: str, kind: str, counting: str | None) -> None:
        rule = parse_event_rule(text)
        assert rule.kind == kind and (rule.duration.counting if rule.duration else None) == counting

    def test_an_unknown_rule_lists_the_accepted_shapes(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_event_rule("asap")
        assert str(excinfo.value).startswith('expected a rule like "within 5 working days", got "asap" (accepted: ')

    def test_a_naive_event_time_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            due_after_event(datetime(2026, 6, 10, 16), rules("within 5 working days"), CALENDAR, SHANGHAI)
        assert "time-zone aware" in str(excinfo.value)


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30)), st.integers(1, 20))
def test_n_working_days_after_an_event_end_on_a_working_day_with_n_working_days_counted(
        moment: datetime, n: int) -> None:
    event = pendulum.instance(moment, tz=SHANGHAI)
    result = due_after(event, f"within {n} working days")
    assert result.at is not None
    last = result.at.date()
    assert CALENDAR.is_working_day(last)
    counted = [event.date() + timedelta(days=i) for i in range(1, (last - event.date()).days + 1)]
    assert sum(CALENDAR.is_working_day(d) for d in counted) == n
