"""China's working-day calendar, loaded from the State Council's yearly holiday notices.

Calendar rules (each one has a named test in tests/policies/test_calendar.py):

- A day is a working day when it is Monday–Friday and no loaded arrangement lists it as a day off,
  or when an arrangement lists it as a make-up working day (调休上班), whatever its weekday.
- A statutory holiday day is a day inside a holiday's ``days_off`` range (放假). An ordinary
  weekend is not a holiday, even when it is not a working day.
- A year without a loaded arrangement is *provisional*: its working days are guessed as Monday–Friday,
  and callers must flag every date computed from it rather than trust it silently.
- A holiday block is the run of consecutive non-working days around a day that contains at least one
  statutory holiday day, e.g. 2026-02-15 … 2026-02-23 for 春节 2026.
- ``next_working_day`` and ``previous_working_day`` are strict (never return the day itself);
  ``add_working_days`` does not count the start day, so ``add_working_days(d, 1) == next_working_day(d)``.

Limitation: a notice for year Y+1 may also change days at the end of year Y (the 2023 notice made
2022-12-31 a day off). Such days follow whichever files are loaded.

Exceptions: ValueError └── CalendarDataError (a holiday file or set of files is wrong; one line per problem).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["CalendarDataError", "DayRange", "Holiday", "HolidayYear", "WorkCalendar", "load_holiday_year",
           "load_holiday_year_text"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ONE_DAY = timedelta(days=1)
_MAX_SCAN_DAYS = 3660  # no real arrangement has a non-working run anywhere near ten years
_MAX_RANGE_DAYS = 31
SHIPPED_HOLIDAYS = Path(__file__).resolve().parents[1] / "config" / "holidays"
"""The holiday-year files shipped with duly (config/holidays/YYYY.yaml), as a path."""

Loc = tuple[str | int, ...]


class CalendarDataError(ValueError):
    """Holiday data that cannot be trusted; each entry of ``problems`` is one "file:line:col: message"."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class _ArrangementProblems(ValueError):
    """Carries located problems out of a pydantic validator so the loader can point at lines."""

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in items))


class DayRange(BaseModel):
    """Consecutive days ``start`` … ``end``, both included."""

    model_config = _FROZEN
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.end < self.start:
            raise ValueError(f"the range ends ({self.end}) before it starts ({self.start})")
        if (self.end - self.start).days >= _MAX_RANGE_DAYS:
            raise ValueError(f"{self} is longer than {_MAX_RANGE_DAYS} days; check the dates")
        return self

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += _ONE_DAY

    def __str__(self) -> str:
        return f"{self.start} … {self.end}"


class Holiday(BaseModel):
    """One holiday of a notice: its days off (放假) and the weekend days worked instead (调休上班)."""

    model_config = _FROZEN
    name: str = Field(min_length=1)
    days_off: tuple[DayRange, ...]
    makeup_workdays: tuple[date, ...] = ()

    @field_validator("days_off", mode="before")
    @classmethod
    def _accept_yaml_shapes(cls, value: Any) -> Any:
        """``[start, end]`` is one range (the usual form), one date is one day, a list of pairs is many."""
        items = list(value) if isinstance(value, list | tuple) else [] if value is None else [value]
        if not items:
            raise ValueError("list at least one day off, as [start, end]")
        if not any(isinstance(item, list | tuple | dict | DayRange) for item in items):
            if len(items) > 2:
                raise ValueError(f"expected [start, end] or a list of such pairs, got {len(items)} dates")
            items = [items]
        return [{"start": i[0], "end": i[-1]} if isinstance(i, list | tuple) and len(i) in (1, 2) else i
                for i in items]


class HolidayYear(BaseModel):
    """One year's official arrangement, as published in 国务院办公厅关于YYYY年部分节假日安排的通知.

    Checks: make-up working days fall on a Saturday or Sunday; days off lie in the year (a range may run
    over New Year into the neighbouring month, as 2022-12-31 … 2023-01-02 did); no day is listed twice.
    """

    model_config = _FROZEN
    year: int = Field(ge=1949, le=2200)
    source: str = Field(min_length=1)
    published: date
    holidays: tuple[Holiday, ...]

    @model_validator(mode="after")
    def _consistent(self) -> HolidayYear:
        problems = _arrangement_problems(self)
        if problems:
            raise _ArrangementProblems(problems)
        return self


