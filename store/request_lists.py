"""Reading requests in lists: the requests a person may see (filtered, paged) and their open tasks, including
the steps an assignee's delegation hands them.

Who sees what in a list (the same rule as store.approvals.visible_request, minus delegations for `all`):
- `mine`: the requests I filed;
- `assigned`: the requests on which I hold or held a place, or was escalated to (督办);
- `all`: both of the above; an administrator sees every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import pendulum
from sqlalchemy import exists, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.delegations import active_delegations
from store.errors import InvalidInputError
from store.tables import AssignmentRow, PersonRow, RequestRow, StepRow

SCOPES = ("mine", "assigned", "all")
REQUEST_STATES = ("pending", "returned", "approved", "rejected", "withdrawn")


@dataclass(frozen=True)
class Task:
    step: StepRow
    request: RequestRow
    requester: PersonRow
    delegated_from: tuple[str, ...] = field(default=())


async def list_requests(session: AsyncSession, *, person: PersonRow, scope: str, state: str | None,
                        policy: str | None, created_from: date | None, created_to: date | None, tz: str,
                        limit: int, offset: int) -> tuple[int, list[tuple[RequestRow, PersonRow, str | None]]]:
    """(total, page) of the requests `person` may see in `scope`, newest first; each with its requester and
    the title of its open step. `created_from`/`created_to` are days in `tz`, both included."""
    problems = {}
    if scope not in SCOPES:
        problems["scope"] = f"expected one of {', '.join(SCOPES)}"
    if state is not None and state not in REQUEST_STATES:
        problems["state"] = f"expected one of {', '.join(REQUEST_STATES)}"
    if created_from and created_to and created_to < created_from:
        problems["created_to"] = "is before created_from"
    if problems:
        raise InvalidInputError("the list filters are not valid", problems)
    involved = exists().where(AssignmentRow.request_id == RequestRow.id, AssignmentRow.person_id == person.id)
    query = select(RequestRow)
    if scope == "mine":
        query = query.where(RequestRow.requester_id == person.id)
    elif scope == "assigned":
        query = query.where(involved)
    elif "admin" not in person.roles:
        query = query.where(or_(RequestRow.requester_id == person.id, involved))
    if state:
        query = query.where(RequestRow.state == state)
    if policy:
        query = query.where(RequestRow.policy_id == policy)
    if created_from:
        query = query.where(RequestRow.created_at >= _day_start(created_from, tz))
    if created_to:
        query = query.where(RequestRow.created_at < _day_start(created_to, tz).add(days=1))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = list((await session.execute(query.order_by(RequestRow.created_at.desc(), RequestRow.id.desc())  # type: ignore[attr-defined]
                                       .limit(limit).offset(offset))).scalars())
    people = {p.id: p for p in (await session.execute(select(PersonRow).where(
        PersonRow.id.in_({r.requester_id for r in page})))).scalars()}  # type: ignore[attr-defined]
    open_steps = dict((await session.execute(select(StepRow.request_id, StepRow.title).where(
        StepRow.request_id.in_([r.id for r in page]), StepRow.state == "pending"))).all())  # type: ignore[attr-defined]
    return total, [(r, people[r.requester_id], open_steps.get(r.id)) for r in page]


async def open_tasks(session: AsyncSession, *, person_id: str, now: datetime) -> list[Task]:
    """Open steps waiting for `person_id`: assigned to them, or to an assignee whose delegation to them is
    in force and covers the request's policy (never their own request). Oldest deadline first."""
    base = (select(StepRow, RequestRow, PersonRow, AssignmentRow.person_id)
            .join(AssignmentRow, AssignmentRow.step_id == StepRow.id)
            .join(RequestRow, RequestRow.id == StepRow.request_id)
            .join(PersonRow, PersonRow.id == RequestRow.requester_id)
            .where(AssignmentRow.open, AssignmentRow.kind == "approver", StepRow.state == "pending"))
    mine = (await session.execute(base.where(AssignmentRow.person_id == person_id))).all()
    tasks = {s.id: Task(s, r, p) for s, r, p, _ in mine}
    delegations = await active_delegations(session, to_id=person_id, now=now)
    from_ids = {d.from_ for d in delegations}
    if from_ids:
        rows = (await session.execute(base.where(AssignmentRow.person_id.in_(from_ids)))).all()  # type: ignore[attr-defined]
        for step, request, requester, holder in rows:
            if (step.id in tasks and not tasks[step.id].delegated_from) or request.requester_id == person_id:
                continue
            if not any(d.from_ == holder and d.covers(policy=request.policy_id, at=now) for d in delegations):
                continue
            known = tasks.get(step.id)
            tasks[step.id] = Task(step, request, requester, (*(known.delegated_from if known else ()), holder))
    far = pendulum.datetime(9999, 1, 1)
    return sorted(tasks.values(), key=lambda t: (t.step.due_at or far, t.step.id or 0))


def task_counts(tasks: Sequence[Task], *, now: datetime, tz: str) -> tuple[int, int, dict[str, int]]:
    """(overdue, due later today in `tz`, count by policy)."""
    end_of_day = pendulum.instance(now).in_timezone(tz).end_of("day")
    overdue = sum(1 for t in tasks if t.step.due_at and t.step.due_at < now)
    today = sum(1 for t in tasks if t.step.due_at and now <= t.step.due_at <= end_of_day)
    by_policy: dict[str, int] = {}
    for t in tasks:
        by_policy[t.request.policy_id] = by_policy.get(t.request.policy_id, 0) + 1
    return overdue, today, by_policy


def _day_start(day: date, tz: str) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, tz=tz).in_timezone("UTC")
