"""Apply approval decisions: file a request, decide a step. Each call runs in the caller's transaction
and writes the state change, its audit event and its outbox rows together (or nothing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import DecisionError, PlannedStep, RouteError, StepState, Verb, decide_step, plan_route
from policies.durations import add_duration
from policies.escalation import step_thresholds
from policies.forms import FormError, form_to_json, validate_form
from policies.models import ApprovalPolicy
from store.audit import append_audit
from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from store.notices import request_context, step_context
from store.organisation import load_organisation, people_by_id
from store.outbox import queue_message
from store.runtime import Runtime
from store.tables import (
    AssignmentRow,
    DecisionRow,
    DepartmentRow,
    PersonRow,
    RequestRow,
    StepRow,
    ThresholdRow,
)


async def file_request(session: AsyncSession, runtime: Runtime, *, policy_id: str, form: object,
                       requester_id: str, now: datetime) -> RequestRow:
    """Validate the form, plan the route, store the request and open its first step."""
    version_id, policy = runtime.registry.current_approval(policy_id)
    org = await load_organisation(session)
    if requester_id not in org.people:
        raise NotFoundError(f"no person {requester_id!r}")
    try:
        values = validate_form(policy, form, org)
        route = plan_route(policy, values, requester_id, org)
    except FormError as exc:
        raise InvalidInputError("the form does not satisfy the policy", exc.problems) from None
    except RouteError as exc:
        raise InvalidInputError(str(exc), {"route": str(exc)}) from None
    request = RequestRow(policy_version_id=version_id, policy_id=policy.id, title=policy.title,
                         requester_id=requester_id, form=form_to_json(values), created_at=now)
    session.add(request)
    await session.flush()
    steps = [_step_row(request, planned) for planned in route]
    session.add_all(steps)
    await session.flush()
    await append_audit(session, at=now, actor_id=requester_id, action="request.filed", subject_type="request",
                       subject_id=request.id or 0,
                       data={"policy": policy.id, "version": version_id, "form": request.form,
                             "route": [{"step": p.step_id, "assignees": list(p.assignees), "why": list(p.why)}
                                       for p in route]})
    await _open_step(session, runtime, request, policy, steps[0], now=now)
    return request


async def decide(session: AsyncSession, runtime: Runtime, *, request_id: int, step_id: int, actor_id: str,
                 verb: Verb, reason: str | None, now: datetime) -> RequestRow:
    """Record one decision on an open step with compare-and-set; move the request on."""
    request = await visible_request(session, request_id, actor_id)
    step = await session.get(StepRow, step_id)
    if step is None or step.request_id != request.id:
        raise NotFoundError(f"request {request_id} has no step {step_id}")
    if step.state != "pending":
        raise ConflictError(f"step {step.title!r} is not open for decisions (it is {step.state})")
    try:
        outcome = decide_step(StepState(step.mode, tuple(step.assignees), tuple(step.approved_by)),
                              actor=actor_id, requester=request.requester_id, verb=verb, reason=reason)
    except DecisionError as exc:
        if exc.reason == "reason_required":
            raise InvalidInputError(str(exc), {"reason": str(exc)}) from None
        if exc.reason == "already_decided":
            raise ConflictError(str(exc)) from None
        raise ForbiddenError(str(exc)) from None
    changed = await session.execute(
        update(StepRow).where(StepRow.id == step.id, StepRow.version == step.version)  # type: ignore[arg-type]
        .values(state=outcome.state, approved_by=list(outcome.approved_by), version=step.version + 1,
                decided_at=None if outcome.state == "pending" else now))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"step {step.title!r} was decided by someone else just now")
    await session.refresh(step)
    session.add(DecisionRow(request_id=request.id or 0, step_id=step.id or 0, actor_id=actor_id, verb=verb,
                            reason=reason, decided_at=now))
    await append_audit(session, at=now, actor_id=actor_id, action=f"step.{verb}", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "step_id": step.id, "reason": reason, "result": outcome.state})
    if outcome.state == "pending":
        await _close_assignments(session, step, only=actor_id)
        return request
    await _close_assignments(session, step)
    await _cancel_thresholds(session, "step", step.id or 0, now)
    policy = (await runtime.registry.version(session, request.policy_version_id)).policy
    assert isinstance(policy, ApprovalPolicy)
    if outcome.state == "approved":
        following = (await session.execute(select(StepRow).where(
            StepRow.request_id == request.id, StepRow.position > step.position)
            .order_by(StepRow.position).limit(1))).scalar_one_or_none()  # type: ignore[arg-type]
        if following is not None:
            await _open_step(session, runtime, request, policy, following, now=now)
            return request
    await _finish(session, runtime, request, policy, outcome.state, decider_id=actor_id, reason=reason, now=now)
    return request


async def visible_request(session: AsyncSession, request_id: int, person_id: str) -> RequestRow:
    """The request if `person_id` may see it (requester, anyone assigned or escalated to, admin)."""
    request = await session.get(RequestRow, request_id)
    if request is None:
        raise NotFoundError(f"no request {request_id}")
    if request.requester_id == person_id:
        return request
    involved = (await session.execute(select(AssignmentRow.id).where(
        AssignmentRow.request_id == request_id, AssignmentRow.person_id == person_id).limit(1))).first()
    if involved is None:
        person = await session.get(PersonRow, person_id)
        if person is None or "admin" not in person.roles:
            raise NotFoundError(f"no request {request_id}")
    return request


def _step_row(request: RequestRow, planned: PlannedStep) -> StepRow:
    return StepRow(request_id=request.id or 0, position=planned.index, step_key=planned.step_id,
                   title=planned.title, mode=planned.mode, assignees=list(planned.assignees))


async def _open_step(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                     step: StepRow, *, now: datetime) -> None:
    spec = next(s for s in policy.steps if s.id == step.step_key)
    deadline = add_duration(now, spec.sla, runtime.calendar, tz=policy.timezone)
    step.state, step.opened_at, step.due_at, step.provisional = "pending", now, deadline.at, deadline.provisional
    session.add(step)
    for person_id in step.assignees:
        session.add(AssignmentRow(step_id=step.id or 0, request_id=request.id or 0, person_id=person_id))
    for plan in step_thresholds(spec.escalate, deadline, runtime.calendar, tz=policy.timezone):
        session.add(ThresholdRow(subject_type="step", subject_id=step.id or 0, key=plan.key, action=plan.action,
                                 rung=plan.rung, fire_at=plan.fire_at, provisional=plan.provisional))
    await append_audit(session, at=now, actor_id=None, action="step.opened", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "assignees": step.assignees,
                             "due_at": deadline.at.isoformat(), "provisional": deadline.provisional})
    people = await people_by_id(session, {*step.assignees, request.requester_id})
    context = await _request_context(session, request, policy, people[request.requester_id])
    for person_id in step.assignees:
        queue_message(session, event_key=f"step:{step.id}:assigned", event="step_assigned",
                      recipient=people[person_id], now=now,
                      context={"request": context, "step": step_context(step, policy.timezone),
                               "link": f"{runtime.public_url}/requests/{request.id}"})


async def _finish(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                  outcome: str, *, decider_id: str, reason: str | None, now: datetime) -> None:
    request.state, request.decided_at = outcome, now
    session.add(request)
    if outcome == "rejected":
        await session.execute(update(StepRow).where(StepRow.request_id == request.id, StepRow.state == "waiting")
                              .values(state="cancelled"))  # type: ignore[arg-type]
    await append_audit(session, at=now, actor_id=decider_id, action=f"request.{outcome}", subject_type="request",
                       subject_id=request.id or 0, data={"reason": reason})
    people = await people_by_id(session, {decider_id, request.requester_id})
    requester = people[request.requester_id]
    queue_message(session, event_key=f"request:{request.id}:decided", event="request_decided", recipient=requester,
                  now=now, context={"request": await _request_context(session, request, policy, requester),
                                    "outcome": outcome, "decider_name": people[decider_id].name,
                                    "reason": reason, "link": f"{runtime.public_url}/requests/{request.id}"})


async def _request_context(session: AsyncSession, request: RequestRow, policy: ApprovalPolicy,
                           requester: PersonRow) -> dict[str, object]:
    department = await session.get(DepartmentRow, requester.department_code)
    return request_context(request, policy, requester, department.name if department else "")


async def _close_assignments(session: AsyncSession, step: StepRow, *, only: str | None = None) -> None:
    query = update(AssignmentRow).where(AssignmentRow.step_id == step.id, AssignmentRow.kind == "approver")
    if only is not None:
        query = query.where(AssignmentRow.person_id == only)
    await session.execute(query.values(open=False))


async def _cancel_thresholds(session: AsyncSession, subject_type: str, subject_id: int, now: datetime) -> None:
    await session.execute(update(ThresholdRow).where(
        ThresholdRow.subject_type == subject_type, ThresholdRow.subject_id == subject_id,
        ThresholdRow.state == "pending").values(state="cancelled", fired_at=now))  # type: ignore[arg-type]
