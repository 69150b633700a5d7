"""Holiday years uploaded by an administrator, and the working-day calendar built from them.

The calendar is the shipped files (config/holidays/YYYY.yaml) plus the uploaded years; an uploaded year
replaces the shipped file of the same year. An uploaded text passes the same checks as a file that
`duly check` reads (year matches the name, dates inside the year, make-up days on weekends, no day both
off and worked, ...) and must fit with the other years (no day listed by two arrangements).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.calendar import CalendarDataError, HolidayYear, WorkCalendar, load_holiday_year, load_holiday_year_text
from store.audit import append_audit
from store.errors import InvalidInputError
from store.tables import HolidayYearRow

log = logging.getLogger("duly.store")

FIRST_YEAR, LAST_YEAR = 1949, 2200
"""The years a holiday-year file may hold (policies.calendar.HolidayYear)."""


@dataclass(frozen=True)
class KnownYear:
    """One year the calendar knows, and where its arrangement comes from."""

    year: int
    source: str  # shipped | uploaded
    text: str
    content_hash: str
    notice: str  # the notice it copies (国务院办公厅关于YYYY年部分节假日安排的通知)
    overrides_shipped: bool = False
    uploaded_by: str | None = None
    uploaded_at: datetime | None = None


_LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)


def located_problems(problems: tuple[str, ...]) -> list[dict[str, Any]]:
    """"2027.yaml:7:23: message" → {"line": 7, "column": 23, "message": ..., "severity": "error"}, in
    the order of the text."""
    found: list[dict[str, Any]] = []
    for text in problems:
        match = _LOCATED.match(text)
        line, column, message = (int(match["line"]), int(match["col"]), match["message"]) if match \
            else (1, 1, text.split(": ", 1)[-1])
        found.append({"line": line, "column": column, "message": message, "severity": "error"})
    return sorted(found, key=lambda p: (p["line"], p["column"]))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_year(year: int, text: str) -> HolidayYear:
    """The arrangement in `text`, which must be the one of `year`; 422 with every located problem."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInputError(f"year {year} is outside {FIRST_YEAR}..{LAST_YEAR}", {"year": "out of range"})
    try:
        return load_holiday_year_text(text, file=f"{year}.yaml")
    except CalendarDataError as exc:
        raise InvalidInputError(f"the holiday arrangement for {year} has {len(exc.problems)} problem(s)",
                                located_problems(exc.problems)) from None  # type: ignore[arg-type]


def shipped_years(directory: Path) -> dict[int, KnownYear]:
    """The shipped files, by year (problems in them are the release's: they raise)."""
    found: dict[int, KnownYear] = {}
    for file in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        arrangement = load_holiday_year(file)
        text = file.read_text(encoding="utf-8")
        found[arrangement.year] = KnownYear(year=arrangement.year, source="shipped", text=text,
                                            content_hash=content_hash(text), notice=arrangement.source)
    return found


async def known_years(session: AsyncSession, directory: Path) -> dict[int, KnownYear]:
    """Every year the calendar knows: shipped, overridden or added by uploads."""
    years = shipped_years(directory)
    for row in (await session.execute(select(HolidayYearRow).order_by(HolidayYearRow.year))).scalars():
        try:
            notice = load_holiday_year_text(row.text, file=f"{row.year}.yaml").source
        except CalendarDataError as exc:  # stored under older checks; left out rather than guessed
            log.error("uploaded holiday year %s no longer loads and is left out: %s", row.year, exc)
            continue
        years[row.year] = KnownYear(year=row.year, source="uploaded", text=row.text, content_hash=row.content_hash,
                                    notice=notice, overrides_shipped=row.year in years,
                                    uploaded_by=row.uploaded_by, uploaded_at=row.uploaded_at)
    return years


def calendar_of(years: dict[int, KnownYear]) -> WorkCalendar:
    return WorkCalendar(load_holiday_year_text(y.text, file=f"{y.year}.yaml") for y in years.values())


async def load_calendar(session: AsyncSession, directory: Path) -> WorkCalendar:
    """The working-day calendar of the shipped files plus the uploaded years."""
    return calendar_of(await known_years(session, directory))


async def upload_year(session: AsyncSession, *, year: int, text: str, directory: Path, actor_id: str,
                      now: datetime) -> tuple[HolidayYearRow, bool, WorkCalendar]:
    """Store the arrangement of `year` (replacing an earlier upload); returns the row, whether it is the
    first upload of that year, and the calendar to use from now on (install it after the commit)."""
    parse_year(year, text)
    years = await known_years(session, directory)
    before = years.get(year)
    years[year] = KnownYear(year=year, source="uploaded", text=text, content_hash=content_hash(text), notice="")
    try:
        calendar = calendar_of(years)
    except CalendarDataError as exc:
        raise InvalidInputError(f"the arrangement for {year} does not fit the other years",
                                {"body": "; ".join(exc.problems)}) from None
    row = await session.get(HolidayYearRow, year)
    created = row is None
    if row is None:
        row = HolidayYearRow(year=year, text=text, content_hash=content_hash(text), uploaded_by=actor_id,
                             uploaded_at=now)
        session.add(row)
    else:
        row.text, row.content_hash, row.uploaded_by, row.uploaded_at = text, content_hash(text), actor_id, now
    await session.flush()
    await append_audit(session, at=now, actor_id=actor_id, action="holiday_year.upload", subject_type="holiday_year",
                       subject_id=year, data={"year": year, "content_hash": row.content_hash,
                                              "before": None if before is None else
                                              {"source": before.source, "content_hash": before.content_hash}})
    return row, created, calendar
