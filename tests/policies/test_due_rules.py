"""The period-relative due rules beyond "day N of next month", and lead times (policies/due.py)."""

from __future__ import annotations

from datetime import date, time

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.calendar import WorkCalendar
from policies.due import DueRule, deadline_before, due_for_period, nominal_date, parse_due_rule, period_containing
from policies.durations import parse_duration
from policies.recurrence import Recurrence, parse_recurrence

D = date
CALENDAR = WorkCalendar.default()
SHANGHAI = "Asia/Shanghai"


def nominal(day: date, recurrence: str, text: str) -> date:
    return nominal_date(period_containing(day, recurrence), parse_due_rule(text))


class TestRuleText:
    @pytest.mark.parametrize(("text", "kind", "day", "offset", "month", "weekday"), [
        ("day 10 of the first month of next quarter", "day_of_quarter", 10, 1, 1, None),
        ("Day 10 of the first month of the next quarter", "day_of_quarter", 10, 1, 1, None),
        ("下季度第一个月10日前", "day_of_quarter", 10, 1, 1, None),
        ("次季首月10日", "day_of_quarter", 10, 1, 1, None),
        ("last day of the last month of this quarter", "day_of_quarter", 31, 0, 3, None),
        ("January 20 of next year", "date_of_year", 20, 1, 1, None),
        ("jan 20th of the next year", "date_of_year", 20, 1, 1, None),
        ("次年1月20日前", "date_of_year", 20, 1, 1, None),
        ("July 15 of this year", "date_of_year", 15, 0, 7, None),
        ("end of the first quarter of next year", "date_of_year", 31, 1, 3, None),
        ("次年第一季度内", "date_of_year", 31, 1, 3, None),
        ("次年第一季度內", "date_of_year", 31, 1, 3, None),
        ("friday of this week", "weekday", 31, 0, None, 4),
        ("本周五", "weekday", 31, 0, None, 4),
        ("星期一", "weekday", 31, 0, None, 0),
        ("same day", "same_day", 31, 0, None, None),
        ("当日", "same_day", 31, 0, None, None),
        ("next day", "next_day", 31, 0, None, None),
        ("次日", "next_day", 31, 0, None, None),
    ])
    def test_english_and_chinese_forms_are_understood(self, text: str, kind: str, day: int, offset: int,
                                                      month: int | None, weekday: int | None) -> None:
        rule = parse_due_rule(text)
        assert (rule.kind, rule.day, rule.offset, rule.month, rule.weekday, rule.text) == (
            kind, day, offset, month, weekday, text)

    def test_a_day_the_month_never_has_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_due_rule("February 30 of next year")
        assert str(excinfo.value) == 'February has no day 30, got "February 30 of next year"'

    def test_february_29_is_a_valid_rule_clamped_in_ordinary_years(self) -> None:
        assert nominal(D(2026, 6, 1), "yearly", "February 29 of next year") == D(2027, 2, 28)
        assert nominal(D(2027, 6, 1), "yearly", "February 29 of next year") == D(2028, 2, 29)


