"""What is overdue in each department, for the managers' escalation report (flows/report.py).

A manager is a department's head or its leader in charge (分管领导); their report covers every department
they head or are in charge of. Nothing here reads the clock: every function takes the instant it describes.

What counts as overdue at an instant T, recomputed from rows (so the previous period's figures need no
stored snapshot):
- an obligation: created by T, due before T, not waived, and without an accepted submission by T
  (`submitted_at` empty or after T; a report under review is still overdue). Waived obligations are left out
  at every instant (the table keeps no time of waiving).
- an approval step: opened by T, due before T, not closed by T (`decided_at` empty or after T). It belongs to
  the departments of the people still waiting on it at T: its assignees less those whose approval is recorded
  by T. (A step opened again after a send-back counts from its latest opening.)
- escalated: an overdue item whose escalation threshold had fired by T (督办 or an obligation's escalation).

The trend (the chart in the e-mail, notifications/charts.py) is the same figures at the report instant moved
back by whole periods, for the last `TREND_PERIODS` periods: its last two points are the report's own
"now" and "one period earlier", so the chart and the headline never disagree. Each point is labelled with
its period's first day ("11-16": the ISO week starting Monday 16 November; "11-01" for a month).

Data gathering only: the chart and the templates take the figures from the context (`report_context`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pendulum
from sqlalchemy import exists, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.digests import span
from store.notices import local_iso, period_label
from store.outbox import queue_once
from store.runtime import Runtime
from store.tables import (
    AssignmentRow,
    DecisionRow,
    DepartmentRow,
    ObligationRow,
    PersonRow,
    RequestRow,
    StepRow,
    ThresholdRow,
)

PERIODS = ("week", "month")
ITEMS_LISTED = 20
"""Items listed per department and kind in a message (the counts cover all of them)."""
TREND_PERIODS = 8
"""Points in the trend: this period and the seven before it."""


@dataclass(frozen=True)
class TrendPoint:
    key: str  # 2026-W47 | 2026-11
    label: str  # the period's first day, local: 11-16
    at: datetime  # the report instant moved back to this period


@dataclass(frozen=True)
class ReportPeriod:
    kind: str  # week | month
    key: str  # 2026-W47 | 2026-11
    at: datetime
    previous_key: str
    previous_at: datetime
    """The same moment one period earlier: the trend compares the figures at `at` with those at this instant."""
    trend: tuple[TrendPoint, ...] = ()
    """Oldest first; the last two are `at` and `previous_at` (module docstring)."""


def report_period(now: datetime, *, tz: str, kind: str = "week", periods: int = TREND_PERIODS) -> ReportPeriod:
    """The period `now` falls in (ISO week or calendar month in `tz`), the moment one period before, and the
    `periods` trend points ending at `now` (a month back from the 31st lands on the month's last day)."""
    if kind not in PERIODS:
        raise ValueError(f"unknown report period {kind!r}; expected one of {', '.join(PERIODS)}")
    if periods < 2:
        raise ValueError(f"a trend needs at least 2 periods (this one and the one before), got {periods}")
    local = pendulum.instance(now).in_timezone(tz)
    points = tuple(_trend_point(local, kind, back) for back in range(periods - 1, -1, -1))
    return ReportPeriod(kind, points[-1].key, points[-1].at, points[-2].key, points[-2].at, points)


def _trend_point(local: pendulum.DateTime, kind: str, back: int) -> TrendPoint:
    # Each point is moved back from `local` itself, not from the point after it, so month ends do not drift.
    if kind == "week":
        moment = local.subtract(weeks=back)
        return TrendPoint(_week_key(moment), moment.start_of("week").format("MM-DD"), moment.in_timezone("UTC"))
    moment = local.subtract(months=back)
    return TrendPoint(moment.format("YYYY-MM"), moment.start_of("month").format("MM-DD"), moment.in_timezone("UTC"))


def _week_key(local: pendulum.DateTime) -> str:
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class LateCounts:
    obligations: int = 0
    steps: int = 0
    escalated: int = 0

    @property
    def total(self) -> int:
        return self.obligations + self.steps

    def as_dict(self) -> dict[str, int]:
        return {"obligations": self.obligations, "steps": self.steps, "escalated": self.escalated,
                "total": self.total}


@dataclass(frozen=True)
class LateObligation:
    row: ObligationRow
    escalated: bool


@dataclass(frozen=True)
class LateStep:
    step: StepRow
    request: RequestRow
    waiting_on: tuple[str, ...]
    escalated: bool


@dataclass
class Overdue:
    """One department's overdue items at one instant."""

    obligations: list[LateObligation] = field(default_factory=list)
    steps: list[LateStep] = field(default_factory=list)

    def counts(self) -> LateCounts:
        return LateCounts(obligations=len(self.obligations), steps=len(self.steps),
                          escalated=sum(o.escalated for o in self.obligations) + sum(s.escalated for s in self.steps))


def _escalated(subject_type: str, subject_id: Any, at: datetime) -> Any:
    return exists().where(ThresholdRow.subject_type == subject_type, ThresholdRow.subject_id == subject_id,
                          ThresholdRow.action == "escalate", ThresholdRow.state == "fired",
                          ThresholdRow.fired_at <= at)  # type: ignore[operator]


async def overdue_at(session: AsyncSession, at: datetime) -> dict[str, Overdue]:
    """Every department's overdue items as they stood at `at` (module docstring), oldest deadline first."""
    found: dict[str, Overdue] = defaultdict(Overdue)
    obligations = (await session.execute(
        select(ObligationRow, _escalated("obligation", ObligationRow.id, at).label("escalated"))
        .where(ObligationRow.due_at < at, ObligationRow.created_at <= at,  # type: ignore[operator]
               ObligationRow.state != "waived",
               or_(ObligationRow.submitted_at.is_(None), ObligationRow.submitted_at > at))  # type: ignore[union-attr,operator]
        .order_by(ObligationRow.due_at, ObligationRow.id))).all()
    for row, escalated in obligations:
        found[row.owner_department].obligations.append(LateObligation(row, bool(escalated)))
    steps = (await session.execute(
        select(StepRow, RequestRow, _escalated("step", StepRow.id, at).label("escalated"))
        .join(RequestRow, RequestRow.id == StepRow.request_id)
        .where(StepRow.opened_at <= at, StepRow.due_at < at, StepRow.state != "waiting",  # type: ignore[operator]
               or_(StepRow.decided_at.is_(None), StepRow.decided_at > at))  # type: ignore[union-attr,operator]
        .order_by(StepRow.due_at, StepRow.id))).all()
    if not steps:
        return found
    approved: dict[int, set[str]] = defaultdict(set)
    for step_id, actor, on_behalf_of in (await session.execute(
            select(DecisionRow.step_id, DecisionRow.actor_id, DecisionRow.on_behalf_of).where(
                DecisionRow.verb == "approve", DecisionRow.decided_at <= at,  # type: ignore[operator]
                DecisionRow.step_id.in_([s.id for s, _, _ in steps])))).all():  # type: ignore[union-attr]
        approved[step_id].add(on_behalf_of or actor)
    departments = dict((await session.execute(select(PersonRow.id, PersonRow.department_code))).all())
    for step, request, escalated in steps:
        waiting = tuple(p for p in step.assignees if p not in approved[step.id or 0])
        for code in sorted({departments[p] for p in waiting if p in departments}):
            found[code].steps.append(LateStep(step, request, waiting, bool(escalated)))
    return found


async def overdue_counts_at(session: AsyncSession, at: datetime) -> dict[str, LateCounts]:
    """Each department's overdue counts at `at` (departments with nothing overdue are left out)."""
    return {code: found.counts() for code, found in (await overdue_at(session, at)).items()}


@dataclass(frozen=True)
class DepartmentSection:
    code: str
    name: str
    relation: str  # head | leader_in_charge | head, leader_in_charge
    now: Overdue
    before: LateCounts
    trend: tuple[LateCounts, ...] = ()  # at each of `period.trend`


@dataclass(frozen=True)
class ManagerReport:
    manager: PersonRow
    period: ReportPeriod
    departments: list[DepartmentSection]
    trend: tuple[LateCounts, ...] = ()
    """At each of `period.trend`, summed over every department the manager heads or is in charge of (also
    those left out of `departments` because nothing is overdue there now or one period earlier)."""

    @property
    def totals(self) -> LateCounts:
        return _sum(s.now.counts() for s in self.departments)

    @property
    def previous(self) -> LateCounts:
        return _sum(s.before for s in self.departments)


def _sum(counts: Any) -> LateCounts:
    items = list(counts)
    return LateCounts(obligations=sum(c.obligations for c in items), steps=sum(c.steps for c in items),
                      escalated=sum(c.escalated for c in items))


async def manager_reports(session: AsyncSession, period: ReportPeriod) -> list[ManagerReport]:
    """One report per active manager whose departments have anything overdue now, or had one period ago
    (so the week things were cleared up is reported once), ordered by manager id."""
    now_overdue = await overdue_at(session, period.at)
    before = await overdue_counts_at(session, period.previous_at)
    instants = [p.at for p in period.trend]
    counts_at = {at: await overdue_counts_at(session, at) for at in instants
                 if at not in (period.at, period.previous_at)}
    counts_at[period.at] = {code: o.counts() for code, o in now_overdue.items()}
    counts_at[period.previous_at] = before
    people = {p.id: p for p in (await session.execute(select(PersonRow))).scalars()}
    sections: dict[str, list[DepartmentSection]] = defaultdict(list)
    trends: dict[str, list[tuple[LateCounts, ...]]] = defaultdict(list)
    for department in (await session.execute(select(DepartmentRow).order_by(DepartmentRow.code))).scalars():
        roles: dict[str, list[str]] = defaultdict(list)
        for relation, person_id in (("head", department.head_id), ("leader_in_charge", department.leader_in_charge_id)):
            if person_id in people and people[person_id].active:
                roles[person_id].append(relation)
        trend = tuple(counts_at[at].get(department.code, LateCounts()) for at in instants)
        for person_id in roles:
            trends[person_id].append(trend)
        current = now_overdue.get(department.code, Overdue())
        earlier = before.get(department.code, LateCounts())
        if not current.counts().total and not earlier.total:
            continue
        for person_id, relations in roles.items():
            sections[person_id].append(DepartmentSection(department.code, department.name, ", ".join(relations),
                                                         current, earlier, trend))
    return [ManagerReport(people[pid], period, found, tuple(_sum(point) for point in zip(*trends[pid], strict=True)))
            for pid, found in sorted(sections.items())]


# --- the template context --------------------------------------------------------------------------------

def report_context(report: ManagerReport, *, tz: str, public_url: str, people: dict[str, PersonRow],
                   watchers: dict[int, list[str]], limit: int = ITEMS_LISTED) -> dict[str, Any]:
    """What the `escalation_report` templates receive (JSON-safe); `watchers` maps a step to the people it
    was escalated to."""
    at = report.period.at

    def names(ids: Any) -> str:
        return "、".join(people[p].name if p in people else p for p in ids)

    def change(now: LateCounts, before: LateCounts) -> dict[str, int]:
        return {k: v - before.as_dict()[k] for k, v in now.as_dict().items()}

    departments = []
    for s in report.departments:
        counts = s.now.counts()
        departments.append({
            "code": s.code, "name": s.name, "relation": s.relation,
            "now": counts.as_dict(), "previous": s.before.as_dict(), "change": change(counts, s.before),
            "obligations": [{"id": o.row.id, "title": o.row.title, "period": period_label(o.row),
                             "due_at": local_iso(o.row.due_at, tz), "provisional": o.row.provisional,
                             "overdue_by": span(at - o.row.due_at), "escalated": o.escalated,
                             "link": f"{public_url}/obligations/{o.row.id}"} for o in s.now.obligations[:limit]],
            "obligations_more": max(len(s.now.obligations) - limit, 0),
            "steps": [{"request_id": t.request.id, "request_title": t.request.title, "step_title": t.step.title,
                       "waiting_on": names(t.waiting_on), "due_at": local_iso(t.step.due_at, tz),
                       "provisional": t.step.provisional, "overdue_by": span(at - (t.step.due_at or at)),
                       "escalated": t.escalated, "escalated_to": names(watchers.get(t.step.id or 0, [])),
                       "link": f"{public_url}/requests/{t.request.id}"} for t in s.now.steps[:limit]],
            "steps_more": max(len(s.now.steps) - limit, 0),
            "trend": [c.total for c in s.trend],
        })
    trend = [{"period": p.key, "label": p.label, "as_of": local_iso(p.at, tz), **c.as_dict()}
             for p, c in zip(report.period.trend, report.trend, strict=True)]
    return {"manager_name": report.manager.name, "period_kind": report.period.kind, "period": report.period.key,
            "previous_period": report.period.previous_key, "as_of": local_iso(at, tz),
            "previous_as_of": local_iso(report.period.previous_at, tz),
            "totals": report.totals.as_dict(), "previous": report.previous.as_dict(),
            "change": change(report.totals, report.previous), "departments": departments, "trend": trend,
            "link": f"{public_url}/calendar?state=late"}


async def queue_reports(session: AsyncSession, runtime: Runtime, reports: list[ManagerReport], *,
                        now: datetime) -> int:
    """Queue one `escalation_report` per manager and period (event key `report:<period>:<person>`) in the
    caller's transaction unless already queued; returns how many were queued."""
    people = {p.id: p for p in (await session.execute(select(PersonRow))).scalars()}
    step_ids = {t.step.id for r in reports for s in r.departments for t in s.now.steps}
    watchers: dict[int, list[str]] = defaultdict(list)
    if step_ids:
        for step_id, person_id in (await session.execute(
                select(AssignmentRow.step_id, AssignmentRow.person_id).where(
                    AssignmentRow.kind == "watcher", AssignmentRow.step_id.in_(step_ids))  # type: ignore[attr-defined]
                .order_by(AssignmentRow.id))).all():
            watchers[step_id].append(person_id)
    queued = 0
    for report in reports:
        context = report_context(report, tz=runtime.timezone, public_url=runtime.public_url, people=people,
                                 watchers=watchers)
        queued += await queue_once(session, event_key=f"report:{report.period.key}", event="escalation_report",
                                   recipient=report.manager, context=context, now=now)
    return queued
