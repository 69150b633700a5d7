"""`duly simulate`: every deadline a set of calendar policies gives over a date range, as a table, CSV or ICS.

Each period-based obligation of each calendar policy becomes one row per owner department and period
whose due date (in the policy's zone) lies in ``--from`` … ``--to``: the organisation (the profile folder
the policy lives in), the due instant and the nominal date it came from, the holiday shift, the internal
deadline (lead time), whether the date is provisional (its year's holidays are not published yet), and
when reminders and escalations would fire. Event-relative obligations (``trigger:``) have no dates of
their own and are only counted. Nothing is stored.

Owner departments are checked against the organisation and shown by name: ``--organisation FILE``, else
the profile's own ``organisation.yaml`` when it has one (as `duly check` does), else no check. An owner
the organisation does not have is reported (exit code 1), since `duly run` would create nothing for it.
Exit codes: 0 fine, 1 a policy or organisation problem, 2 bad arguments.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum

from policies.calendar import WorkCalendar
from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.loader import LoadedPolicy
from policies.models import CalendarPolicy

FORMATS = ("table", "csv", "ics")
CSV_HEADER = ("organisation", "policy", "obligation", "owner", "period", "due_at", "shift", "provisional", "title",
              "nominal_date", "internal_due_at", "reminders", "escalations", "review", "attachments")
SHIFT_WORDS = {"none": "", "next_working_day": "顺延至下一工作日", "previous_working_day": "提前至上一工作日",
               "before_holiday": "提前至放假前一天", "after_holiday": "顺延至收假次日", "skipped": "跳过"}
WEEKDAY_WORDS = "一二三四五六日"


@dataclass(frozen=True)
class SimulatedRow:
    """One deadline: an obligation owed by one department for one period."""

    organisation: str
    policy: str
    obligation: str
    title: str
    owner: str
    owner_name: str
    period: str
    due_at: pendulum.DateTime  # in the policy's zone
    nominal: date
    shift: str
    internal_due_at: pendulum.DateTime | None
    provisional: bool
    reminders: tuple[pendulum.DateTime, ...]
    escalations: tuple[pendulum.DateTime, ...]
    review: str | None
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class Simulation:
    rows: list[SimulatedRow]
    problems: list[str]
    event_relative: int  # obligations due after events: not on the calendar


def simulate(loaded: Sequence[LoadedPolicy], calendar: WorkCalendar, first: date, last: date, *,
             departments_for: Callable[[LoadedPolicy], Mapping[str, str] | None] = lambda _: None) -> Simulation:
    """The deadlines of every calendar policy in ``loaded`` due from ``first`` to ``last`` (module docstring).

    ``departments_for(policy)`` maps the department codes of the policy's organisation to their names;
    None skips the owner check."""
    rows: list[SimulatedRow] = []
    problems: list[str] = []
    event_relative = 0
    for item in loaded:
        policy = item.policy
        if not isinstance(policy, CalendarPolicy):
            continue
        tz = policy.timezone
        departments = departments_for(item)
        for spec in policy.obligations:
            rules = policy.rules_for(spec)
            event_relative += rules.trigger is not None
            for code in rules.owner.codes if departments is not None else ():
                if code not in departments:
                    problems.append(f"{item.source}: {spec.id}: owner department {code!r} is not in the organisation")
        organisation = Path(item.source).parent.name
        # Dates are the same for every owner of an obligation's period: compute them once per period.
        shared: dict[tuple[str, str], dict[str, Any]] = {}
        for occurrence in policy.occurrences(calendar, first, last):
            due, rules = occurrence.due, occurrence.rules
            assert due.at is not None
            key = (occurrence.obligation.id, occurrence.period.key)
            if key not in shared:
                plans = obligation_thresholds(Deadline(at=due.at, provisional=due.provisional), rules.remind,
                                              rules.escalate, calendar, tz=tz)
                shared[key] = dict(
                    organisation=organisation, policy=policy.id, obligation=occurrence.obligation.id,
                    title=occurrence.obligation.title, period=occurrence.period.key, due_at=due.at.in_timezone(tz),
                    nominal=due.nominal, shift=due.shift, provisional=due.provisional,
                    internal_due_at=due.internal_at.in_timezone(tz) if due.internal_at else None,
                    reminders=tuple(p.fire_at.in_timezone(tz) for p in plans if p.action == "remind"),
                    escalations=tuple(p.fire_at.in_timezone(tz) for p in plans if p.action == "escalate"),
                    review=rules.review, attachments=tuple(a.kind for a in rules.attachments))
            rows.append(SimulatedRow(owner=occurrence.owner, owner_name=(departments or {}).get(occurrence.owner, ""),
                                     **shared[key]))
    rows.sort(key=lambda r: (r.due_at.timestamp(), r.organisation, r.policy, r.obligation, r.owner, r.period))
    return Simulation(rows=rows, problems=problems, event_relative=event_relative)


# --- table ---------------------------------------------------------------------------------------------

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _local(moment: pendulum.DateTime) -> str:
    return f"{moment.format('YYYY-MM-DD HH:mm')} 周{WEEKDAY_WORDS[moment.weekday()]}"


def render_table(rows: Sequence[SimulatedRow]) -> str:
    """Aligned columns for a terminal (Chinese characters count as two columns)."""
    header = ("due", "obligation", "title", "owner", "period", "shift", "internal due", "")
    lines = [header] + [(
        _local(r.due_at), r.obligation, r.title, r.owner_name or r.owner, r.period,
        SHIFT_WORDS[r.shift] + (f"（原 {r.nominal}）" if r.shift != "none" else ""),
        _local(r.internal_due_at) if r.internal_due_at else "", "暂定" if r.provisional else "") for r in rows]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(_pad(cell, w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines) + "\n"


# --- CSV -----------------------------------------------------------------------------------------------

def render_csv(rows: Sequence[SimulatedRow]) -> str:
    """RFC 4180 CSV with a header; instants are ISO 8601 with their offset, lists are separated by spaces."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    texts: dict[int, str] = {}  # the owners of one period share their instants: format each once

    def iso(moment: datetime | None) -> str:
        if moment is None:
            return ""
        text = texts.get(id(moment))
        if text is None:
            text = texts[id(moment)] = moment.isoformat()
        return text

    for r in rows:
        writer.writerow((r.organisation, r.policy, r.obligation, r.owner, r.period, iso(r.due_at), r.shift,
                         "true" if r.provisional else "false", r.title, r.nominal.isoformat(),
                         iso(r.internal_due_at), " ".join(map(iso, r.reminders)), " ".join(map(iso, r.escalations)),
                         r.review or "", " ".join(r.attachments)))
    return out.getvalue()