class TestWhatEachRuleNames:
    def test_quarterly_report_is_due_on_the_tenth_of_the_first_month_of_the_next_quarter(self) -> None:
        """Seed D-031: 10 Apr, 10 Jul, 10 Oct and 10 Jan."""
        days = [nominal(D(2026, m, 1), "quarterly", "day 10 of the first month of next quarter") for m in (1, 4, 7, 10)]
        assert days == [D(2026, 4, 10), D(2026, 7, 10), D(2026, 10, 10), D(2027, 1, 10)]

    def test_the_annual_compilation_in_the_first_quarter_of_next_year_is_due_march_31(self) -> None:
        """Seed D-034, SC-03: 「次年第一季度内」 → 2027-03-31."""
        assert nominal(D(2026, 5, 1), "yearly", "次年第一季度内") == D(2027, 3, 31)

    def test_month_and_quarter_rules_count_from_the_month_the_period_ends_in(self) -> None:
        assert nominal(D(2026, 3, 1), "quarterly", "last day of this month") == D(2026, 3, 31)
        assert nominal(D(2026, 2, 1), "half-yearly", "day 15 of next month") == D(2026, 7, 15)

    def test_a_weekday_rule_names_that_day_of_the_week(self) -> None:
        assert nominal(D(2026, 10, 1), "weekly", "friday of this week") == D(2026, 10, 2)
        assert nominal(D(2026, 10, 1), "weekly", "monday of this week") == D(2026, 9, 28)

    def test_a_weekday_rule_of_a_two_week_period_names_its_last_such_day(self) -> None:
        rec = parse_recurrence({"every": 2, "unit": "weeks", "from": D(2026, 1, 7)})  # Wednesday … Tuesday
        period = period_containing(D(2026, 1, 7), rec)
        assert nominal_date(period, parse_due_rule("friday of this week")) == D(2026, 1, 16)

    def test_same_day_is_the_period_s_own_day_and_next_day_the_one_after(self) -> None:
        assert nominal(D(2026, 10, 9), "daily", "same day") == D(2026, 10, 9)
        assert nominal(D(2026, 10, 9), "daily", "次日") == D(2026, 10, 10)


