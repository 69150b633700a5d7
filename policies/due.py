"""Period-relative due rules of reporting calendars ("每月15日前须报送上月" = day 15 of next month).

Due-date rules (each one has a named test in tests/policies/test_due.py):

- The rule's month is counted from the month in which the period ends: "day 15 of next month" for
  period 2026-10 is 2026-11-15. A day past the month's end is clamped to its last day (day 31 in
  February → 28 or 29).
- ``inclusive=True`` ("X日前" includes the Xth, the default): due at ``at_time`` on the Xth.
  ``inclusive=False``: due at ``at_time`` on the day before the Xth.
- That date is the *nominal* date. The non-working-day rule then applies to it:
  ``keep`` leaves it (the default; the seeds are silent); ``next_working_day`` /
  ``previous_working_day`` move a non-working date to the next / previous working day;
  ``before_holiday`` (提前至放假前一天) moves a date inside a holiday block to the last working day before
  the block, and keeps ordinary weekends; ``after_holiday`` (顺延至收假次日) moves it to the first working day
  after the block, and keeps ordinary weekends; ``skip`` drops the deadline for a non-working date.
- A due date is provisional when the nominal date, the final date or any day between them lies in a
  year without an official holiday arrangement.
"""

from __future__ import annotations

import calendar as monthdays
import re
import unicodedata
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policies.calendar import WorkCalendar
from policies.durations import PendulumDateTime

