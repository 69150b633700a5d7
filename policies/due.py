"""Period-relative due rules of reporting calendars ("每月15日前须报送上月" = day 15 of next month).

Due-date rules (each one has a named test in tests/policies/test_due.py or test_due_rules.py):

- Every rule counts from the period's *last* day, its "end". ``day N of this|next month``: the month that
  contains the end, or the one after. ``day N of the first month of next quarter``: the first month of
  the quarter after the one containing the end (for 2026-Q3 → 2026-10-N). ``January 20 of next year``:
  the year after the end's year. ``end of the first quarter of next year`` (「次年第一季度内」): March 31 of
  that year. ``friday of this week``: the last Friday of the period (for a weekly period, its Friday).
  ``same day``: the end itself (a daily report's own day). ``next day``: the day after the end.
- A day past the month's end is clamped to its last day (day 31 in February → 28 or 29);
  ``last day of …`` is day 31 clamped.
- ``inclusive=True`` ("X日前" includes the Xth, the default): due at ``at_time`` on that day.
  ``inclusive=False``: due at ``at_time`` on the day before.
- That date is the *nominal* date. The non-working-day rule then applies to it:
  ``keep`` leaves it (the default; the seeds are silent); ``next_working_day`` /
  ``previous_working_day`` move a non-working date to the next / previous working day;
  ``before_holiday`` (提前至放假前一天) moves a date inside a holiday block to the last working day before
  the block, and keeps ordinary weekends; ``after_holiday`` (顺延至收假次日) moves it to the first working day
  after the block, and keeps ordinary weekends; ``skip`` drops the deadline for a non-working date.
- ``lead_time`` sets an internal deadline before the external one (seed D-050: 绩效办 reviews before the
  report goes out): the same duration counted *back* from the due instant — N working days back is the
  same wall time on the N-th working day before the due day; hours on working days and working hours are
  counted back only inside working days (working hours: 09:00–17:00); calendar days and hours are elapsed.
- A due date is provisional when the nominal date, the final date, the internal date or any day between
  them lies in a year without an official holiday arrangement.
"""

from __future__ import annotations

import calendar as monthdays
import re
import unicodedata
from datetime import date, time, timedelta
from typing import Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policies.calendar import WorkCalendar
from policies.durations import Deadline, PendulumDateTime, WorkingDuration
from policies.recurrence import (
    WEEKDAYS,
    Period,
    add_months,
    monthly_periods,
    next_period,
    parse_weekday,
    period_containing,
    periods_between,
    previous_period,
)