class TestAnnualCycle:
    """SC-03 (P2): the annual reports for 2026 are due in 2027, a year without published holidays."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("January 20 of next year", "2027-01-20T23:59:59+08:00"),
        ("次年3月20日前", "2027-03-20T23:59:59+08:00"),
        ("January 15 of next year", "2027-01-15T23:59:59+08:00"),
    ])
    def test_annual_deadline_is_kept_and_flagged_provisional(self, text: str, expected: str) -> None:
        due = due_for_period(period_containing(D(2026, 1, 1), "yearly"), parse_due_rule(text), CALENDAR)
        assert due.at is not None and due.at.isoformat() == expected
        assert due.shift == "none" and due.provisional

    def test_p3_half_year_report_was_due_wednesday_july_15(self) -> None:
        due = due_for_period(period_containing(D(2026, 1, 1), "yearly"), parse_due_rule("July 15 of this year"),
                             CALENDAR)
        assert due.at == pendulum.datetime(2026, 7, 15, 23, 59, 59, tz=SHANGHAI) and not due.provisional


class TestWeeklyHolidayShifts:
    """SC-09: opposite holiday shifts of the weekly deadlines of seed P12 around National Day 2026."""

    def weekly(self, day: date, text: str, at: time, rule: str) -> str:
        due = due_for_period(period_containing(day, "weekly"), parse_due_rule(text), CALENDAR, at_time=at,
                             non_working_day=rule)  # type: ignore[arg-type]
        assert due.at is not None
        return due.at.isoformat()

    def test_work_plan_due_friday_october_2_is_brought_forward_to_wednesday_september_30(self) -> None:
        assert self.weekly(D(2026, 10, 2), "friday of this week", time(12), "before_holiday") == \
            "2026-09-30T12:00:00+08:00"

    def test_bulletin_due_monday_october_5_is_postponed_to_thursday_october_8(self) -> None:
        assert self.weekly(D(2026, 10, 5), "monday of this week", time(12), "after_holiday") == \
            "2026-10-08T12:00:00+08:00"

    def test_friday_of_the_spring_festival_week_is_brought_forward_to_before_the_week_begins(self) -> None:
        """cn-working-calendar.md: the week of 2026-02-16 is all holiday; its Friday moves to the make-up
        Saturday 2026-02-14, before the period starts — correct, not a bug."""
        assert self.weekly(D(2026, 2, 20), "friday of this week", time(12), "before_holiday") == \
            "2026-02-14T12:00:00+08:00"

    def test_weekly_schedule_without_a_holiday_rule_stays_on_the_holiday(self) -> None:
        assert self.weekly(D(2026, 10, 5), "monday of this week", time(9), "keep") == "2026-10-05T09:00:00+08:00"
        assert self.weekly(D(2026, 10, 5), "monday of this week", time(9), "next_working_day") == \
            "2026-10-08T09:00:00+08:00"


class TestLeadTime:
    """Seed D-050 / SC-05: 绩效办 reviews before the external deadline; the internal deadline is the lead
    time before it, on the working-day calendar."""

    def due(self, lead: str) -> pendulum.DateTime:
        result = due_for_period(period_containing(D(2026, 10, 1), "monthly"), parse_due_rule("day 15 of next month"),
                                CALENDAR, lead_time=parse_duration(lead))
        assert result.internal_at is not None
        return result.internal_at

    def test_three_working_days_before_sunday_november_15_is_wednesday_november_11(self) -> None:
        assert self.due("3 working days").isoformat() == "2026-11-11T23:59:59+08:00"

    def test_calendar_days_and_hours_are_plain_subtraction(self) -> None:
        assert self.due("2 days").isoformat() == "2026-11-13T23:59:59+08:00"
        assert self.due("2 hours").isoformat() == "2026-11-15T21:59:59+08:00"

    def test_hours_on_working_days_skip_the_weekend(self) -> None:
        # Sunday 23:59:59 is not working time; 24 h back from it ends Friday 00:00
        assert self.due("24 hours on working days").isoformat() == "2026-11-13T00:00:00+08:00"

    def test_working_hours_count_back_inside_nine_to_five(self) -> None:
        assert self.due("8 working hours").isoformat() == "2026-11-13T09:00:00+08:00"
        assert self.due("10 working hours").isoformat() == "2026-11-12T15:00:00+08:00"

    def test_counting_back_over_spring_festival_lands_on_the_makeup_saturday(self) -> None:
        """2026-02-14 (Saturday) is a make-up working day before the 春节 block 02-15 … 02-23."""
        internal = deadline_before(pendulum.datetime(2026, 2, 24, 17, tz=SHANGHAI), parse_duration("1 working day"),
                                   CALENDAR)
        assert internal.at == pendulum.datetime(2026, 2, 14, 17, tz=SHANGHAI)

    def test_no_lead_time_means_no_internal_deadline(self) -> None:
        result = due_for_period(period_containing(D(2026, 10, 1), "monthly"), parse_due_rule("次月15日"), CALENDAR)
        assert result.internal_at is None


FORWARD = ["day 15 of next month", "last day of next month", "day 10 of the first month of next quarter",
           "January 20 of next year", "end of the first quarter of next year", "next day"]
# Rules that never move a date backwards; a backward shift may rightly land before the period (see
# test_friday_of_the_spring_festival_week_is_brought_forward_to_before_the_week_begins).
FORWARD_SHIFTS = ["keep", "next_working_day", "after_holiday", "skip"]
KINDS = st.sampled_from(["daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly"]).map(parse_recurrence)


@given(st.dates(min_value=D(2025, 1, 1), max_value=D(2026, 9, 30)), KINDS, st.sampled_from(FORWARD),
       st.sampled_from(FORWARD_SHIFTS))
def test_every_forward_rule_is_due_after_its_period_ends(day: date, rec: Recurrence, text: str, rule: str) -> None:
    period = period_containing(day, rec)
    due = due_for_period(period, parse_due_rule(text), CALENDAR, non_working_day=rule)  # type: ignore[arg-type]
    assert due.nominal > period.end
    assert due.at is None or due.at.date() >= due.nominal > period.start


@given(st.dates(min_value=D(2025, 1, 1), max_value=D(2026, 11, 30)), st.sampled_from(FORWARD),
       st.sampled_from(["next_working_day", "previous_working_day"]))
def test_a_shifted_due_date_is_a_working_day(day: date, text: str, rule: str) -> None:
    due = due_for_period(period_containing(day, "monthly"), parse_due_rule(text), CALENDAR,
                         non_working_day=rule)  # type: ignore[arg-type]
    assert due.at is not None and CALENDAR.is_working_day(due.at.date())
    assert (due.shift == "none") == (due.at.date() == due.nominal)


@given(st.integers(min_value=1, max_value=31), st.sampled_from(["this", "next"]))
def test_day_rules_round_trip_through_their_english_text(day: int, which: str) -> None:
    rule = parse_due_rule(f"day {day} of {which} month")
    assert rule == DueRule(kind="day_of_month", day=day, offset=which == "next", text=f"day {day} of {which} month")
