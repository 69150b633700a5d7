"""The weekly points (积分) summary for department heads, queued by the weekly report flow (flows/report.py).

Rules (tested in tests/notifications/test_new_events.py):
- The week reported is the last complete ISO week (Monday–Sunday in the policies' zone) before `now`: the
  flow runs on Monday morning, so that is the week just ended. It is compared with the week before it.
- A report counts in the week it was due (its due date in its policy's zone), with its outcome as of `now`
  (store.points.outcome_of): a report due last week and handed in late since counts as late, not missing;
  one not yet due, waived or under review does not count. Its points are its policy's `points:` rule for
  that result; the half-year `base` is not a week's points (the half-year total shows it).
- Rank: among every department a scored policy names as an owner, by the week's total, highest first;
  equal totals share a rank (1, 1, 3).
- Who is told: the active head of each department that had a scored outcome in either week, one message
  per head covering every such department they head, once per week (event key `points:<week>`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pendulum
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.models import CalendarPolicy
from store.outbox import queue_once
from store.points import half_year, outcome_of, points
from store.runtime import Runtime
from store.tables import DepartmentRow, ObligationRow, PersonRow

RESULTS = ("on_time", "late", "missing")


@dataclass(frozen=True)
class Week:
    key: str  # 2026-W47
    start: date  # its Monday
    end: date  # its Sunday


def weeks_reported(now: datetime, *, tz: str) -> tuple[Week, Week]:
    """The last complete ISO week before `now` in `tz`, and the week before that."""
    monday = pendulum.instance(now).in_timezone(tz).date().start_of("week")
    return _week(monday.subtract(weeks=1)), _week(monday.subtract(weeks=2))


def _week(monday: pendulum.Date) -> Week:
    year, number, _ = monday.isocalendar()
    return Week(f"{year}-W{number:02d}", monday, monday.add(days=6))


@dataclass
class Tally:
    """One department's points from one policy in one week, and how many outcomes of each kind made them."""

    points: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, result: str, points: int) -> None:
        self.points += points
        self.counts[result] += 1


@dataclass(frozen=True)
class ScoredPolicy:
    id: str
    title: str
    owners: tuple[str, ...]


async def week_tallies(session: AsyncSession, runtime: Runtime, weeks: tuple[Week, ...], *, now: datetime
                       ) -> tuple[list[ScoredPolicy], dict[tuple[str, str, str], Tally]]:
    """The scored policies, and a tally per (week key, department, policy id) that had any outcome."""
    scored: list[ScoredPolicy] = []
    tallies: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    first, last = min(w.start for w in weeks), max(w.end for w in weeks)
    for _, loaded in runtime.registry.calendars():
        policy = loaded.policy
        assert isinstance(policy, CalendarPolicy)
        if policy.points is None:
            continue
        owners = tuple(sorted({code for spec in policy.obligations for code in policy.rules_for(spec).owner.codes}))
        scored.append(ScoredPolicy(policy.id, policy.title, owners))
        start = pendulum.datetime(first.year, first.month, first.day, tz=policy.timezone)
        end = pendulum.datetime(last.year, last.month, last.day, tz=policy.timezone).add(days=1)
        rows = (await session.execute(select(ObligationRow).where(
            ObligationRow.policy_id == policy.id, ObligationRow.due_at >= start,  # type: ignore[arg-type]
            ObligationRow.due_at < end))).scalars()  # type: ignore[arg-type]
        rule = {"on_time": policy.points.on_time, "late": policy.points.late, "missing": policy.points.missing}
        for row in rows:
            outcome = outcome_of(row, tz=policy.timezone, now=now)
            week = next((w for w in weeks if outcome and w.start <= outcome.due_on <= w.end), None)
            if outcome is not None and week is not None:
                tallies[(week.key, outcome.department, policy.id)].add(outcome.result, rule[outcome.result])
    return sorted(scored, key=lambda p: p.id), tallies


def ranks(totals: dict[str, int]) -> dict[str, int]:
    """Competition ranking, highest total first: equal totals share a rank and the next rank skips (1, 1, 3)."""
    return {code: 1 + sum(other > total for other in totals.values()) for code, total in totals.items()}


async def queue_weekly_points(session: AsyncSession, runtime: Runtime, *, now: datetime) -> int:
    """Queue `weekly_points` to each head as the module docstring says, in the caller's transaction unless
    already queued this week; returns how many were queued."""
    week, previous = weeks_reported(now, tz=runtime.timezone)
    scored, tallies = await week_tallies(session, runtime, (week, previous), now=now)
    if not scored:
        return 0
    departments = {d.code: d for d in (await session.execute(select(DepartmentRow))).scalars()}
    owned: dict[str, list[ScoredPolicy]] = defaultdict(list)
    for policy in scored:
        for code in policy.owners:
            owned[code].append(policy)

    def total(week_key: str, code: str) -> int:
        return sum(tallies[(week_key, code, p.id)].points for p in owned[code] if (week_key, code, p.id) in tallies)

    ranked = ranks({code: total(week.key, code) for code in owned})
    active = {code for (_, code, _) in tallies if code in owned}  # an owner the current version still names
    half = half_year(f"{week.end.year}-H{1 if week.end.month <= 6 else 2}")
    half_totals = {(p.policy_id, p.tally.department): p.tally.total
                   for p in await points(session, runtime, half=half, now=now, departments=active)}
    by_head: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for code in sorted(active):
        department = departments.get(code)
        if department is None or department.head_id is None:
            continue
        by_head[department.head_id].append({
            "code": code, "name": department.name, "total": total(week.key, code),
            "previous_total": total(previous.key, code),
            "change": total(week.key, code) - total(previous.key, code),
            "rank": ranked[code], "ranked": len(ranked),
            "policies": [_policy_line(p, tallies.get((week.key, code, p.id)), tallies.get((previous.key, code, p.id)),
                                      half_totals.get((p.id, code))) for p in owned[code]]})
    heads = {p.id: p for p in (await session.execute(select(PersonRow).where(
        PersonRow.id.in_(by_head)))).scalars()}  # type: ignore[attr-defined]
    queued = 0
    for head_id, sections in sorted(by_head.items()):
        head = heads.get(head_id)
        if head is None or not head.active:
            continue
        context = {"head_name": head.name, "week": week.key, "week_start": week.start.isoformat(),
                   "week_end": week.end.isoformat(), "previous_week": previous.key, "half_year": half.key,
                   "departments": sections, "link": f"{runtime.public_url}/calendar"}
        queued += await queue_once(session, event_key=f"points:{week.key}", event="weekly_points", recipient=head,
                                   context=context, now=now)
    return queued


def _policy_line(policy: ScoredPolicy, this: Tally | None, before: Tally | None,
                 half_total: int | None) -> dict[str, Any]:
    counts = this.counts if this else Counter()
    return {"id": policy.id, "title": policy.title, "points": this.points if this else 0,
            "previous": before.points if before else 0, "counts": {r: counts[r] for r in RESULTS},
            "half_year_total": half_total}
