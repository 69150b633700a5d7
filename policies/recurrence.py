"""Recurrences of reporting obligations and the periods they cut the calendar into.

Period rules (each one has a named test in tests/policies/test_recurrence.py):

- A period is a run of whole days, ``start`` … ``end`` (both included), named by a stable key:

  ============  =================================  ==================
  recurrence    period                             key
  ============  =================================  ==================
  daily         one day                            ``2026-11-20``
  weekly        an ISO week, Monday … Sunday       ``2026-W47``
  monthly       a calendar month                   ``2026-11``
  quarterly     Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec ``2026-Q4``
  half-yearly   Jan–Jun, Jul–Dec                   ``2026-H2``
  yearly        a calendar year                    ``2026``
  every N …     N weeks or N months from ``from``  ``2026-01-05/P2W``
  ============  =================================  ==================

- A weekly key uses the ISO week-numbering year: Monday 2025-12-29 is in ``2026-W01``.
- ``{every: N, unit: weeks|months, from: DATE}`` starts its first period on ``from``; each period
  lasts N weeks (N × 7 days) or N months and the next one starts the day after. There is no period
  before ``from``. The key is the ISO 8601 interval ``start/PnW`` or ``start/PnM``. A month-based
  ``from`` must be day 1–28, so every period starts on the same day of the month.
- Periods of one recurrence tile time: each starts the day after the previous one ends, without gaps or
  overlaps. ``periods_between(first, last, r)`` lists every period that overlaps ``first`` … ``last``.
"""

from __future__ import annotations

import calendar as monthdays
import re
import unicodedata
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "RECURRENCE_SHAPES",
    "WEEKDAYS",
    "Period",
    "PeriodKind",
    "Recurrence",
    "add_months",
    "monthly_periods",
    "next_period",
    "parse_recurrence",
    "parse_weekday",
    "period_containing",
    "period_from_key",
    "periods_between",
    "previous_period",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ONE_DAY = timedelta(days=1)

FixedKind = Literal["daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly"]
PeriodKind = Literal["daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly", "every"]
RECURRENCE_SHAPES = ("daily, weekly, monthly, quarterly, half-yearly, yearly "
                     "or {every: N, unit: weeks|months, from: DATE}")

_KIND_WORDS: dict[str, FixedKind] = {
    "daily": "daily", "每日": "daily", "每天": "daily",
    "weekly": "weekly", "每周": "weekly",
    "monthly": "monthly", "每月": "monthly",
    "quarterly": "quarterly", "每季": "quarterly", "每季度": "quarterly",
    "half-yearly": "half-yearly", "half_yearly": "half-yearly", "semi-annually": "half-yearly",
    "每半年": "half-yearly",
    "yearly": "yearly", "annually": "yearly", "annual": "yearly", "每年": "yearly",
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_WORDS = {name: i for i, name in enumerate(WEEKDAYS)} | {name[:3]: i for i, name in enumerate(WEEKDAYS)}
_CN_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_CN_WEEKDAY = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")
_TRADITIONAL = str.maketrans({"週": "周", "禮": "礼", "與": "与"})


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower().split())


def parse_weekday(text: str) -> int:
    """Monday = 0 … Sunday = 6, from "friday", "fri", "周五" or "星期五"."""
    normal = _normal(text)
    if normal in _WEEKDAY_WORDS:
        return _WEEKDAY_WORDS[normal]
    match = _CN_WEEKDAY.fullmatch(normal)
    if match:
        return _CN_WEEKDAYS[match.group(1)]
    raise ValueError(f"expected a weekday such as friday or 周五, got {text!r}")