__all__ = [
    "DUE_RULE_SHAPES",
    "DueDate",
    "DueRule",
    "NonWorkingDayRule",
    "Period",
    "Shift",
    "deadline_before",
    "due_for_period",
    "finish_due",
    "monthly_periods",
    "next_period",
    "nominal_date",
    "parse_due_rule",
    "period_containing",
    "periods_between",
    "previous_period",
    "shift_for_non_working_day",
    "with_lead_time",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ONE_DAY = timedelta(days=1)
_MAX_SCAN_DAYS = 3660

NonWorkingDayRule = Literal[
    "keep", "next_working_day", "previous_working_day", "before_holiday", "after_holiday", "skip"
]
Shift = Literal[
    "none", "next_working_day", "previous_working_day", "before_holiday", "after_holiday", "skipped"
]
DueKind = Literal["day_of_month", "day_of_quarter", "date_of_year", "weekday", "same_day", "next_day"]

DUE_RULE_SHAPES = (
    "day N of this|next month, last day of this|next month, day N of the first month of next quarter, "
    "<Month> N of this|next year, end of the first quarter of next year, <weekday> of this week, same day, "
    "next day, {with: OBLIGATION_ID}; in Chinese 次月15日, 次月末, 下季度第一个月10日, 次年1月20日, "
    "次年第一季度内, 本周五, 当日, 次日"
)


class DueRule(BaseModel):
    """A period-relative due rule, read from its text (see the module docstring for what each kind means).

    ``offset`` is 0 for "this" and 1 for "next" (month, quarter or year); ``month`` is the month of the
    year (``date_of_year``) or of the quarter, 1–3 (``day_of_quarter``); ``day`` 31 means the last day.
    """

    model_config = _FROZEN
    kind: DueKind = "day_of_month"
    day: int = Field(default=31, ge=1, le=31)
    offset: int = Field(default=0, ge=0, le=1)
    month: int | None = Field(default=None, ge=1, le=12)
    weekday: int | None = Field(default=None, ge=0, le=6)
    text: str

    @model_validator(mode="after")
    def _complete(self) -> DueRule:
        if self.kind in ("day_of_quarter", "date_of_year") and self.month is None:
            raise ValueError(f"a {self.kind} rule needs its month")
        if self.kind == "day_of_quarter" and self.month is not None and self.month > 3:
            raise ValueError("a quarter has months 1–3")
        if self.kind == "date_of_year" and self.month is not None and self.day > _longest(self.month):
            raise ValueError(f"{monthdays.month_name[self.month]} has no day {self.day}, got \"{self.text}\"")
        if self.kind == "weekday" and self.weekday is None:
            raise ValueError("a weekday rule needs its weekday")
        return self

    @property
    def month_offset(self) -> int:
        """Months after the period's last month, for a ``day_of_month`` rule (0 for other kinds)."""
        return self.offset if self.kind == "day_of_month" else 0

    def __str__(self) -> str:
        return self.text


def _longest(month: int) -> int:
    return monthdays.monthrange(2000, month)[1]  # 2000 is a leap year: February 29 is a valid rule


_TRADITIONAL = str.maketrans({"當": "当", "號": "号", "個": "个", "內": "内", "週": "周", "禮": "礼"})
_CJK_SPACE = re.compile(r"\s*([\u3400-\u9fff])\s*")
_THIS_NEXT = {"this": 0, "next": 1, "本": 0, "当": 0, "今": 0, "次": 1, "下": 1, "翌": 1, "明": 1, "下一": 1}
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 3, "一": 1, "二": 2, "三": 3, "四": 4,
            "1": 1, "2": 2, "3": 3, "4": 4, "首": 1, "末": 3}
_MONTHS = {name.lower(): i for i, name in enumerate(monthdays.month_name) if name} | {
    name.lower(): i for i, name in enumerate(monthdays.month_abbr) if name}
_MONTH_WORDS = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_WORDS = "|".join(WEEKDAYS + tuple(w[:3] for w in WEEKDAYS))
_DAY = r"(?P<day>\d{1,2})[日号]前?"
_LAST = r"(?P<last>末|底|最后一天)前?"
_RULES: tuple[tuple[DueKind, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("day_of_month", r"(?:day (?P<day>\d{1,2})|(?P<last>last) day) of (?:the )?(?P<which>this|next) month"),
    ("day_of_month", rf"(?P<which>本|当|次|下)(?:个)?月(?:{_DAY}|{_LAST})"),
    ("day_of_quarter", r"(?:day (?P<day>\d{1,2})|(?P<last>last) day) of the (?P<nth>first|second|third|last) "
                       r"month of (?:the )?(?P<which>this|next) quarter"),
    ("day_of_quarter", rf"(?P<which>本|当|次|下)(?:个)?季度?(?:的)?(?:第(?P<nth>[一二三123])个?月|(?P<nth2>首|末)月)"
                       rf"(?:{_DAY}|{_LAST})"),
    ("date_of_year", rf"(?P<month>{_MONTH_WORDS}) (?P<day>\d{{1,2}})(?:st|nd|rd|th)? of (?:the )?"
                     r"(?P<which>this|next) year"),
    ("date_of_year", rf"(?P<which>本|当|今|次|下一|下|翌|明)年(?P<month>\d{{1,2}})月(?:{_DAY}|{_LAST})"),
    ("date_of_year", r"end of the (?P<quarter>first|second|third|fourth|last) quarter of (?:the )?"
                     r"(?P<which>this|next) year"),
    ("date_of_year", r"(?P<which>本|当|今|次|下一|下|翌|明)年(?:的)?第?(?P<quarter>[一二三四1234])季度"
                     r"(?:内|末|底|前)?"),
    ("weekday", rf"(?P<weekday>{_WEEKDAY_WORDS}) of (?:this|the) week"),
    ("weekday", r"(?:本周|当周)(?:星期|礼拜)?(?P<cn>[一二三四五六日天])|(?:星期|周|礼拜)(?P<cn2>[一二三四五六日天])"),
    ("same_day", r"same day|当日|当天|同日|即日"),
    ("next_day", r"next day|the day after|次日|翌日|第二天|第2天"),
))