__all__ = [
    "DueDate",
    "DueRule",
    "NonWorkingDayRule",
    "Period",
    "Shift",
    "due_for_period",
    "monthly_periods",
    "next_period",
    "parse_due_rule",
    "period_containing",
    "periods_between",
    "previous_period",
    "shift_for_non_working_day",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ONE_DAY = timedelta(days=1)

PeriodKind = Literal["monthly"]
NonWorkingDayRule = Literal[
    "keep", "next_working_day", "previous_working_day", "before_holiday", "after_holiday", "skip"
]
Shift = Literal[
    "none", "next_working_day", "previous_working_day", "before_holiday", "after_holiday", "skipped"
]


def _month_bounds(day: date) -> tuple[date, date, str]:
    last = monthdays.monthrange(day.year, day.month)[1]
    return date(day.year, day.month, 1), date(day.year, day.month, last), f"{day.year:04d}-{day.month:02d}"


# A new period kind (weekly "2026-W41", quarterly "2026-Q4", yearly "2026") is one bounds function here
# plus its name in PeriodKind; containing/next/previous/between work from the bounds alone.
_BOUNDS: dict[str, Callable[[date], tuple[date, date, str]]] = {"monthly": _month_bounds}


class Period(BaseModel):
    """A reporting period: its first and last day (both included) and a stable key such as "2026-10"."""

    model_config = _FROZEN
    kind: PeriodKind
    start: date
    end: date
    key: str

    @model_validator(mode="after")
    def _aligned(self) -> Period:
        start, end, key = _BOUNDS[self.kind](self.start)
        if (self.start, self.end, self.key) != (start, end, key):
            raise ValueError(f"not a {self.kind} period: expected {start} … {end} with key {key!r}")
        return self


def period_containing(day: date, kind: str) -> Period:
    """The period of ``kind`` that contains ``day``."""
    bounds = _BOUNDS.get(kind)
    if bounds is None:
        raise ValueError(f"unknown period kind {kind!r}; expected one of: {', '.join(_BOUNDS)}")
    start, end, key = bounds(day)
    return Period(kind=kind, start=start, end=end, key=key)  # type: ignore[arg-type]


def periods_between(first: date, last: date, kind: str) -> list[Period]:
    """Every period of ``kind`` that overlaps ``first`` … ``last`` (both included), in order."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    periods = [period_containing(first, kind)]
    while periods[-1].end < last:
        periods.append(next_period(periods[-1]))
    return periods


def monthly_periods(first: date, last: date) -> list[Period]:
    """Every month that overlaps ``first`` … ``last`` (both included), in order."""
    return periods_between(first, last, "monthly")


def next_period(period: Period) -> Period:
    """The period of the same kind that starts the day after ``period`` ends."""
    return period_containing(period.end + _ONE_DAY, period.kind)


def previous_period(period: Period) -> Period:
    """The period of the same kind that ends the day before ``period`` starts."""
    return period_containing(period.start - _ONE_DAY, period.kind)


class DueRule(BaseModel):
    """Day ``day`` of the month ``month_offset`` months after the period's last month."""

    model_config = _FROZEN
    day: int = Field(ge=1, le=31)
    month_offset: int = Field(ge=0, le=12)
    text: str


_CJK_SPACE = re.compile(r"\s*([\u3400-\u9fff])\s*")
_TRADITIONAL = str.maketrans({"當": "当", "號": "号"})
_MONTH_WORDS = {"this": 0, "next": 1, "本月": 0, "当月": 0, "次月": 1, "下月": 1}
_RULES = (
    re.compile(r"day (?P<day>\d{1,2}) of (?P<month>this|next) month"),
    re.compile(r"(?P<last>last) day of (?P<month>this|next) month"),
    re.compile(r"(?P<month>本月|当月|次月|下月)(?P<day>\d{1,2})[日号]前?"),
    re.compile(r"(?P<month>本月|当月|次月|下月)(?P<last>末|最后一天)前?"),
)


def parse_due_rule(text: str) -> DueRule:
    """Read "day 15 of next month" or "次月15日".

    Also accepted: "this month" / "本月" / "当月", "下月", "last day of next month" / "次月末",
    and a trailing "前".
    Whether "前" includes the day is the rule's ``inclusive`` setting, not part of the text.
    """
    normal = " ".join(unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower().split())
    normal = _CJK_SPACE.sub(r"\1", normal)
    for pattern in _RULES:
        match = pattern.fullmatch(normal)
        if match:
            day = 31 if match.groupdict().get("last") else int(match.group("day"))
            try:
                return DueRule(day=day, month_offset=_MONTH_WORDS[match.group("month")], text=text)
            except ValidationError:
                raise ValueError(f'the day must be between 1 and 31, got "{text}"') from None
    raise ValueError(f'expected a rule like "day 15 of next month", got "{text}"')


class DueDate(BaseModel):
    """A period's due instant in the policy's zone; ``at`` is None when the rule skipped the period."""

    model_config = _FROZEN
    at: PendulumDateTime | None
    nominal: date
    shift: Shift
    provisional: bool


def shift_for_non_working_day(
    day: date, rule: NonWorkingDayRule, calendar: WorkCalendar
) -> tuple[date | None, Shift]:
    """Apply a non-working-day rule (see the module docstring); returns the date (None if skipped) and
    the shift that happened ("none" when the date stays)."""
    if rule == "keep" or (rule in ("next_working_day", "previous_working_day", "skip")
                          and calendar.is_working_day(day)):
        return day, "none"
    if rule == "next_working_day":
        return calendar.next_working_day(day), "next_working_day"
    if rule == "previous_working_day":
        return calendar.previous_working_day(day), "previous_working_day"
    if rule == "skip":
        return None, "skipped"
    if rule not in ("before_holiday", "after_holiday"):
        raise ValueError(f"unknown non-working-day rule {rule!r}")
    block = calendar.holiday_block(day)
    if block is None:
        return day, "none"
    if rule == "before_holiday":
        return calendar.previous_working_day(block[0]), "before_holiday"
    return calendar.next_working_day(block[1]), "after_holiday"


def due_for_period(
    period: Period,
    rule: DueRule,
    calendar: WorkCalendar,
    *,
    at_time: time = time(23, 59, 59),
    inclusive: bool = True,
    non_working_day: NonWorkingDayRule = "keep",
    tz: str = "Asia/Shanghai",
) -> DueDate:
    """When ``period``'s report is due under ``rule`` (rules in the module docstring)."""
    if at_time.tzinfo is not None:
        raise ValueError(f"at_time is a wall time in {tz}; pass it without a time zone, got {at_time}")
    months = period.end.year * 12 + period.end.month - 1 + rule.month_offset
    year, month = divmod(months, 12)
    month += 1
    nominal = date(year, month, min(rule.day, monthdays.monthrange(year, month)[1]))
    if not inclusive:
        nominal -= _ONE_DAY
    final, shift = shift_for_non_working_day(nominal, non_working_day, calendar)
    at = None
    if final is not None:
        at = pendulum.datetime(final.year, final.month, final.day, at_time.hour, at_time.minute,
                               at_time.second, at_time.microsecond, tz=tz)
    provisional = calendar.spans_provisional(nominal, final or nominal)
    return DueDate(at=at, nominal=nominal, shift=shift, provisional=provisional)