class Recurrence(BaseModel):
    """How often an obligation recurs: one of the fixed kinds, or every N weeks/months from a date.

    In YAML a fixed kind is a word (``monthly``, ``每月``); the other form is
    ``{every: 2, unit: weeks, from: 2026-01-05}``.
    """

    model_config = _FROZEN
    kind: PeriodKind
    every: int | None = Field(default=None, ge=1, le=99)
    unit: Literal["weeks", "months"] | None = None
    start: date | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"kind": _fixed_kind(data)}
        if isinstance(data, dict) and "kind" not in data:
            unknown = sorted(str(k) for k in data if k not in ("every", "unit", "from"))
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r} in a recurrence (allowed: every, unit, from)")
            missing = [k for k in ("every", "unit", "from") if k not in data]
            if missing:
                raise ValueError(f"a recurrence {{every: N, unit: weeks|months, from: DATE}} "
                                 f"needs {', '.join(missing)}")
            return {"kind": "every", "every": data["every"], "unit": data["unit"], "start": data["from"]}
        if isinstance(data, dict | Recurrence):
            return data
        raise ValueError(f"expected {RECURRENCE_SHAPES}, got {data!r}")

    @model_validator(mode="after")
    def _complete(self) -> Recurrence:
        stepped = (self.every, self.unit, self.start)
        if self.kind == "every" and None in stepped:
            raise ValueError("a recurrence {every: N, unit: weeks|months, from: DATE} needs every, unit and from")
        if self.kind != "every" and stepped != (None, None, None):
            raise ValueError(f"a {self.kind} recurrence takes no every, unit or from")
        if self.unit == "months" and self.start is not None and self.start.day > 28:
            raise ValueError(f"from: {self.start} is day {self.start.day}; a recurrence in months must start on "
                             "day 1–28 so every period starts on the same day of the month")
        return self

    @property
    def weekly(self) -> bool:
        """True for ``weekly`` and ``every N weeks``: the recurrences a weekday rule fits."""
        return self.kind == "weekly" or self.unit == "weeks"

    def __str__(self) -> str:
        if self.kind == "every":
            return f"every {self.every} {self.unit} from {self.start}"
        return self.kind


def _fixed_kind(text: str) -> FixedKind:
    kind = _KIND_WORDS.get(_normal(text))
    if kind is None:
        raise ValueError(f"expected {RECURRENCE_SHAPES}, got {text!r}")
    return kind


def parse_recurrence(value: str | dict[str, Any] | Recurrence) -> Recurrence:
    """A Recurrence from its YAML form (a word, or ``{every, unit, from}``)."""
    return value if isinstance(value, Recurrence) else Recurrence.model_validate(value)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthdays.monthrange(year, month + 1)[1]))


def _fixed_bounds(day: date, kind: FixedKind) -> tuple[date, date, str]:
    if kind == "daily":
        return day, day, day.isoformat()
    if kind == "weekly":
        iso = day.isocalendar()
        monday = day - timedelta(days=iso.weekday - 1)
        return monday, monday + timedelta(days=6), f"{iso.year:04d}-W{iso.week:02d}"
    if kind == "yearly":
        return date(day.year, 1, 1), date(day.year, 12, 31), f"{day.year:04d}"
    months, label = {"monthly": (1, ""), "quarterly": (3, "Q"), "half-yearly": (6, "H")}[kind]
    index = (day.month - 1) // months
    start = date(day.year, index * months + 1, 1)
    end = add_months(start, months) - _ONE_DAY
    key = f"{day.year:04d}-{day.month:02d}" if months == 1 else f"{day.year:04d}-{label}{index + 1}"
    return start, end, key


def _step_end(start: date, every: int, unit: str) -> date:
    return (start + timedelta(weeks=every) if unit == "weeks" else add_months(start, every)) - _ONE_DAY


def _step_key(start: date, every: int, unit: str) -> str:
    return f"{start.isoformat()}/P{every}{'W' if unit == 'weeks' else 'M'}"


_STEP_KEY = re.compile(r"(\d{4}-\d{2}-\d{2})/P(\d{1,2})([WM])")


class Period(BaseModel):
    """A reporting period: its first and last day (both included) and a stable key such as "2026-10"."""

    model_config = _FROZEN
    kind: PeriodKind
    start: date
    end: date
    key: str

    @model_validator(mode="after")
    def _aligned(self) -> Period:
        if self.kind == "every":
            match = _STEP_KEY.fullmatch(self.key)
            if match is None or date.fromisoformat(match.group(1)) != self.start:
                raise ValueError(f"not a stepped period: expected a key like '{self.start}/P2W', got {self.key!r}")
            unit = "weeks" if match.group(3) == "W" else "months"
            start, end, key = self.start, _step_end(self.start, int(match.group(2)), unit), self.key
        else:
            start, end, key = _fixed_bounds(self.start, self.kind)
        if (self.start, self.end, self.key) != (start, end, key):
            raise ValueError(f"not a {self.kind} period: expected {start} … {end} with key {key!r}")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def _recurrence(value: Recurrence | str) -> Recurrence:
    if isinstance(value, Recurrence):
        return value
    if value == "every":
        raise ValueError("an every-N recurrence needs its step: pass Recurrence(every=…, unit=…, from=…)")
    if value not in _KIND_WORDS.values():
        kinds = ", ".join(dict.fromkeys(_KIND_WORDS.values()))
        raise ValueError(f"unknown period kind {value!r}; expected one of: {kinds}")
    return Recurrence(kind=value)  # type: ignore[arg-type]