# --- ICS (RFC 5545) ------------------------------------------------------------------------------------

def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str, limit: int = 75) -> list[str]:
    """Split a content line into lines of at most ``limit`` octets (RFC 5545 §3.1), never inside a UTF-8
    character; every continuation line starts with one space."""
    parts, current, size = [], "", 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            parts.append(current)
            current, size = " ", 1
        current += ch
        size += n
    parts.append(current)
    return parts


def _fixed_offset(tz: str, first: date, last: date) -> str | None:
    """"+0800" when ``tz`` keeps one UTC offset from a year before ``first`` to a year after ``last``."""
    offsets = {pendulum.datetime(year, month, 1, tz=tz).utcoffset() for year in range(first.year - 1, last.year + 2)
               for month in range(1, 13)}
    if len(offsets) != 1:
        return None
    seconds = int(next(iter(offsets)).total_seconds())  # type: ignore[union-attr]
    sign, seconds = ("+" if seconds >= 0 else "-"), abs(seconds)
    return f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"


def _uid(row: SimulatedRow) -> str:
    raw = f"{row.organisation}.{row.policy}.{row.obligation}.{row.owner}.{row.period}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw) + "@duly"


def _stamp(moment: datetime) -> str:
    return pendulum.instance(moment).in_timezone("UTC").format("YYYYMMDD[T]HHmmss[Z]")


def render_ics(rows: Sequence[SimulatedRow], *, now: datetime, first: date, last: date) -> str:
    """A VCALENDAR with one VEVENT per deadline (zero length at the due instant) and a VALARM per reminder.

    UIDs are stable per organisation, policy, obligation, owner and period, so a re-import updates events.
    A zone with one fixed offset (Asia/Shanghai) is written with TZID and its VTIMEZONE; any other in UTC."""
    zones = {r.due_at.timezone_name for r in rows}
    fixed = {tz: offset for tz in sorted(zones) if (offset := _fixed_offset(tz, first, last))}
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//duly//duly simulate//ZH", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_escape(f'报送日历 {first} 至 {last}')}"]
    for tz, offset in fixed.items():
        lines += ["BEGIN:VTIMEZONE", f"TZID:{tz}", "BEGIN:STANDARD", f"DTSTART:{first.year - 1}0101T000000",
                  f"TZOFFSETFROM:{offset}", f"TZOFFSETTO:{offset}", "END:STANDARD", "END:VTIMEZONE"]
    for r in rows:
        tz = r.due_at.timezone_name
        start = (f"DTSTART;TZID={tz}:{r.due_at.format('YYYYMMDD[T]HHmmss')}" if tz in fixed
                 else f"DTSTART:{_stamp(r.due_at)}")
        summary = f"截止：{r.title}（{r.period}）· {r.owner_name or r.owner}" + ("（暂定）" if r.provisional else "")
        lines += ["BEGIN:VEVENT", f"UID:{_uid(r)}", f"DTSTAMP:{_stamp(now)}", start,
                  f"SUMMARY:{_escape(summary)}", f"DESCRIPTION:{_escape(_description(r))}",
                  f"CATEGORIES:{_escape('报送截止')}", "TRANSP:TRANSPARENT"]
        for n, reminder in enumerate(r.reminders, start=1):
            lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{_escape(f'提醒 {n}：{r.title}')}",
                      f"TRIGGER;VALUE=DATE-TIME:{_stamp(reminder)}", "END:VALARM"]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(part + "\r\n" for line in lines for part in fold(line))


