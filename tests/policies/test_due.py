"""Period-relative due dates and holiday shifts of reporting calendars (seed SC-01, SC-09)."""

from __future__ import annotations

from datetime import date, time

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.calendar import WorkCalendar
from policies.due import (
    DueDate,
    NonWorkingDayRule,
    Period,
    due_for_period,
    monthly_periods,
    next_period,
    parse_due_rule,
    period_containing,
    previous_period,
    shift_for_non_working_day,
)

D = date
CALENDAR = WorkCalendar.default()
OCTOBER_2026 = period_containing(D(2026, 10, 9), "monthly")


def due(period: Period = OCTOBER_2026, text: str = "次月15日", **kwargs: object) -> DueDate:
    return due_for_period(period, parse_due_rule(text), CALENDAR, **kwargs)  # type: ignore[arg-type]


class TestPeriods:
    def test_monthly_period_has_first_and_last_day_and_key(self) -> None:
        expected = Period(kind="monthly", start=D(2026, 10, 1), end=D(2026, 10, 31), key="2026-10")
        assert OCTOBER_2026 == expected

    def test_months_overlapping_a_range_are_listed_in_order(self) -> None:
        keys = [p.key for p in monthly_periods(D(2025, 11, 30), D(2026, 2, 1))]
        assert keys == ["2025-11", "2025-12", "2026-01", "2026-02"]

    def test_next_and_previous_period_cross_the_year(self) -> None:
        december = period_containing(D(2026, 12, 31), "monthly")
        assert next_period(december).key == "2027-01"
        assert previous_period(next_period(december)) == december

    def test_february_of_a_leap_year_ends_on_the_29th(self) -> None:
        assert period_containing(D(2028, 2, 10), "monthly").end == D(2028, 2, 29)

    def test_misaligned_period_is_refused(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            Period(kind="monthly", start=D(2026, 10, 2), end=D(2026, 10, 31), key="2026-10")
        assert "expected 2026-10-01 … 2026-10-31 with key '2026-10'" in str(excinfo.value)

    def test_unknown_period_kind_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            period_containing(D(2026, 10, 1), "fortnightly")
        assert "expected one of: daily, weekly, monthly, quarterly, half-yearly, yearly" in str(excinfo.value)

    def test_inverted_range_is_refused(self) -> None:
        with pytest.raises(ValueError):
            monthly_periods(D(2026, 2, 1), D(2026, 1, 1))


class TestDueRuleText:
    @pytest.mark.parametrize(("text", "day", "offset"), [
        ("day 15 of next month", 15, 1),
        ("Day 5 of this month", 5, 0),
        ("次月15日", 15, 1),
        ("次月 15 日前", 15, 1),
        ("下月10号", 10, 1),
        ("本月20日", 20, 0),
        ("last day of this month", 31, 0),
        ("次月末", 31, 1),
    ])
    def test_english_and_chinese_forms_are_understood(self, text: str, day: int, offset: int) -> None:
        rule = parse_due_rule(text)
        assert (rule.kind, rule.day, rule.offset, rule.text) == ("day_of_month", day, offset, text)

    def test_unknown_text_shows_an_example(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_due_rule("15th")
        assert str(excinfo.value).startswith('expected a rule like "day 15 of next month", got "15th" (accepted: ')
        assert "<Month> N of this|next year" in str(excinfo.value) and "次年第一季度内" in str(excinfo.value)

    def test_day_beyond_31_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_due_rule("day 32 of next month")
        assert str(excinfo.value) == 'the day must be between 1 and 31, got "day 32 of next month"'


class TestMonthlyOutpatientReport:
    """SC-01: October 2026 is due "次月15日前"; 2026-11-15 is a Sunday."""

    def test_inclusive_deadline_on_a_sunday_is_kept_by_default(self) -> None:
        result = due()
        assert result.at is not None and result.at.isoformat() == "2026-11-15T23:59:59+08:00"
        assert (result.nominal, result.shift, result.provisional) == (D(2026, 11, 15), "none", False)

    def test_exclusive_deadline_falls_on_the_day_before_the_15th(self) -> None:
        assert due(inclusive=False).at == pendulum.datetime(2026, 11, 14, 23, 59, 59, tz="Asia/Shanghai")

    def test_previous_working_day_moves_sunday_to_friday(self) -> None:
        result = due(non_working_day="previous_working_day")
        assert result.at == pendulum.datetime(2026, 11, 13, 23, 59, 59, tz="Asia/Shanghai")
        assert (result.nominal, result.shift) == (D(2026, 11, 15), "previous_working_day")

    def test_next_working_day_moves_sunday_to_monday(self) -> None:
        result = due(non_working_day="next_working_day")
        assert result.at == pendulum.datetime(2026, 11, 16, 23, 59, 59, tz="Asia/Shanghai")

    def test_skip_leaves_the_period_without_a_deadline(self) -> None:
        result = due(non_working_day="skip")
        assert (result.at, result.shift) == (None, "skipped")

    def test_skip_keeps_a_deadline_on_a_working_day(self) -> None:
        result = due(period_containing(D(2026, 9, 1), "monthly"), non_working_day="skip")
        assert result.at == pendulum.datetime(2026, 10, 15, 23, 59, 59, tz="Asia/Shanghai")

    def test_given_time_of_day_is_used(self) -> None:
        assert due(at_time=time(9)).at == pendulum.datetime(2026, 11, 15, 9, tz="Asia/Shanghai")

    def test_deadline_serialises_with_its_offset(self) -> None:
        assert due().model_dump_json() == (
            '{"at":"2026-11-15T23:59:59+08:00","nominal":"2026-11-15","shift":"none","provisional":false,'
            '"internal_at":null}')


class TestMonthEnds:
    def test_day_31_of_next_month_is_clamped_to_the_end_of_february(self) -> None:
        january = period_containing(D(2027, 1, 1), "monthly")
        assert due(january, "day 31 of next month").nominal == D(2027, 2, 28)
        assert due(period_containing(D(2028, 1, 1), "monthly"), "次月末").nominal == D(2028, 2, 29)

    def test_exclusive_day_1_falls_on_the_last_day_of_the_period(self) -> None:
        assert due(text="day 1 of next month", inclusive=False).nominal == D(2026, 10, 31)


class TestProvisionalYears:
    def test_february_2027_period_is_provisional(self) -> None:
        assert due(period_containing(D(2027, 2, 1), "monthly")).provisional

    def test_december_2026_period_is_due_in_2027_and_provisional(self) -> None:
        result = due(period_containing(D(2026, 12, 1), "monthly"))
        assert result.nominal == D(2027, 1, 15) and result.provisional

    def test_period_due_within_2026_is_official(self) -> None:
        february = period_containing(D(2026, 2, 1), "monthly")
        assert not due(february, non_working_day="next_working_day").provisional


class TestHolidayShifts:
    """SC-09 and the traps in cn-working-calendar.md: 提前至放假前一天 and 顺延至收假次日."""

    def test_friday_in_national_day_moves_to_the_wednesday_before(self) -> None:
        assert shift_for_non_working_day(D(2026, 10, 2), "before_holiday", CALENDAR) == (
            D(2026, 9, 30), "before_holiday")

    def test_friday_deadline_moves_to_makeup_saturday_before_spring_festival(self) -> None:
        assert shift_for_non_working_day(D(2026, 2, 20), "before_holiday", CALENDAR) == (
            D(2026, 2, 14), "before_holiday")

    @pytest.mark.parametrize("monday", [D(2026, 2, 16), D(2026, 2, 23)])
    def test_monday_in_spring_festival_is_postponed_to_tuesday_feb_24(self, monday: date) -> None:
        assert shift_for_non_working_day(monday, "after_holiday", CALENDAR) == (
            D(2026, 2, 24), "after_holiday")

    def test_monday_in_national_day_is_postponed_to_thursday_oct_8(self) -> None:
        assert shift_for_non_working_day(D(2026, 10, 5), "after_holiday", CALENDAR) == (
            D(2026, 10, 8), "after_holiday")

    @pytest.mark.parametrize("rule", ["before_holiday", "after_holiday"])
    def test_holiday_rules_keep_an_ordinary_weekend(self, rule: NonWorkingDayRule) -> None:
        assert shift_for_non_working_day(D(2026, 11, 15), rule, CALENDAR) == (D(2026, 11, 15), "none")

    def test_keep_leaves_a_holiday_alone(self) -> None:
        assert shift_for_non_working_day(D(2026, 10, 5), "keep", CALENDAR) == (D(2026, 10, 5), "none")

    def test_unknown_rule_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            shift_for_non_working_day(D(2026, 10, 5), "postpone", CALENDAR)  # type: ignore[arg-type]
        assert "'postpone'" in str(excinfo.value)


DAYS = st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 6, 30))
MOVING: list[NonWorkingDayRule] = ["next_working_day", "previous_working_day", "before_holiday",
                                   "after_holiday", "skip"]