def period_containing(day: date, recurrence: Recurrence | str) -> Period:
    """The period of ``recurrence`` that contains ``day`` (a ValueError before an every-N's ``from``)."""
    rec = _recurrence(recurrence)
    if rec.kind != "every":
        start, end, key = _fixed_bounds(day, rec.kind)
        return Period.model_construct(kind=rec.kind, start=start, end=end, key=key)  # aligned by construction
    assert rec.start is not None and rec.every is not None and rec.unit is not None
    if day < rec.start:
        raise ValueError(f"{day} is before {rec.start}, where the recurrence {rec} starts")
    if rec.unit == "weeks":
        start = rec.start + timedelta(weeks=(day - rec.start).days // (7 * rec.every) * rec.every)
    else:
        months = (day.year - rec.start.year) * 12 + day.month - rec.start.month
        start = add_months(rec.start, months // rec.every * rec.every)
        if start > day:
            start = add_months(start, -rec.every)
    return _stepped(start, rec.every, rec.unit)


def _stepped(start: date, every: int, unit: str) -> Period:
    # aligned by construction, so the validator's second computation of the bounds is skipped
    return Period.model_construct(kind="every", start=start, end=_step_end(start, every, unit),
                                  key=_step_key(start, every, unit))


def periods_between(first: date, last: date, recurrence: Recurrence | str) -> list[Period]:
    """Every period of ``recurrence`` that overlaps ``first`` … ``last`` (both included), in order."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    rec = _recurrence(recurrence)
    if rec.start is not None:
        if last < rec.start:
            return []
        first = max(first, rec.start)
    periods = [period_containing(first, rec)]
    while periods[-1].end < last:
        periods.append(next_period(periods[-1]))
    return periods


def monthly_periods(first: date, last: date) -> list[Period]:
    """Every month that overlaps ``first`` … ``last`` (both included), in order."""
    return periods_between(first, last, "monthly")


def next_period(period: Period) -> Period:
    """The period of the same recurrence that starts the day after ``period`` ends."""
    if period.kind == "every":
        _, every, unit = _step_of(period.key)
        return _stepped(period.end + _ONE_DAY, every, unit)
    return period_containing(period.end + _ONE_DAY, period.kind)


def previous_period(period: Period) -> Period:
    """The period of the same recurrence that ends the day before ``period`` starts."""
    if period.kind == "every":
        _, every, unit = _step_of(period.key)
        start = period.start - timedelta(weeks=every) if unit == "weeks" else add_months(period.start, -every)
        return _stepped(start, every, unit)
    return period_containing(period.start - _ONE_DAY, period.kind)


def _step_of(key: str) -> tuple[date, int, str]:
    match = _STEP_KEY.fullmatch(key)
    if match is None:
        raise ValueError(f"not a stepped period key: {key!r}")
    return date.fromisoformat(match.group(1)), int(match.group(2)), "weeks" if match.group(3) == "W" else "months"


_KEY_PATTERNS: dict[str, re.Pattern[str]] = {
    "daily": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "weekly": re.compile(r"(\d{4})-W(\d{2})"),
    "monthly": re.compile(r"(\d{4})-(\d{2})"),
    "quarterly": re.compile(r"(\d{4})-Q([1-4])"),
    "half-yearly": re.compile(r"(\d{4})-H([12])"),
    "yearly": re.compile(r"(\d{4})"),
}


def period_from_key(key: str, recurrence: Recurrence | str) -> Period:
    """The period of ``recurrence`` named ``key`` (the inverse of ``Period.key``); ValueError if it is not one."""
    rec = _recurrence(recurrence)
    try:
        if rec.kind == "every":
            start, every, unit = _step_of(key)
            period = period_containing(start, rec)
        else:
            match = _KEY_PATTERNS[rec.kind].fullmatch(key)
            if match is None:
                raise ValueError(key)
            parts = [int(p) for p in match.groups()]
            day = {"daily": lambda: date(*parts), "weekly": lambda: date.fromisocalendar(parts[0], parts[1], 1),
                   "monthly": lambda: date(parts[0], parts[1], 1),
                   "quarterly": lambda: date(parts[0], parts[1] * 3 - 2, 1),
                   "half-yearly": lambda: date(parts[0], parts[1] * 6 - 5, 1),
                   "yearly": lambda: date(parts[0], 1, 1)}[rec.kind]()
            period = period_containing(day, rec)
    except ValueError:
        period = None
    if period is None or period.key != key:
        raise ValueError(f"{key!r} is not a period key of the recurrence {rec}")
    return period