def _normal(text: str) -> str:
    normal = " ".join(unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower().split())
    return _CJK_SPACE.sub(r"\1", normal)


def parse_due_rule(text: str) -> DueRule:
    """Read a period-relative rule in English or Chinese (simplified or traditional); see DUE_RULE_SHAPES.

    A trailing "前" is accepted: whether it includes the day is the rule's ``inclusive`` setting.
    """
    normal = _normal(text)
    for kind, pattern in _RULES:
        match = pattern.fullmatch(normal)
        if match:
            try:
                return _rule_from(kind, {k: v for k, v in match.groupdict().items() if v is not None}, text)
            except ValidationError as exc:  # reshaped: the policy loader shows one plain sentence
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    raise ValueError(f'expected a rule like "day 15 of next month", got "{text}" (accepted: {DUE_RULE_SHAPES})')


def _rule_from(kind: DueKind, parts: dict[str, str], text: str) -> DueRule:
    day = 31 if "last" in parts else int(parts.get("day", 31))
    if not 1 <= day <= 31:
        raise ValueError(f'the day must be between 1 and 31, got "{text}"')
    offset = _THIS_NEXT.get(parts.get("which", "this"), 0)
    if kind == "day_of_quarter":
        return DueRule(kind=kind, day=day, offset=offset, month=_ORDINAL[parts.get("nth") or parts["nth2"]],
                       text=text)
    if kind == "date_of_year":
        if "quarter" in parts:  # the end of that quarter: its third month, clamped day 31
            return DueRule(kind=kind, day=31, offset=offset, month=_ORDINAL[parts["quarter"]] * 3, text=text)
        month = _MONTHS.get(parts["month"]) or int(parts["month"])
        if not 1 <= month <= 12:
            raise ValueError(f'the month must be between 1 and 12, got "{text}"')
        return DueRule(kind=kind, day=day, offset=offset, month=month, text=text)
    if kind == "weekday":
        weekday = parts.get("weekday") or "周" + (parts.get("cn") or parts["cn2"])
        return DueRule(kind=kind, weekday=parse_weekday(weekday), text=text)
    if kind in ("same_day", "next_day"):
        return DueRule(kind=kind, text=text)
    return DueRule(kind=kind, day=day, offset=offset, text=text)


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, monthdays.monthrange(year, month)[1]))


def nominal_date(period: Period, rule: DueRule, *, inclusive: bool = True) -> date:
    """The date ``rule`` names for ``period``, before any non-working-day shift (module docstring)."""
    end = period.end
    if rule.kind == "day_of_month":
        first = add_months(end.replace(day=1), rule.offset)
        day = _clamped(first.year, first.month, rule.day)
    elif rule.kind == "day_of_quarter":
        quarter_start = date(end.year, (end.month - 1) // 3 * 3 + 1, 1)
        first = add_months(quarter_start, 3 * rule.offset + (rule.month or 1) - 1)
        day = _clamped(first.year, first.month, rule.day)
    elif rule.kind == "date_of_year":
        day = _clamped(end.year + rule.offset, rule.month or 1, rule.day)
    elif rule.kind == "weekday":
        day = end - timedelta(days=(end.weekday() - (rule.weekday or 0)) % 7)
    elif rule.kind == "same_day":
        day = end
    else:
        day = end + _ONE_DAY
    return day if inclusive else day - _ONE_DAY


class DueDate(BaseModel):
    """A due instant in the policy's zone; ``at`` is None when the rule skipped the period.

    ``internal_at`` is the internal deadline ``lead_time`` before ``at`` (None without a lead time).
    """

    model_config = _FROZEN
    at: PendulumDateTime | None
    nominal: date
    shift: Shift
    provisional: bool
    internal_at: PendulumDateTime | None = None


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
    lead_time: WorkingDuration | None = None,
    tz: str = "Asia/Shanghai",
) -> DueDate:
    """When ``period``'s report is due under ``rule`` (rules in the module docstring)."""
    if at_time.tzinfo is not None:
        raise ValueError(f"at_time is a wall time in {tz}; pass it without a time zone, got {at_time}")
    nominal = nominal_date(period, rule, inclusive=inclusive)
    return finish_due(nominal, calendar, at_time=at_time, non_working_day=non_working_day, lead_time=lead_time,
                      tz=tz)