def _arrangement_problems(arrangement: HolidayYear) -> list[tuple[Loc, str]]:
    year = arrangement.year
    first, last = date(year, 1, 1), date(year, 12, 31)
    window = (date(year - 1, 12, 1), date(year + 1, 1, 31))
    problems: list[tuple[Loc, str]] = []
    if not arrangement.holidays:
        problems.append((("holidays",), "list at least one holiday"))
    ranges: list[tuple[Loc, str, DayRange]] = []
    for i, holiday in enumerate(arrangement.holidays):
        for j, span in enumerate(holiday.days_off):
            loc: Loc = ("holidays", i, "days_off", j)
            if span.end < first or span.start > last or span.start < window[0] or span.end > window[1]:
                problems.append((loc, f"days off {span} lie outside {year}, the year of this notice"))
            for other_loc, other_name, other in ranges:
                if span.start <= other.end and other.start <= span.end:
                    where = f"{_format_loc(other_loc)} ({other_name})"
                    problems.append((loc, f"days off {span} overlap {other} listed at {where}"))
            ranges.append((loc, holiday.name, span))
    days_off = {day: name for _, name, span in ranges for day in span.days()}
    seen: set[date] = set()
    for i, holiday in enumerate(arrangement.holidays):
        for k, day in enumerate(holiday.makeup_workdays):
            loc = ("holidays", i, "makeup_workdays", k)
            if day.weekday() < 5:
                problems.append((loc, f"{day} is a {day:%A}; a make-up working day "
                                      "(调休上班) must be a Saturday or Sunday"))
            if not window[0] <= day <= window[1]:
                problems.append((loc, f"make-up working day {day} lies outside {year}"))
            if day in days_off:
                problems.append((loc, f"{day} is both a make-up working day and a day off ({days_off[day]})"))
            if day in seen:
                problems.append((loc, f"make-up working day {day} is listed twice"))
            seen.add(day)
    return problems


