"""The approval chain's mail: who is told what when a step opens, a request ends or returns.

Every message is an outbox row in the caller's transaction (store.outbox.queue_message); the `deliver`
flow sends it. Contexts are built here once, so every template sees the same request fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from policies.models import ApprovalPolicy
from store.notices import request_context, step_context
from store.organisation import people_by_id
from store.outbox import queue_message
from store.runtime import Runtime
from store.tables import DepartmentRow, PersonRow, RequestRow, StepRow

SYSTEM_NAME = "系统（超时自动处理）"


async def notify_assigned(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                          step: StepRow, people: Sequence[str], *, event_key: str, now: datetime,
                          event: str = "step_assigned") -> None:
    """Queue `event` to each person: `step_assigned` when the step becomes theirs, `step_reminder` when its
    deadline nears (the sweep's remind thresholds); both carry the request, the step and its link."""
    found = await people_by_id(session, {*people, request.requester_id})
    context = await request_context_of(session, request, policy, found[request.requester_id])
    for person_id in people:
        await queue_message(session, event_key=event_key, event=event, recipient=found[person_id], now=now,
                            context={"request": context, "step": step_context(step, policy.timezone),
                                     "link": f"{runtime.public_url}/requests/{request.id}"})


async def notify_filed(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                       step: StepRow | None, *, now: datetime) -> None:
    """Queue `request_filed` to the requester: what they filed, the step it now waits on (None when the
    chain already finished), who decides it and by when."""
    waiting_on = [p for p in step.assignees if p not in step.approved_by] if step is not None else []
    found = await people_by_id(session, {*waiting_on, request.requester_id})
    requester = found[request.requester_id]
    await queue_message(session, event_key=f"request:{request.id}:filed", event="request_filed", recipient=requester,
                        now=now,
                        context={"request": await request_context_of(session, request, policy, requester),
                                 "step": step_context(step, policy.timezone) if step is not None else None,
                                 "waiting_on": "、".join(found[p].name for p in waiting_on if p in found),
                                 "link": f"{runtime.public_url}/requests/{request.id}"})


async def notify_requester(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                           event: str, *, event_key: str, actor: str, reason: str | None, now: datetime,
                           extra: dict[str, object] | None = None) -> None:
    """Queue `event` to the requester: the request, who acted (or the system) and why, and `extra`."""
    people = await people_by_id(session, {actor, request.requester_id})
    requester = people[request.requester_id]
    await queue_message(session, event_key=event_key, event=event, recipient=requester, now=now,
                  context={"request": await request_context_of(session, request, policy, requester),
                           "decider_name": people[actor].name if actor in people else SYSTEM_NAME,
                           "reason": reason, "link": f"{runtime.public_url}/requests/{request.id}", **(extra or {})})


async def request_context_of(session: AsyncSession, request: RequestRow, policy: ApprovalPolicy,
                             requester: PersonRow) -> dict[str, object]:
    department = await session.get(DepartmentRow, requester.department_code)
    return request_context(request, policy, requester, department.name if department else "")