def finish_due(nominal: date, calendar: WorkCalendar, *, at_time: time, non_working_day: NonWorkingDayRule,
               lead_time: WorkingDuration | None, tz: str) -> DueDate:
    """Shift ``nominal`` by the non-working-day rule, put it at ``at_time`` and add the internal deadline."""
    final, shift = shift_for_non_working_day(nominal, non_working_day, calendar)
    if final is None:
        return DueDate(at=None, nominal=nominal, shift=shift, provisional=calendar.spans_provisional(nominal, nominal))
    at = _at(final, at_time, tz)
    return with_lead_time(DueDate(at=at, nominal=nominal, shift=shift,
                                  provisional=calendar.spans_provisional(nominal, final)), lead_time, calendar, tz)


def with_lead_time(due: DueDate, lead_time: WorkingDuration | None, calendar: WorkCalendar, tz: str) -> DueDate:
    """``due`` with its internal deadline set ``lead_time`` before it (or cleared without a lead time)."""
    if due.at is None or lead_time is None:
        return due.model_copy(update={"internal_at": None})
    internal = deadline_before(due.at, lead_time, calendar, tz=tz)
    return due.model_copy(update={"internal_at": internal.at, "provisional": due.provisional or internal.provisional})


def deadline_before(due_at: pendulum.DateTime, duration: WorkingDuration, calendar: WorkCalendar, *,
                    tz: str = "Asia/Shanghai", workday_hours: tuple[time, time] = (time(9), time(17))) -> Deadline:
    """The instant ``duration`` before ``due_at``, counted back as the module docstring says (lead time)."""
    local = pendulum.instance(due_at).in_timezone(tz)
    if duration.counting == "calendar":
        at = local.subtract(days=duration.amount) if duration.unit == "days" else _minus(local, timedelta(
            hours=duration.amount), tz)
    elif duration.unit == "days":
        day = local.date()
        for _ in range(duration.amount):
            day = calendar.previous_working_day(day)
        at = _at(day, local.time(), tz)
    else:
        window = (time(0), None) if duration.counting == "working_days" else workday_hours
        at = _count_back(local, timedelta(hours=duration.amount), calendar, tz, window)
    return Deadline(at=at, provisional=calendar.spans_provisional(at.date(), local.date()))


def _count_back(local: pendulum.DateTime, remaining: timedelta, calendar: WorkCalendar, tz: str,
                window: tuple[time, time | None]) -> pendulum.DateTime:
    """Spend ``remaining`` backwards inside ``window`` (None = the midnight ending the day) of working days."""
    day = local.date()
    for _ in range(_MAX_SCAN_DAYS):
        if calendar.is_working_day(day):
            closes = min(local, _at(day + _ONE_DAY, time(0), tz) if window[1] is None else _at(day, window[1], tz))
            opens = _at(day, window[0], tz)
            if opens < closes:
                available = closes - opens
                if remaining <= available:
                    return _minus(closes, remaining, tz)
                remaining -= available
        day -= _ONE_DAY
    raise ValueError(f"no working time within {_MAX_SCAN_DAYS} days before {local}; the lead time is too long")


def _minus(moment: pendulum.DateTime, delta: timedelta, tz: str) -> pendulum.DateTime:
    # Elapsed time is subtracted in UTC so a daylight-saving change in `tz` cannot stretch or shrink it.
    return (moment.in_timezone("UTC") - delta).in_timezone(tz)


def _at(day: date, clock: time, tz: str) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second,
                             clock.microsecond, tz=tz)