def load_holiday_year(path: Path) -> HolidayYear:
    """Read one holiday file (config/holidays/YYYY.yaml); every problem in it is reported at once."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarDataError([f"{path}: cannot read the file ({exc.strerror})"]) from exc
    return load_holiday_year_text(text, file=path)


def load_holiday_year_text(text: str, *, file: Path | str) -> HolidayYear:
    """Parse one year's arrangement given as text (an upload); ``file`` names it in the problems, and a
    name like ``2027.yaml`` must match the year inside, as for a file on disk."""
    path = Path(file)
    root: yaml.Node | None = None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise CalendarDataError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    except ValueError as exc:  # PyYAML reports an impossible date such as 2027-02-30 without a position
        bad = [f"{_where(path, node)}: {node.value} is not a date" for node in _bad_dates(root)]
        raise CalendarDataError(bad or [f"{path}: {exc}"]) from None
    if not isinstance(data, dict):
        raise CalendarDataError([f"{path}: expected a mapping with keys year, source, published, holidays"])
    try:
        arrangement = HolidayYear.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(path, root, loc, msg) for loc, msg in _flatten(exc)]
        raise CalendarDataError(problems) from None
    if path.stem.isdigit() and int(path.stem) != arrangement.year:
        msg = f"the file is named {path.name} but holds year {arrangement.year}"
        raise CalendarDataError([_describe(path, root, ("year",), msg)])
    return arrangement


def _flatten(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _ArrangementProblems):
            for inner, msg in cause.items:
                yield loc + inner, msg
        elif error["type"] == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            yield loc, f'unknown key "{key}"\n  hint: {hint}(allowed: {", ".join(allowed)})'
        elif error["type"] == "missing":
            yield loc, f'missing key "{loc[-1]}"'
        else:
            msg = error["msg"].removeprefix("Value error, ")
            got = error.get("input")
            yield loc, msg if isinstance(got, dict | list) else f"{msg}, got {got!r}"


def _allowed_keys(parent: Loc) -> list[str]:
    model: type[BaseModel] = HolidayYear
    if len(parent) >= 2 and parent[0] == "holidays":
        model = Holiday if len(parent) == 2 else DayRange
    return list(model.model_fields)


def _describe(path: Path, root: yaml.Node | None, loc: Loc, msg: str) -> str:
    where = _where(path, _node_at(root, loc))
    return f"{where}: {_format_loc(loc)}: {msg}" if loc else f"{where}: {msg}"


def _where(path: Path, node: yaml.Node | None) -> str:
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else str(path)


def _bad_dates(node: yaml.Node | None) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
        try:
            yaml.SafeLoader("").construct_yaml_timestamp(node)
        except ValueError:
            yield node
    elif isinstance(node, yaml.SequenceNode | yaml.MappingNode):
        for child in node.value:
            for part in child if isinstance(child, tuple) else (child,):
                yield from _bad_dates(part)


def _node_at(root: yaml.Node | None, loc: Loc) -> yaml.Node | None:
    """The deepest YAML node along ``loc``; a mapping entry is marked at its key."""
    node = root
    for index, part in enumerate(loc):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = key if index == len(loc) - 1 else value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class WorkCalendar:
    """Working days in mainland China, from the loaded yearly arrangements (see the module docstring)."""

    def __init__(self, years: Iterable[HolidayYear]) -> None:
        self._years: dict[int, HolidayYear] = {}
        self._days_off: dict[date, str] = {}
        self._makeup: dict[date, str] = {}
        owner: dict[date, int] = {}
        problems: list[str] = []
        for arrangement in years:
            if arrangement.year in self._years:
                problems.append(f"year {arrangement.year} is loaded twice")
                continue
            self._years[arrangement.year] = arrangement
            for holiday in arrangement.holidays:
                entries = [(d, self._days_off) for span in holiday.days_off for d in span.days()]
                entries += [(d, self._makeup) for d in holiday.makeup_workdays]
                for day, table in entries:
                    if day in owner:
                        problems.append(f"{day} is listed by both the {owner[day]} and the "
                                        f"{arrangement.year} arrangements")
                        continue
                    owner[day] = arrangement.year
                    table[day] = holiday.name
        if problems:
            raise CalendarDataError(problems)

    @classmethod
    def from_directory(cls, path: Path) -> WorkCalendar:
        """Load every ``*.yaml`` file in ``path``; problems from all files are reported together."""
        if not path.is_dir():
            raise CalendarDataError([f"{path}: no such directory of holiday files"])
        years: list[HolidayYear] = []
        problems: list[str] = []
        for file in sorted(path.glob("*.yaml")):
            try:
                years.append(load_holiday_year(file))
            except CalendarDataError as exc:
                problems.extend(exc.problems)
        if problems:
            raise CalendarDataError(problems)
        return cls(years)

    @classmethod
    def default(cls) -> WorkCalendar:
        """The arrangements shipped in config/holidays (found by path: the core imports nothing of ours)."""
        return cls.from_directory(SHIPPED_HOLIDAYS)

    @property
    def years(self) -> tuple[int, ...]:
        """Years with an official arrangement loaded, ascending."""
        return tuple(sorted(self._years))

    def is_known(self, year: int) -> bool:
        return year in self._years

    def is_provisional(self, day: date) -> bool:
        """True when ``day``'s year has no official arrangement loaded (weekdays are only a guess)."""
        return not self.is_known(_as_date(day).year)

    def spans_provisional(self, first: date, last: date) -> bool:
        """True when any day from ``first`` to ``last`` (either order) lies in a provisional year."""
        low, high = sorted((_as_date(first).year, _as_date(last).year))
        return any(not self.is_known(year) for year in range(low, high + 1))

    def is_working_day(self, day: date) -> bool:
        """Make-up day → working; listed day off → not; otherwise Monday–Friday."""
        day = _as_date(day)
        if day in self._makeup:
            return True
        return day not in self._days_off and day.weekday() < 5

    def is_holiday(self, day: date) -> bool:
        """A statutory day off listed in an arrangement; ordinary weekends are not holidays."""
        return _as_date(day) in self._days_off

    def holiday_name(self, day: date) -> str | None:
        """The holiday ``day`` belongs to (e.g. "国庆节"), or None."""
        return self._days_off.get(_as_date(day))

    def holiday_block(self, day: date) -> tuple[date, date] | None:
        """The run of consecutive non-working days around ``day`` if it holds a statutory holiday day.

        None for a working day and for a run that is only an ordinary weekend.
        """
        day = _as_date(day)
        if self.is_working_day(day):
            return None
        start, end = self._step(day, -1) + _ONE_DAY, self._step(day, 1) - _ONE_DAY
        if any(self.is_holiday(start + timedelta(days=i)) for i in range((end - start).days + 1)):
            return start, end
        return None

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        return self._step(_as_date(day), 1)

    def previous_working_day(self, day: date) -> date:
        """The last working day strictly before ``day``."""
        return self._step(_as_date(day), -1)

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after ``day`` (``day`` itself is not counted); n=0 returns ``day``."""
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        day = _as_date(day)
        for _ in range(n):
            day = self._step(day, 1)
        return day

    def _step(self, origin: date, direction: int) -> date:
        day = origin
        for _ in range(_MAX_SCAN_DAYS):
            day += direction * _ONE_DAY
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days of {origin}; check the holiday files")


def _as_date(day: date) -> date:
    # A datetime is a date too, but its calendar day depends on a zone the caller must choose.
    if isinstance(day, datetime):
        raise TypeError(f"expected a date, got the instant {day!r}; convert it to the policy's zone first")
    return day
