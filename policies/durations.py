"""SLAs and event-relative limits ("24 hours on working days", "3个工作日", "2天") and their deadlines.

Counting rules (each one has a named test in tests/policies/test_durations.py); all of them are
computed in the policy's zone and never read the clock:

- ``calendar`` hours: that many elapsed hours after the start ("2 hours", "2小时").
- ``calendar`` days: the same wall time that many days later ("2 days", "2天").
- ``working_days`` days: the end (23:59:59) of the n-th working day after the start day; the start day
  is not counted ("3 working days", "3个工作日"). From Friday 2026-02-13, 1 working day ends on the
  make-up Saturday 2026-02-14.
- ``working_days`` hours: elapsed time counted only while the clock is inside a working day (whole days,
  00:00–24:00); non-working days do not count ("24 hours on working days", "工作日24小时").
  Friday 17:00 + 24 h → Monday 17:00.
- ``working_hours``: time counted only inside the working hours (default 09:00–17:00) of working days
  ("8 working hours", "8个工作小时"). Friday 17:00 + 24 h → Wednesday 17:00.
- A deadline is provisional when any day from the start to the deadline lies in a year without an
  official holiday arrangement.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import pendulum
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)

from policies.calendar import WorkCalendar

__all__ = ["Deadline", "PendulumDateTime", "WorkingDuration", "add_duration", "parse_duration"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_MAX_SCAN_DAYS = 3660
_END_OF_DAY = time(23, 59, 59)

Unit = Literal["hours", "days"]
Counting = Literal["calendar", "working_days", "working_hours"]


def _to_pendulum(value: Any) -> pendulum.DateTime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an aware date-time with a UTC offset, got {value!r}")
    return pendulum.instance(value)


PendulumDateTime = Annotated[
    pendulum.DateTime,
    PlainValidator(_to_pendulum),
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware pendulum DateTime inside a pydantic model; serialised as ISO 8601 with its offset."""


_CJK_SPACE = re.compile(r"\s*([\u3400-\u9fff])\s*")
_TRADITIONAL = str.maketrans({"個": "个", "內": "内", "時": "时"})
_PATTERNS: tuple[tuple[re.Pattern[str], Unit, Counting], ...] = tuple(
    (re.compile(pattern), unit, counting)
    for pattern, unit, counting in (
        (r"(?:within )?(\d+) hours? on (?:normal )?working days", "hours", "working_days"),
        (r"(?:正常)?工作日内?(\d+)个?小时内?", "hours", "working_days"),
        (r"(?:within )?(\d+) working days?", "days", "working_days"),
        (r"(\d+)个?工作日内?", "days", "working_days"),
        (r"(?:within )?(\d+) working hours?", "hours", "working_hours"),
        (r"(\d+)个?工作小时内?", "hours", "working_hours"),
        (r"(?:within )?(\d+) (?:calendar )?days?", "days", "calendar"),
        (r"(\d+)(?:天|日)内?", "days", "calendar"),
        (r"(?:within )?(\d+) hours?", "hours", "calendar"),
        (r"(\d+)个?小时内?", "hours", "calendar"),
    )
)
_EXPECTED = (
    "expected a duration like '24 hours on working days', '3 working days', '2 days', '8 working hours'"
)


class WorkingDuration(BaseModel):
    """A limit such as "24 hours on working days"; a policy field of this type also accepts that text."""

    model_config = _FROZEN
    amount: int = Field(ge=1, le=9999)
    unit: Unit
    counting: Counting
    text: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return parse_duration(data).model_dump() if isinstance(data, str) else data

    @model_validator(mode="after")
    def _meaningful(self) -> WorkingDuration:
        if self.counting == "working_hours" and self.unit != "hours":
            raise ValueError("working_hours counting needs the unit hours")
        return self

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> WorkingDuration:
    """Read a duration in English or Chinese (simplified or traditional); see the module docstring."""
    normal = unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower()
    normal = _CJK_SPACE.sub(r"\1", " ".join(normal.split()))
    for pattern, unit, counting in _PATTERNS:
        match = pattern.fullmatch(normal)
        if match:
            amount = int(match.group(1))
            if not 1 <= amount <= 9999:
                raise ValueError(f"a duration must be between 1 and 9999 {unit}, got '{text}'")
            return WorkingDuration(amount=amount, unit=unit, counting=counting, text=text)
    raise ValueError(f"{_EXPECTED}, got '{text}'")


class Deadline(BaseModel):
    """When a duration runs out, in the policy's zone; ``provisional`` flags unpublished holiday years."""

    model_config = _FROZEN
    at: PendulumDateTime
    provisional: bool


def add_duration(
    start: datetime,
    duration: WorkingDuration,
    calendar: WorkCalendar,
    *,
    tz: str = "Asia/Shanghai",
    workday_hours: tuple[time, time] = (time(9), time(17)),
) -> Deadline:
    """The deadline ``duration`` after the aware instant ``start``, counted as the module docstring says."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be time-zone aware, got {start!r}")
    local = pendulum.instance(start).in_timezone(tz)
    if duration.counting == "calendar":
        at = local.add(days=duration.amount) if duration.unit == "days" else _plus(local, duration.amount, tz)
    elif duration.unit == "days":
        at = _at(calendar.add_working_days(_day(local), duration.amount), _END_OF_DAY, tz)
    elif duration.counting == "working_days":
        at = _count_hours(local, duration.amount, calendar, tz, (time(0), None))
    else:
        opens, closes = workday_hours
        if closes <= opens:
            raise ValueError(f"working hours must close after they open, got {opens}–{closes}")
        at = _count_hours(local, duration.amount, calendar, tz, (opens, closes))
    return Deadline(at=at, provisional=calendar.spans_provisional(_day(local), _day(at)))


def _count_hours(
    local: pendulum.DateTime,
    hours: int,
    calendar: WorkCalendar,
    tz: str,
    window: tuple[time, time | None],
) -> pendulum.DateTime:
    """Spend ``hours`` inside ``window`` (None = midnight ending the day) on working days only."""
    remaining = timedelta(hours=hours)
    day = _day(local)
    for _ in range(_MAX_SCAN_DAYS):
        if calendar.is_working_day(day):
            opens = max(local, _at(day, window[0], tz))
            end_day, end_time = (day + timedelta(days=1), time(0)) if window[1] is None else (day, window[1])
            closes = _at(end_day, end_time, tz)
            if opens < closes:
                available = closes - opens
                if remaining <= available:
                    return _plus(opens, remaining, tz)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"no deadline within {_MAX_SCAN_DAYS} days of {local}; the duration is too long")


def _plus(moment: pendulum.DateTime, amount: int | timedelta, tz: str) -> pendulum.DateTime:
    # Elapsed time is added in UTC so a daylight-saving change in `tz` cannot stretch or shrink it.
    delta = amount if isinstance(amount, timedelta) else timedelta(hours=amount)
    return (moment.in_timezone("UTC") + delta).in_timezone(tz)


def _at(day: date, clock: time, tz: str) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second, tz=tz)


def _day(moment: datetime) -> date:
    return date(moment.year, moment.month, moment.day)