def _description(r: SimulatedRow) -> str:
    text = [f"政策：{r.policy}（{r.organisation}）", f"事项：{r.obligation} {r.title}",
            f"责任部门：{r.owner_name or r.owner}", f"报告期：{r.period}", f"截止：{_local(r.due_at)}"]
    if r.shift != "none":
        text.append(f"调整：{SHIFT_WORDS[r.shift]}（原定 {r.nominal}）")
    if r.internal_due_at:
        text.append(f"内部截止：{_local(r.internal_due_at)}")
    if r.review:
        text.append(f"报送前审核：{r.review}")
    if r.attachments:
        text.append(f"须附：{'、'.join(r.attachments)}")
    if r.provisional:
        text.append("暂定：该年节假日安排尚未公布，日期可能变化")
    return "\n".join(text)


# --- the command ---------------------------------------------------------------------------------------

def run_simulate(paths: Sequence[Path], *, first: date | None, last: date | None, fmt: str,
                 organisation_file: Path | None) -> tuple[str, list[str], int]:
    """The command: load the policies, the holiday calendar (Settings.holidays_dir) and the organisation;
    returns what goes to stdout, the lines for stderr, and the exit code."""
    from config import clock
    from config.settings import Settings
    from policies.calendar import CalendarDataError
    from policies.errors import PolicyError
    from policies.loader import ORGANISATION_FILE, load_policies
    from store.errors import InvalidInputError
    from store.organisation import read_organisation_file

    now = clock.now()
    first = first or date(pendulum.instance(now).in_timezone("Asia/Shanghai").year, 1, 1)
    last = last or date(first.year, 12, 31)
    if fmt not in FORMATS:
        return "", [f"error: --format must be one of {', '.join(FORMATS)}, got {fmt!r}"], 2
    if last < first:
        return "", [f"error: --to {last} is before --from {first}"], 2
    if last - first > timedelta(days=3660):
        return "", [f"error: {first} … {last} is longer than ten years; simulate a shorter range"], 2
    organisations: dict[Path, dict[str, str]] = {}

    def departments_for(item: LoadedPolicy) -> dict[str, str] | None:
        path = organisation_file or Path(item.source).parent / ORGANISATION_FILE
        if path not in organisations:
            if not path.exists():
                return None
            organisations[path] = {d.code: d.name for d in read_organisation_file(path).departments}
        return organisations[path]

    try:
        calendar = WorkCalendar.from_directory(Settings().holidays_dir)
        loaded = load_policies(paths)
        for item in loaded:
            departments_for(item)  # read every organisation file now, so a bad one is reported here
    except PolicyError as exc:
        return "", [str(p) for p in exc.problems] + [f"{len(exc.problems)} problem(s)"], 1
    except (CalendarDataError, InvalidInputError) as exc:
        return "", [str(exc)], 1
    result = simulate(loaded, calendar, first, last, departments_for=departments_for)
    if fmt == "csv":
        output = render_csv(result.rows)
    elif fmt == "ics":
        output = render_ics(result.rows, now=now, first=first, last=last)
    else:
        output = render_table(result.rows)
    calendars = sum(isinstance(item.policy, CalendarPolicy) for item in loaded)
    provisional = sum(r.provisional for r in result.rows)
    summary = (f"{len(result.rows)} deadline(s) from {calendars} calendar polic{'y' if calendars == 1 else 'ies'}, "
               f"{first} … {last}" + (f", {provisional} provisional" if provisional else "")
               + (f"; {result.event_relative} event-relative obligation(s) have no dates of their own"
                  if result.event_relative else ""))
    return output, [*result.problems, summary], 1 if result.problems else 0
