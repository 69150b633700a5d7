"""Recurrences and the periods they cut the calendar into (policies/recurrence.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.recurrence import (
    Period,
    Recurrence,
    next_period,
    parse_recurrence,
    parse_weekday,
    period_containing,
    period_from_key,
    periods_between,
    previous_period,
)

D = date
FIXED = ["daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly"]


def every(n: int, unit: str, start: date) -> Recurrence:
    return parse_recurrence({"every": n, "unit": unit, "from": start})


class TestKeys:
    @pytest.mark.parametrize(("kind", "start", "end", "key"), [
        ("daily", D(2026, 11, 20), D(2026, 11, 20), "2026-11-20"),
        ("weekly", D(2026, 11, 16), D(2026, 11, 22), "2026-W47"),
        ("monthly", D(2026, 11, 1), D(2026, 11, 30), "2026-11"),
        ("quarterly", D(2026, 10, 1), D(2026, 12, 31), "2026-Q4"),
        ("half-yearly", D(2026, 7, 1), D(2026, 12, 31), "2026-H2"),
        ("yearly", D(2026, 1, 1), D(2026, 12, 31), "2026"),
    ])
    def test_the_period_containing_2026_11_20(self, kind: str, start: date, end: date, key: str) -> None:
        assert period_containing(D(2026, 11, 20), kind) == Period(kind=kind, start=start, end=end, key=key)

    def test_a_week_is_named_by_its_iso_year_so_monday_2025_12_29_is_in_2026_w01(self) -> None:
        week = period_containing(D(2025, 12, 29), "weekly")
        assert (week.key, week.start, week.end) == ("2026-W01", D(2025, 12, 29), D(2026, 1, 4))

    def test_2026_has_53_iso_weeks(self) -> None:
        assert period_containing(D(2026, 12, 31), "weekly").key == "2026-W53"

    def test_first_half_year_ends_on_june_30(self) -> None:
        assert period_containing(D(2026, 2, 1), "half-yearly").end == D(2026, 6, 30)

    def test_a_misaligned_quarter_is_refused(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            Period(kind="quarterly", start=D(2026, 11, 1), end=D(2026, 12, 31), key="2026-Q4")
        assert "expected 2026-10-01 … 2026-12-31 with key '2026-Q4'" in str(excinfo.value)


class TestEveryN:
    def test_every_two_weeks_from_a_monday_has_fourteen_day_periods_keyed_by_iso_interval(self) -> None:
        rec = every(2, "weeks", D(2026, 1, 5))
        periods = periods_between(D(2026, 1, 1), D(2026, 2, 1), rec)
        assert [(p.start, p.end, p.key) for p in periods] == [
            (D(2026, 1, 5), D(2026, 1, 18), "2026-01-05/P2W"),
            (D(2026, 1, 19), D(2026, 2, 1), "2026-01-19/P2W"),
        ]

    def test_there_is_no_period_before_from(self) -> None:
        rec = every(2, "weeks", D(2026, 1, 5))
        assert periods_between(D(2025, 12, 1), D(2026, 1, 4), rec) == []
        with pytest.raises(ValueError) as excinfo:
            period_containing(D(2026, 1, 4), rec)
        assert "before 2026-01-05, where the recurrence every 2 weeks from 2026-01-05 starts" in str(excinfo.value)

    def test_every_three_months_from_the_tenth(self) -> None:
        rec = every(3, "months", D(2026, 1, 10))
        period = period_containing(D(2026, 7, 9), rec)
        assert (period.start, period.end, period.key) == (D(2026, 4, 10), D(2026, 7, 9), "2026-04-10/P3M")
        assert next_period(period).start == D(2026, 7, 10)
        assert previous_period(period).start == D(2026, 1, 10)

    def test_a_month_based_start_after_the_28th_is_refused(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            every(1, "months", D(2026, 1, 31))
        assert "day 1–28 so every period starts on the same day of the month" in str(excinfo.value)

    @pytest.mark.parametrize(("data", "message"), [
        ({"every": 2, "unit": "days", "from": D(2026, 1, 5)}, "unit"),
        ({"every": 2, "unit": "weeks"}, "needs from"),
        ({"every": 2, "unit": "weeks", "from": D(2026, 1, 5), "start": 1}, "unknown key 'start'"),
        ({"every": 0, "unit": "weeks", "from": D(2026, 1, 5)}, "greater than or equal to 1"),
    ])
    def test_a_bad_every_form_says_what_is_wrong(self, data: dict[str, object], message: str) -> None:
        with pytest.raises(ValidationError) as excinfo:
            parse_recurrence(data)  # type: ignore[arg-type]
        assert message in str(excinfo.value)


class TestWords:
    @pytest.mark.parametrize(("text", "kind"), [
        ("monthly", "monthly"), ("每月", "monthly"), ("Half-Yearly", "half-yearly"), ("每季度", "quarterly"),
        ("annually", "yearly"), ("每周", "weekly")])
    def test_english_and_chinese_words(self, text: str, kind: str) -> None:
        assert parse_recurrence(text).kind == kind

    def test_an_unknown_word_lists_the_accepted_shapes(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            parse_recurrence("fortnightly")
        assert "expected daily, weekly, monthly, quarterly, half-yearly, yearly or {every: N" in str(excinfo.value)

    @pytest.mark.parametrize(("text", "weekday"), [("friday", 4), ("Fri", 4), ("周五", 4), ("星期日", 6), ("週一", 0)])
    def test_weekdays(self, text: str, weekday: int) -> None:
        assert parse_weekday(text) == weekday

    def test_an_unknown_weekday_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            parse_weekday("freitag")
        assert "expected a weekday such as friday or 周五, got 'freitag'" == str(excinfo.value)


class TestKeysBack:
    def test_a_key_of_another_recurrence_is_refused(self) -> None:
        with pytest.raises(ValueError) as excinfo:
            period_from_key("2026-11", "quarterly")
        assert str(excinfo.value) == "'2026-11' is not a period key of the recurrence quarterly"

    def test_a_stepped_key_off_the_grid_is_refused(self) -> None:
        with pytest.raises(ValueError):
            period_from_key("2026-01-12/P2W", every(2, "weeks", D(2026, 1, 5)))


DAYS = st.dates(min_value=D(2000, 1, 1), max_value=D(2099, 12, 31))
STARTS = st.dates(min_value=D(2000, 1, 1), max_value=D(2030, 12, 28)).map(lambda d: d.replace(day=min(d.day, 28)))
RECURRENCES = st.one_of(
    st.sampled_from(FIXED).map(parse_recurrence),
    st.builds(every, st.integers(1, 12), st.sampled_from(["weeks", "months"]), STARTS),
)


@given(DAYS, st.integers(min_value=0, max_value=800), RECURRENCES)
def test_periods_between_tile_the_range_without_gaps_or_overlaps(first: date, length: int, rec: Recurrence) -> None:
    last = first + timedelta(days=length)
    periods = periods_between(first, last, rec)
    start = max(first, rec.start) if rec.start else first
    if rec.start and last < rec.start:
        assert periods == []
        return
    assert periods[0].start <= start <= periods[0].end
    assert periods[-1].start <= last <= periods[-1].end
    for before, after in zip(periods, periods[1:], strict=False):
        assert after.start == before.end + timedelta(days=1)
        assert next_period(before) == after and previous_period(after) == before


@given(DAYS, RECURRENCES)
def test_a_period_contains_its_day_and_is_found_again_by_its_key(day: date, rec: Recurrence) -> None:
    if rec.start and day < rec.start:
        return
    period = period_containing(day, rec)
    assert day in period
    assert period_from_key(period.key, rec) == period