@given(DAYS, st.sampled_from(MOVING))
def test_every_shifted_date_is_a_working_day(day: date, rule: NonWorkingDayRule) -> None:
    result, shift = shift_for_non_working_day(day, rule, CALENDAR)
    if shift == "none":
        assert result == day
        assert CALENDAR.is_working_day(day) or CALENDAR.holiday_block(day) is None
    elif shift == "skipped":
        assert result is None and not CALENDAR.is_working_day(day)
    else:
        assert result is not None and CALENDAR.is_working_day(result)


@given(DAYS)
def test_before_holiday_lands_before_the_block_and_after_holiday_after_it(day: date) -> None:
    block = CALENDAR.holiday_block(day)
    before, _ = shift_for_non_working_day(day, "before_holiday", CALENDAR)
    after, _ = shift_for_non_working_day(day, "after_holiday", CALENDAR)
    if block is None:
        assert before == after == day
    else:
        assert before is not None and after is not None
        assert before < block[0] and after > block[1]
        assert CALENDAR.next_working_day(before) == after


@given(st.dates(min_value=D(2025, 1, 1), max_value=D(2028, 12, 31)), st.integers(min_value=1, max_value=31))
def test_due_day_is_clamped_into_next_month_and_exclusive_is_a_day_earlier(day: date, rule_day: int) -> None:
    period = period_containing(day, "monthly")
    rule = parse_due_rule(f"day {rule_day} of next month")
    inclusive = due_for_period(period, rule, CALENDAR).nominal
    exclusive = due_for_period(period, rule, CALENDAR, inclusive=False).nominal
    following = next_period(period)
    assert following.start <= inclusive <= following.end
    assert inclusive.day == min(rule_day, following.end.day)
    assert (inclusive - exclusive).days == 1
