"""The daily digest: for each active person, what is waiting for them today.

Three kinds of item, each as the inbox and the calendar show it:
- tasks: open approval steps they may decide (their own places, and those a delegation in force hands them:
  store.request_lists.open_tasks), with how long they have waited and whether the step's deadline has passed;
- reports: obligations not yet submitted (open or late) that are overdue or due by the end of the
  `horizon`-th working day after today, for the people the policy makes responsible (the owner role in the
  owning department, or its head without a role: the people the sweep reminds);
- follow-ups (督办): open steps they were escalated to as watchers.

- notifications held for it: people who chose a daily digest (person.notify_mode) get their routine e-mails
  folded in here ("since your last digest"), and those outbox rows become `digested` in the same transaction.

Each person's digest goes out at their own time (person.digest_at, local, default 08:30): the flow runs often
and picks the people whose time has come today and who have no digest for today yet (`due_for_digest`).
People with nothing in any of the four get no digest. The data is read in a handful of queries for the whole
organisation; the context handed to the templates is JSON-safe (instants as ISO 8601 in the policy's zone).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.calendar import WorkCalendar
from policies.models import CalendarPolicy
from store.notices import local_iso, period_label
from store.outbox import queue_once
from store.request_lists import open_tasks
from store.runtime import Runtime
from store.tables import (
    AssignmentRow,
    DelegationRow,
    DepartmentRow,
    ObligationRow,
    OutboxRow,
    PersonRow,
    RequestRow,
    StepRow,
)

HORIZON_WORKING_DAYS = 3
_FAR = pendulum.datetime(9999, 1, 1)


@dataclass(frozen=True)
class TaskItem:
    step: StepRow
    request: RequestRow
    requester: PersonRow | None
    delegated_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatchItem:
    step: StepRow
    request: RequestRow


@dataclass
class Digest:
    person: PersonRow
    tasks: list[TaskItem] = field(default_factory=list)
    obligations: list[ObligationRow] = field(default_factory=list)
    watching: list[WatchItem] = field(default_factory=list)
    held: list[OutboxRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.tasks or self.obligations or self.watching or self.held)


async def due_for_digest(session: AsyncSession, *, now: datetime, tz: str) -> tuple[set[str], set[str]]:
    """(people whose digest time has come today, those of them who already have today's digest)."""
    local = pendulum.instance(now).in_timezone(tz)
    clock = f"{local:%H:%M}"
    due = set((await session.execute(select(PersonRow.id).where(
        PersonRow.active, PersonRow.digest_at <= clock))).scalars())  # type: ignore[arg-type]
    prefix = f"digest:{local.date().isoformat()}:"
    done = {key[len(prefix):] for key in (await session.execute(select(OutboxRow.event_key).where(
        OutboxRow.event_key.startswith(prefix)))).scalars()}  # type: ignore[attr-defined]
    return due, due & done


def horizon_end(now: datetime, *, tz: str, calendar: WorkCalendar, working_days: int = HORIZON_WORKING_DAYS
                ) -> pendulum.DateTime:
    """The end (exclusive, UTC) of the `working_days`-th working day after today in `tz`."""
    today = pendulum.instance(now).in_timezone(tz).date()
    last = calendar.add_working_days(today, working_days)
    return pendulum.datetime(last.year, last.month, last.day, tz=tz).add(days=1).in_timezone("UTC")


async def gather_digests(session: AsyncSession, runtime: Runtime, *, now: datetime,
                         horizon_working_days: int = HORIZON_WORKING_DAYS,
                         only: Collection[str] | None = None) -> list[Digest]:
    """Every active person's digest (or those in `only`) that has something in it, ordered by person id."""
    people = {p.id: p for p in (await session.execute(select(PersonRow))).scalars()}
    digests = {pid: Digest(p) for pid, p in people.items() if p.active and (only is None or pid in only)}
    if not digests:
        return []
    await _add_tasks(session, digests, people, now)
    await _add_obligations(session, runtime, digests, people,
                           horizon_end(now, tz=runtime.timezone, calendar=runtime.calendar,
                                       working_days=horizon_working_days))
    await _add_watching(session, digests)
    await _add_held(session, digests)
    for d in digests.values():
        d.tasks.sort(key=lambda t: (t.step.due_at or _FAR, t.step.id or 0))
        d.obligations.sort(key=lambda o: (o.due_at, o.id or 0))
        d.watching.sort(key=lambda w: (w.step.due_at or _FAR, w.step.id or 0))
    return [d for _, d in sorted(digests.items()) if not d.empty]


async def _add_tasks(session: AsyncSession, digests: dict[str, Digest], people: dict[str, PersonRow],
                     now: datetime) -> None:
    rows = (await session.execute(
        select(StepRow, RequestRow, AssignmentRow.person_id)
        .join(AssignmentRow, AssignmentRow.step_id == StepRow.id)
        .join(RequestRow, RequestRow.id == StepRow.request_id)
        .where(AssignmentRow.open, AssignmentRow.kind == "approver", StepRow.state == "pending"))).all()
    for step, request, holder in rows:
        if holder in digests:
            digests[holder].tasks.append(TaskItem(step, request, people.get(request.requester_id)))
    # People a delegation in force hands steps to: the inbox's own rule decides which (few people, one call each).
    delegates = set((await session.execute(select(DelegationRow.to_id).where(
        DelegationRow.revoked_at.is_(None), DelegationRow.starts <= now,  # type: ignore[union-attr,arg-type]
        DelegationRow.ends > now))).scalars())  # type: ignore[arg-type]
    for person_id in sorted(delegates & digests.keys()):
        tasks = await open_tasks(session, person_id=person_id, now=now)
        digests[person_id].tasks = [TaskItem(t.step, t.request, t.requester, t.delegated_from) for t in tasks]


async def _add_obligations(session: AsyncSession, runtime: Runtime, digests: dict[str, Digest],
                           people: dict[str, PersonRow], before: datetime) -> None:
    rows = list((await session.execute(select(ObligationRow).where(
        ObligationRow.state.in_(("open", "late")), ObligationRow.due_at < before))).scalars())  # type: ignore[attr-defined]
    if not rows:
        return
    heads = dict((await session.execute(select(DepartmentRow.code, DepartmentRow.head_id))).all())
    roles: dict[tuple[int, str], str | None] = {}
    for obligation in rows:
        key = (obligation.policy_version_id, obligation.obligation_key)
        if key not in roles:
            policy = (await runtime.registry.version(session, obligation.policy_version_id)).policy
            assert isinstance(policy, CalendarPolicy)
            roles[key] = policy.rules_for(obligation.obligation_key).owner.role
        for person_id in responsible(obligation.owner_department, roles[key], people, heads):
            if person_id in digests:
                digests[person_id].obligations.append(obligation)


def responsible(department: str, role: str | None, people: dict[str, PersonRow],
                heads: dict[str, str | None]) -> list[str]:
    """Who answers for a department's obligation: the holders of the owner role in it, or its head."""
    if role:
        return sorted(p.id for p in people.values() if p.department_code == department and role in p.roles)
    head = heads.get(department)
    return [head] if head else []


async def _add_watching(session: AsyncSession, digests: dict[str, Digest]) -> None:
    rows = (await session.execute(
        select(StepRow, RequestRow, AssignmentRow.person_id)
        .join(AssignmentRow, AssignmentRow.step_id == StepRow.id)
        .join(RequestRow, RequestRow.id == StepRow.request_id)
        .where(AssignmentRow.kind == "watcher", StepRow.state == "pending"))).all()
    for step, request, watcher in rows:
        if watcher in digests:
            digests[watcher].watching.append(WatchItem(step, request))


async def _add_held(session: AsyncSession, digests: dict[str, Digest]) -> None:
    rows = (await session.execute(select(OutboxRow).where(OutboxRow.state == "held", OutboxRow.channel == "email")
                                  .order_by(OutboxRow.id))).scalars()  # type: ignore[arg-type]
    for row in rows:
        if row.recipient_id in digests:
            digests[row.recipient_id].held.append(row)


# --- the template context --------------------------------------------------------------------------------

def span(delta: timedelta) -> dict[str, int]:
    """A duration as whole days, or whole hours when under a day (templates say "2 天" / "5 小时")."""
    seconds = max(int(delta.total_seconds()), 0)
    return {"days": seconds // 86400, "hours": seconds % 86400 // 3600}


def digest_context(digest: Digest, *, day: date, now: datetime, tz: str, public_url: str,
                   people: dict[str, PersonRow], departments: dict[str, str]) -> dict[str, Any]:
    """What the `digest` templates receive (JSON-safe)."""
    def name(person_id: str) -> str:
        return people[person_id].name if person_id in people else person_id

    tasks = [{"request_id": t.request.id, "request_title": t.request.title, "step_title": t.step.title,
              "requester_name": t.requester.name if t.requester else t.request.requester_id,
              "waited": span(now - (t.step.opened_at or now)), "due_at": local_iso(t.step.due_at, tz),
              "provisional": t.step.provisional, "overdue": _late(t.step.due_at, now),
              "overdue_by": span(now - t.step.due_at) if _late(t.step.due_at, now) else None,
              "delegated_from": "、".join(name(p) for p in t.delegated_from),
              "link": f"{public_url}/requests/{t.request.id}"} for t in digest.tasks]
    obligations = [{"id": o.id, "title": o.title, "period": period_label(o),
                    "department": departments.get(o.owner_department, o.owner_department),
                    "due_at": local_iso(o.due_at, tz), "provisional": o.provisional, "overdue": o.due_at < now,
                    "overdue_by": span(now - o.due_at) if o.due_at < now else None,
                    "link": f"{public_url}/obligations/{o.id}"} for o in digest.obligations]
    watching = [{"request_id": w.request.id, "request_title": w.request.title, "step_title": w.step.title,
                 "waiting_on": "、".join(name(p) for p in w.step.assignees if p not in w.step.approved_by),
                 "due_at": local_iso(w.step.due_at, tz), "provisional": w.step.provisional,
                 "overdue_by": span(now - w.step.due_at) if _late(w.step.due_at, now) else None,
                 "link": f"{public_url}/requests/{w.request.id}"} for w in digest.watching]
    upcoming = [at for at in [*(t.step.due_at for t in digest.tasks), *(o.due_at for o in digest.obligations)]
                if at is not None and at >= now]
    held = [_held_item(row) for row in digest.held]
    return {"person_name": digest.person.name, "day": day.isoformat(), "held": held,
            "tasks": tasks, "tasks_overdue": sum(1 for t in tasks if t["overdue"]),
            "obligations": obligations, "obligations_overdue": sum(1 for o in obligations if o["overdue"]),
            "watching": watching, "next_due": local_iso(min(upcoming), tz) if upcoming else None,
            "link": f"{public_url}/inbox"}


def _held_item(row: OutboxRow) -> dict[str, Any]:
    """A held notification, as its own event and context: notifications.email renders its subject line in the
    digest's language when the digest itself is rendered."""
    return {"event": row.event, "context": row.context, "link": row.context.get("link", "")}


def _late(due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and due_at < now



async def queue_digests(session: AsyncSession, runtime: Runtime, digests: list[Digest], *, day: date,
                        now: datetime) -> int:
    """Queue one `digest` message per person for the local `day` (event key `digest:<day>:<person>`) in the
    caller's transaction, unless one is already queued; the held notifications it lists become `digested`.
    Returns how many were queued."""
    people = {p.id: p for p in (await session.execute(select(PersonRow))).scalars()}
    departments = dict((await session.execute(select(DepartmentRow.code, DepartmentRow.name))).all())
    queued = 0
    for digest in digests:
        context = digest_context(digest, day=day, now=now, tz=runtime.timezone, public_url=runtime.public_url,
                                 people=people, departments=departments)
        if await queue_once(session, event_key=f"digest:{day.isoformat()}", event="digest",
                            recipient=digest.person, context=context, now=now):
            queued += 1
            if digest.held:
                await session.execute(update(OutboxRow).where(
                    OutboxRow.id.in_([r.id for r in digest.held]), OutboxRow.state == "held")  # type: ignore[union-attr]
                    .values(state="digested"))
    return queued
