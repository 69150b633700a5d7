"""SLAs and event-relative limits counted on China's working-day calendar (seed SC-07, SC-13)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from policies.calendar import WorkCalendar
from policies.durations import Deadline, WorkingDuration, add_duration, parse_duration

SHANGHAI = "Asia/Shanghai"
CALENDAR = WorkCalendar.default()


def local(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def deadline(start: datetime, text: str, **kwargs: object) -> Deadline:
    return add_duration(start, parse_duration(text), CALENDAR, **kwargs)  # type: ignore[arg-type]


class TestParsing:
    @pytest.mark.parametrize(("text", "amount", "unit", "counting"), [
        ("24 hours on working days", 24, "hours", "working_days"),
        ("24 hours on normal working days", 24, "hours", "working_days"),
        ("工作日24小时", 24, "hours", "working_days"),
        ("正常工作日内24小时", 24, "hours", "working_days"),
        ("3 working days", 3, "days", "working_days"),
        ("1 working day", 1, "days", "working_days"),
        ("3个工作日", 3, "days", "working_days"),
        ("5個工作日內", 5, "days", "working_days"),
        ("2 days", 2, "days", "calendar"),
        ("2天", 2, "days", "calendar"),
        ("15日内", 15, "days", "calendar"),
        ("2 hours", 2, "hours", "calendar"),
        ("1小時內", 1, "hours", "calendar"),
        ("8 working hours", 8, "hours", "working_hours"),
        ("8个工作小时", 8, "hours", "working_hours"),
        ("  Within 24  Hours ", 24, "hours", "calendar"),
        ("２４小时", 24, "hours", "calendar"),
    ])
    def test_english_and_chinese_forms_are_understood(self, text: str, amount: int, unit: str,
                                                      counting: str) -> None:
        parsed = parse_duration(text)
        assert (parsed.amount, parsed.unit, parsed.counting, parsed.text) == (amount, unit, counting, text)

    @pytest.mark.parametrize("text", ["24", "three days", "24 hrs", "工作日", "24 working minutes", ""])
    def test_unknown_text_names_the_accepted_forms(self, text: str) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_duration(text)
        assert str(excinfo.value) == (
            "expected a duration like '24 hours on working days', '3 working days', '2 days', "
            f"'8 working hours', got '{text}'")

    def test_zero_duration_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_duration("0 days")
        assert "between 1 and 9999 days, got '0 days'" in str(excinfo.value)

    def test_a_policy_field_accepts_the_text(self) -> None:
        class Step(BaseModel):
            sla: WorkingDuration

        assert Step.model_validate({"sla": "3个工作日"}).sla == parse_duration("3个工作日")
        with pytest.raises(ValidationError) as excinfo:
            Step.model_validate({"sla": "soon"})
        assert "expected a duration like" in str(excinfo.value)

    def test_durations_are_frozen(self) -> None:
        with pytest.raises(ValidationError):
            parse_duration("2 days").amount = 3  # type: ignore[misc]


class TestAccountApprovalSla:
    """SC-13: an account request submitted Friday 2026-06-05 17:00, three readings of "24 hours"."""

    START = local(2026, 6, 5, 17)

    def test_24_hours_on_working_days_from_friday_evening_ends_monday_same_time(self) -> None:
        assert deadline(self.START, "24 hours on working days").at == local(2026, 6, 8, 17)

    def test_24_calendar_hours_from_friday_evening_ends_saturday(self) -> None:
        assert deadline(self.START, "24 hours").at == local(2026, 6, 6, 17)

    def test_24_working_hours_at_8_hours_a_day_ends_wednesday_at_closing(self) -> None:
        assert deadline(self.START, "24 working hours").at == local(2026, 6, 10, 17)

    def test_result_is_in_the_policy_zone(self) -> None:
        result = deadline(self.START, "24 hours on working days")
        assert result.at.isoformat() == "2026-06-08T17:00:00+08:00"
        assert result.provisional is False


class TestWorkingDayCounting:
    def test_working_day_hours_skip_the_whole_national_day_block(self) -> None:
        assert deadline(local(2026, 9, 30, 16), "24 hours on working days").at == local(2026, 10, 8, 16)

    def test_one_working_day_from_friday_feb_13_ends_on_makeup_saturday(self) -> None:
        assert deadline(local(2026, 2, 13, 10), "1 working day").at == local(2026, 2, 14, 23, 59, 59)

    def test_five_working_days_do_not_count_the_day_the_case_arises(self) -> None:
        # SC-07: generated Wednesday 2026-06-10 16:00; counted days 06-11, 12, 15, 16, 17.
        assert deadline(local(2026, 6, 10, 16), "5个工作日内").at == local(2026, 6, 17, 23, 59, 59)

    def test_hours_started_on_a_holiday_begin_at_the_next_working_midnight(self) -> None:
        assert deadline(local(2026, 10, 3, 10), "8 hours on working days").at == local(2026, 10, 8, 8)

    def test_hours_that_end_exactly_at_midnight_end_the_working_day(self) -> None:
        assert deadline(local(2026, 6, 5, 0), "24 hours on working days").at == local(2026, 6, 6, 0)

    def test_calendar_days_keep_the_wall_time(self) -> None:
        assert deadline(local(2026, 9, 30, 16), "2天").at == local(2026, 10, 2, 16)


class TestWorkingHours:
    def test_start_before_opening_counts_from_opening(self) -> None:
        assert deadline(local(2026, 6, 8, 7), "2 working hours").at == local(2026, 6, 8, 11)

    def test_hours_carry_over_the_makeup_saturday(self) -> None:
        assert deadline(local(2026, 2, 13, 15), "8 working hours").at == local(2026, 2, 14, 15)

    def test_custom_working_hours_are_used(self) -> None:
        hours = (time(8, 30), time(17, 30))
        result = deadline(local(2026, 6, 8, 17), "1 working hour", workday_hours=hours)
        assert result.at == local(2026, 6, 9, 9)

    def test_closing_before_opening_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            deadline(local(2026, 6, 8, 9), "1 working hour", workday_hours=(time(17), time(9)))
        assert "close after they open" in str(excinfo.value)

    def test_runaway_count_is_stopped(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            deadline(local(2026, 6, 8, 9), "9999 working hours", workday_hours=(time(9), time(9, 1)))
        assert "no deadline within 3660 days" in str(excinfo.value)


class TestZonesAndProvisionalYears:
    def test_start_in_utc_is_counted_in_shanghai(self) -> None:
        start = datetime(2026, 6, 5, 9, tzinfo=UTC)  # 17:00 in Shanghai
        result = deadline(start, "24 hours on working days")
        assert result.at == local(2026, 6, 8, 17) and result.at.timezone_name == SHANGHAI

    def test_calendar_days_keep_wall_time_but_hours_are_elapsed_across_a_dst_change(self) -> None:
        start = pendulum.datetime(2026, 3, 28, 12, tz="Europe/Berlin")  # clocks go forward on the 29th
        days = deadline(start, "2 days", tz="Europe/Berlin").at
        hours = deadline(start, "48 hours", tz="Europe/Berlin").at
        assert days == pendulum.datetime(2026, 3, 30, 12, tz="Europe/Berlin")
        assert hours == pendulum.datetime(2026, 3, 30, 13, tz="Europe/Berlin")

    def test_naive_start_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            deadline(datetime(2026, 6, 5, 17), "2 days")
        assert "time-zone aware" in str(excinfo.value)

    def test_start_in_2027_is_provisional(self) -> None:
        assert deadline(local(2027, 3, 1, 9), "3 working days").provisional
        assert deadline(local(2027, 3, 1, 9), "24 hours on working days").provisional

    def test_deadline_running_into_2027_is_provisional(self) -> None:
        assert deadline(local(2026, 12, 30, 9), "5 working days").provisional
        assert not deadline(local(2026, 12, 21, 9), "5 working days").provisional

    def test_deadline_serialises_with_its_offset(self) -> None:
        assert deadline(local(2026, 2, 13, 10), "1 working day").model_dump_json() == (
            '{"at":"2026-02-14T23:59:59+08:00","provisional":false}')
        assert Deadline.model_validate_json('{"at":"2026-02-14T23:59:59+08:00","provisional":false}').at == (
            local(2026, 2, 14, 23, 59, 59))


STARTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30)).map(
    lambda naive: pendulum.instance(naive, tz=SHANGHAI))


@given(STARTS, st.integers(min_value=1, max_value=200))
def test_working_day_hours_never_end_before_calendar_hours(start: pendulum.DateTime, hours: int) -> None:
    result = deadline(start, f"{hours} hours on working days").at
    assert result >= start + timedelta(hours=hours)
    assert CALENDAR.is_working_day((result - timedelta(microseconds=1)).date())


@given(STARTS, st.integers(min_value=1, max_value=60))
def test_working_hours_end_in_opening_hours_of_a_working_day(start: pendulum.DateTime, hours: int) -> None:
    result = deadline(start, f"{hours} working hours").at
    assert CALENDAR.is_working_day(result.date())
    assert time(9) < result.time() <= time(17)
