"""China's working-day calendar: the shipped 2025/2026 arrangements, provisional years, holiday files."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

import config
from policies.calendar import (
    CalendarDataError,
    DayRange,
    Holiday,
    HolidayYear,
    WorkCalendar,
    load_holiday_year,
)

D = date
HOLIDAYS = Path(config.__file__).parent / "holidays"


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar.default()


def days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


VALID_2027 = """\
year: 2027
source: test arrangement, not an official notice
published: 2026-11-01
holidays:
  - name: 元旦
    days_off: [2027-01-01, 2027-01-03]
    makeup_workdays: []
"""


class TestShippedArrangements:
    def test_2026_has_248_working_days(self, calendar: WorkCalendar) -> None:
        assert sum(calendar.is_working_day(day) for day in days_of(2026)) == 248

    def test_2025_has_248_working_days(self, calendar: WorkCalendar) -> None:
        assert sum(calendar.is_working_day(day) for day in days_of(2025)) == 248

    @pytest.mark.parametrize("year", [2025, 2026])
    def test_every_day_agrees_with_chinese_calendar(self, calendar: WorkCalendar, year: int) -> None:
        disagreements = [day for day in days_of(year)
                         if calendar.is_working_day(day) != chinese_calendar.is_workday(day)]
        assert disagreements == []

    def test_files_name_the_notice_they_copy(self, calendar: WorkCalendar) -> None:
        assert calendar.years == (2025, 2026)
        arrangement = load_holiday_year(HOLIDAYS / "2025.yaml")
        assert "国办发明电〔2024〕12号" in arrangement.source
        assert arrangement.published == D(2024, 11, 12)
        assert load_holiday_year(HOLIDAYS / "2026.yaml").published == D(2025, 11, 4)


class TestWorkingDays:
    @pytest.mark.parametrize("makeup", [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9),
                                        D(2026, 9, 20), D(2026, 10, 10), D(2025, 1, 26), D(2025, 10, 11)])
    def test_makeup_weekend_days_are_working_days(self, calendar: WorkCalendar, makeup: date) -> None:
        assert makeup.weekday() >= 5
        assert calendar.is_working_day(makeup)
        assert not calendar.is_holiday(makeup)

    def test_weekday_in_spring_festival_is_a_holiday_not_a_working_day(self, calendar: WorkCalendar) -> None:
        assert not calendar.is_working_day(D(2026, 2, 23))  # Monday
        assert calendar.is_holiday(D(2026, 2, 23))
        assert calendar.holiday_name(D(2026, 2, 23)) == "春节"

    def test_ordinary_weekend_is_not_working_and_not_a_holiday(self, calendar: WorkCalendar) -> None:
        assert not calendar.is_working_day(D(2026, 11, 15))
        assert not calendar.is_holiday(D(2026, 11, 15))
        assert calendar.holiday_name(D(2026, 11, 15)) is None

    def test_2027_is_provisional_and_counts_weekdays_only(self, calendar: WorkCalendar) -> None:
        assert not calendar.is_known(2027)
        assert calendar.is_provisional(D(2027, 1, 1))
        assert not calendar.is_provisional(D(2026, 12, 31))
        assert calendar.is_working_day(D(2027, 1, 1))  # Friday; the real notice will surely differ
        assert [calendar.is_working_day(day) for day in days_of(2027)] == [
            day.weekday() < 5 for day in days_of(2027)]

    def test_span_reaching_into_an_unpublished_year_is_provisional(self, calendar: WorkCalendar) -> None:
        assert calendar.spans_provisional(D(2026, 12, 30), D(2027, 1, 4))
        assert not calendar.spans_provisional(D(2025, 3, 1), D(2026, 12, 31))

    def test_loading_a_new_year_makes_it_official(self, tmp_path: Path) -> None:
        write(tmp_path, "2027.yaml", VALID_2027)
        calendar = WorkCalendar.from_directory(tmp_path)
        assert calendar.is_known(2027)
        assert not calendar.is_provisional(D(2027, 1, 1))
        assert not calendar.is_working_day(D(2027, 1, 1))

    def test_an_instant_is_refused_because_its_day_depends_on_the_zone(self, calendar: WorkCalendar) -> None:
        with pytest.raises(TypeError) as excinfo:
            calendar.is_working_day(datetime(2026, 2, 14, 23, 30))
        assert "zone" in str(excinfo.value)


class TestHolidayBlocks:
    def test_block_spans_the_whole_spring_festival_2026(self, calendar: WorkCalendar) -> None:
        assert calendar.holiday_block(D(2026, 2, 20)) == (D(2026, 2, 15), D(2026, 2, 23))

    def test_block_of_national_day_2026(self, calendar: WorkCalendar) -> None:
        assert calendar.holiday_block(D(2026, 10, 5)) == (D(2026, 10, 1), D(2026, 10, 7))

    def test_ordinary_weekend_and_working_day_have_no_block(self, calendar: WorkCalendar) -> None:
        assert calendar.holiday_block(D(2026, 11, 14)) is None
        assert calendar.holiday_block(D(2026, 2, 14)) is None  # make-up Saturday

    def test_block_absorbs_the_adjacent_ordinary_weekend(self) -> None:
        monday_off = Holiday(name="test", days_off=[DayRange(start=D(2026, 10, 5), end=D(2026, 10, 5))])
        calendar = WorkCalendar([HolidayYear(year=2026, source="fixture", published=D(2025, 11, 1),
                                             holidays=[monday_off])])
        assert calendar.holiday_block(D(2026, 10, 3)) == (D(2026, 10, 3), D(2026, 10, 5))


class TestStepping:
    def test_next_working_day_after_national_day_is_thursday_oct_8(self, calendar: WorkCalendar) -> None:
        assert calendar.next_working_day(D(2026, 9, 30)) == D(2026, 10, 8)

    def test_last_working_day_before_spring_festival_is_makeup_saturday(self, calendar: WorkCalendar) -> None:
        assert calendar.previous_working_day(D(2026, 2, 16)) == D(2026, 2, 14)

    def test_one_working_day_after_friday_feb_13_is_makeup_saturday(self, calendar: WorkCalendar) -> None:
        assert calendar.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 14)
        assert calendar.add_working_days(D(2026, 2, 13), 2) == D(2026, 2, 24)

    def test_zero_working_days_is_the_day_itself_even_on_a_holiday(self, calendar: WorkCalendar) -> None:
        assert calendar.add_working_days(D(2026, 10, 3), 0) == D(2026, 10, 3)

    def test_negative_working_days_are_refused(self, calendar: WorkCalendar) -> None:
        with pytest.raises(ValueError) as excinfo:
            calendar.add_working_days(D(2026, 1, 5), -1)
        assert "-1" in str(excinfo.value)


DAYS = st.dates(min_value=D(2024, 12, 1), max_value=D(2027, 12, 31))
DEFAULT = WorkCalendar.default()


@given(DAYS)
def test_next_and_previous_working_day_land_on_working_days_strictly(day: date) -> None:
    after, before = DEFAULT.next_working_day(day), DEFAULT.previous_working_day(day)
    assert DEFAULT.is_working_day(after) and after > day
    assert DEFAULT.is_working_day(before) and before < day
    assert all(not DEFAULT.is_working_day(day + timedelta(days=i)) for i in range(1, (after - day).days))


@given(DAYS, st.integers(min_value=1, max_value=40))
def test_adding_working_days_lands_on_a_working_day_and_counts_each_one(day: date, n: int) -> None:
    result = DEFAULT.add_working_days(day, n)
    assert DEFAULT.is_working_day(result)
    between = [day + timedelta(days=i) for i in range(1, (result - day).days + 1)]
    assert sum(DEFAULT.is_working_day(d) for d in between) == n
    assert DEFAULT.add_working_days(day, 1) == DEFAULT.next_working_day(day)


class TestHolidayFiles:
    def test_unknown_key_points_at_line_and_column_with_a_hint(self, tmp_path: Path) -> None:
        path = write(tmp_path, "2027.yaml", VALID_2027.replace("makeup_workdays:", "makeup_workday:"))
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert str(excinfo.value).startswith(
            f'{path}:7:5: holidays[0].makeup_workday: unknown key "makeup_workday"')
        assert 'did you mean "makeup_workdays"?' in str(excinfo.value)

    def test_makeup_day_on_a_weekday_is_refused(self, tmp_path: Path) -> None:
        path = write(tmp_path, "2027.yaml", VALID_2027.replace("makeup_workdays: []",
                                                               "makeup_workdays: [2027-01-04]"))
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert excinfo.value.problems == (
            f"{path}:7:23: holidays[0].makeup_workdays[0]: 2027-01-04 is a Monday; a make-up working day "
            "(调休上班) must be a Saturday or Sunday",)

    def test_day_off_outside_the_year_is_refused(self, tmp_path: Path) -> None:
        path = write(tmp_path, "2027.yaml", VALID_2027.replace("[2027-01-01, 2027-01-03]",
                                                               "[2026-10-01, 2026-10-07]"))
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert excinfo.value.problems == (
            f"{path}:6:16: holidays[0].days_off[0]: days off 2026-10-01 … 2026-10-07 lie outside 2027, "
            "the year of this notice",)

    def test_day_off_range_may_cross_new_year_as_the_2023_notice_did(self, tmp_path: Path) -> None:
        text = VALID_2027.replace("2027", "2023")
        text = text.replace("[2023-01-01, 2023-01-03]", "[2022-12-31, 2023-01-02]")
        arrangement = load_holiday_year(write(tmp_path, "2023.yaml", text))
        assert arrangement.holidays[0].days_off[0] == DayRange(start=D(2022, 12, 31), end=D(2023, 1, 2))

    def test_overlapping_day_off_ranges_are_refused(self, tmp_path: Path) -> None:
        text = VALID_2027 + "  - name: 春节\n    days_off: [2027-01-03, 2027-01-05]\n"
        path = write(tmp_path, "2027.yaml", text)
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert excinfo.value.problems == (
            f"{path}:9:16: holidays[1].days_off[0]: days off 2027-01-03 … 2027-01-05 overlap "
            "2027-01-01 … 2027-01-03 listed at holidays[0].days_off[0] (元旦)",)

    def test_every_problem_in_a_file_is_reported_at_once(self, tmp_path: Path) -> None:
        text = VALID_2027.replace("source: test", "sauce: test").replace("makeup_workdays: []",
                                                                         "makeup_workdays: [2027-01-06]")
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(write(tmp_path, "2027.yaml", text))
        messages = "\n".join(excinfo.value.problems)
        assert 'unknown key "sauce"' in messages and 'did you mean "source"?' in messages
        assert 'missing key "source"' in messages

    def test_range_ending_before_it_starts_is_refused(self, tmp_path: Path) -> None:
        text = VALID_2027.replace("[2027-01-01, 2027-01-03]", "[2027-01-03, 2027-01-01]")
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(write(tmp_path, "2027.yaml", text))
        assert "the range ends (2027-01-01) before it starts (2027-01-03)" in str(excinfo.value)

    def test_impossible_date_is_reported_with_its_position(self, tmp_path: Path) -> None:
        path = write(tmp_path, "2027.yaml", VALID_2027.replace("2027-01-03]", "2027-02-30]"))
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert excinfo.value.problems == (f"{path}:6:28: 2027-02-30 is not a date",)

    def test_holiday_without_days_off_is_refused(self, tmp_path: Path) -> None:
        text = VALID_2027.replace("[2027-01-01, 2027-01-03]", "[]")
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(write(tmp_path, "2027.yaml", text))
        assert "holidays[0].days_off: list at least one day off" in str(excinfo.value)

    def test_day_claimed_by_two_years_is_refused(self, tmp_path: Path) -> None:
        crossing = VALID_2027.replace("2027", "2023").replace("2023-01-01,", "2022-12-31,")
        write(tmp_path, "2023.yaml", crossing)
        year_end_holiday = "  - name: x\n    days_off: 2022-12-31\n"
        write(tmp_path, "2022.yaml", VALID_2027.replace("2027", "2022") + year_end_holiday)
        with pytest.raises(CalendarDataError) as excinfo:
            WorkCalendar.from_directory(tmp_path)
        assert excinfo.value.problems == ("2022-12-31 is listed by both the 2022 and the 2023 arrangements",)

    def test_single_date_is_a_one_day_holiday(self, tmp_path: Path) -> None:
        text = VALID_2027.replace("[2027-01-01, 2027-01-03]", "2027-01-01")
        arrangement = load_holiday_year(write(tmp_path, "2027.yaml", text))
        assert arrangement.holidays[0].days_off == (DayRange(start=D(2027, 1, 1), end=D(2027, 1, 1)),)

    def test_file_name_must_match_the_year_inside(self, tmp_path: Path) -> None:
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(write(tmp_path, "2028.yaml", VALID_2027))
        assert "2028.yaml:1:1: year: the file is named 2028.yaml but holds year 2027" in str(excinfo.value)

    def test_invalid_yaml_reports_its_position(self, tmp_path: Path) -> None:
        path = write(tmp_path, "2027.yaml", "year: 2027\nholidays: [\n")
        with pytest.raises(CalendarDataError) as excinfo:
            load_holiday_year(path)
        assert str(excinfo.value).startswith(f"{path}:3:1: not valid YAML")

    def test_problems_from_every_file_in_a_directory_are_reported(self, tmp_path: Path) -> None:
        write(tmp_path, "2027.yaml", VALID_2027.replace("year: 2027", "year: twenty"))
        write(tmp_path, "2028.yaml", "- just a list\n")
        with pytest.raises(CalendarDataError) as excinfo:
            WorkCalendar.from_directory(tmp_path)
        assert len(excinfo.value.problems) == 2
        assert excinfo.value.problems[0].startswith(f"{tmp_path / '2027.yaml'}:1:1: year: ")

    def test_same_year_loaded_twice_is_refused(self) -> None:
        arrangement = load_holiday_year(HOLIDAYS / "2026.yaml")
        with pytest.raises(CalendarDataError) as excinfo:
            WorkCalendar([arrangement, arrangement])
        assert "year 2026 is loaded twice" in str(excinfo.value)

    def test_missing_directory_is_reported(self, tmp_path: Path) -> None:
        with pytest.raises(CalendarDataError) as excinfo:
            WorkCalendar.from_directory(tmp_path / "nowhere")
        assert "no such directory" in str(excinfo.value)
