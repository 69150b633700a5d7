"""Apply approval decisions: file a request, decide a step. Each call runs in the caller's transaction
and writes the state change, its audit event and its outbox rows together (or nothing).

The core (policies/chain*.py) decides; `apply_decision` stores what it decided: the steps' new states with
compare-and-set on the acted step, assignments, thresholds of opened steps, audit and notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import (
    SYSTEM,
    Action,
    Approval,
    Decision,
    DecisionError,
    PlannedStep,
    RequestState,
    RouteError,
    StepState,
    apply_action,
    plan_route,
)
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

SYSTEM_NAME = "系统（超时自动处理）"


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
                             "route": [{"step": p.step_id, "mode": p.mode, "quorum": p.quorum,
                                        "assignees": list(p.assignees), "why": list(p.why)} for p in route]})
    await _open_step(session, runtime, request, policy, steps[0], now=now)
    return request


async def decide(session: AsyncSession, runtime: Runtime, *, request_id: int, step_id: int, actor_id: str,
                 verb: str, reason: str | None, now: datetime) -> RequestRow:
    """Record one approval or rejection on an open step with compare-and-set; move the request on."""
    if verb not in ("approve", "reject"):
        raise InvalidInputError(f"unknown verb {verb!r}", {"verb": "expected approve or reject"})
    request = await visible_request(session, request_id, actor_id)
    step = await session.get(StepRow, step_id)
    if step is None or step.request_id != request.id:
        raise NotFoundError(f"request {request_id} has no step {step_id}")
    if step.state != "pending":
        raise ConflictError(f"step {step.title!r} is not open for decisions (it is {step.state})")
    # Lock order shared with the sweep: a step's thresholds before the step itself, so a decision and
    # a sweep firing that step's escalation wait for each other instead of deadlocking.
    await session.execute(select(ThresholdRow.id).where(
        ThresholdRow.subject_type == "step", ThresholdRow.subject_id == step.id).with_for_update())
    policy = await _policy(session, runtime, request)
    state, rows = await request_state(session, request, policy)
    try:
        decision = apply_action(policy, state, Action(verb=verb, actor=actor_id, step=step.position,  # type: ignore[arg-type]
                                                      reason=reason),
                                org=await load_organisation(session), now=now)
    except DecisionError as exc:
        if exc.reason == "reason_required":
            raise InvalidInputError(str(exc), {"reason": str(exc)}) from None
        if exc.reason in ("already_decided", "not_open"):
            raise ConflictError(str(exc)) from None
        raise ForbiddenError(str(exc)) from None
    await apply_decision(session, runtime, request, rows, policy, decision, now=now)
    return request


async def request_state(session: AsyncSession, request: RequestRow,
                        policy: ApprovalPolicy) -> tuple[RequestState, list[StepRow]]:
    """The request as the core sees it, and its step rows in position order."""
    rows = list((await session.execute(select(StepRow).where(StepRow.request_id == request.id)
                                       .order_by(StepRow.position))).scalars())  # type: ignore[arg-type]
    decisions = (await session.execute(select(func.count()).select_from(DecisionRow).where(
        DecisionRow.request_id == request.id))).scalar_one()  # type: ignore[arg-type]
    steps = tuple(StepState(key=r.step_key, policy_step=r.step_key, title=r.title, mode=r.mode,  # type: ignore[arg-type]
                            quorum=policy.step(r.step_key).quorum if r.mode == "quorum" else None,
                            state=r.state, assignees=tuple(r.assignees),  # type: ignore[arg-type]
                            approvals=tuple(Approval(place=p, actor=p) for p in r.approved_by))
                  for r in rows)
    return RequestState(requester=request.requester_id, policy=policy.id, state=request.state,  # type: ignore[arg-type]
                        steps=steps, decisions=decisions), rows


async def apply_decision(session: AsyncSession, runtime: Runtime, request: RequestRow, rows: Sequence[StepRow],
                         policy: ApprovalPolicy, decision: Decision, *, now: datetime,
                         data: dict[str, object] | None = None) -> None:
    """Store a core decision: step rows (compare-and-set on the acted step), the decision row, audit,
    assignments, opened steps and the request's end. `data` adds to the audit event (e.g. the threshold)."""
    if len(decision.after.steps) != len(rows):
        raise ConflictError("this action changes the route (加签), which the store does not apply yet")
    actor = decision.actor
    acted = rows[decision.step] if decision.step is not None else None
    for index, (row, new) in enumerate(zip(rows, decision.after.steps, strict=True)):
        if index in decision.opened or not _changed(row, new):
            continue
        closing = row.state == "pending" and new.state != "pending"
        query = update(StepRow).where(StepRow.id == row.id)  # type: ignore[arg-type]
        if row is acted:
            query = query.where(StepRow.version == row.version)  # type: ignore[arg-type]
        changed = await session.execute(query.values(
            state=new.state, assignees=list(new.assignees), approved_by=list(new.approved_by),
            version=row.version + 1, decided_at=now if closing else row.decided_at))
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(f"step {row.title!r} was decided by someone else just now")
        await session.refresh(row)
    if decision.verb in ("approve", "reject"):
        if acted is not None and actor != SYSTEM:
            session.add(DecisionRow(request_id=request.id or 0, step_id=acted.id or 0, actor_id=actor,
                                    verb=decision.verb, reason=decision.reason, decided_at=now))
        await append_audit(session, at=now, actor_id=actor, action=f"step.{decision.verb}", subject_type="request",
                           subject_id=request.id or 0,
                           data={"step": acted.step_key if acted else None, "step_id": acted.id if acted else None,
                                 "reason": decision.reason, "result": decision.step_state, **(data or {})})
    for index in decision.closed:
        await _close_assignments(session, rows[index])
        await _cancel_thresholds(session, "step", rows[index].id or 0, now)
    if acted is not None and decision.step_state == "pending" and decision.verb == "approve":
        await _close_assignments(session, acted, only=decision.on_behalf_of or actor)
    for index in decision.opened:
        rows[index].assignees = list(decision.after.steps[index].assignees)
        await _open_step(session, runtime, request, policy, rows[index], now=now)
    if decision.finished in ("approved", "rejected"):
        await _finish(session, runtime, request, policy, decision.finished, decider_id=actor,
                      reason=decision.reason, now=now)


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


async def assign(session: AsyncSession, step: StepRow, people: Sequence[str]) -> None:
    """Open an approver assignment for each person (reopening one they held before)."""
    existing = {a.person_id: a for a in (await session.execute(select(AssignmentRow).where(
        AssignmentRow.step_id == step.id, AssignmentRow.kind == "approver"))).scalars()}
    for person_id in people:
        if person_id in existing:
            existing[person_id].open = True
            session.add(existing[person_id])
        else:
            session.add(AssignmentRow(step_id=step.id or 0, request_id=step.request_id, person_id=person_id))


async def notify_assigned(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                          step: StepRow, people: Sequence[str], *, event_key: str, now: datetime) -> None:
    """Queue a `step_assigned` mail to each person (also used for step reminders)."""
    found = await people_by_id(session, {*people, request.requester_id})
    context = await _request_context(session, request, policy, found[request.requester_id])
    for person_id in people:
        queue_message(session, event_key=event_key, event="step_assigned", recipient=found[person_id], now=now,
                      context={"request": context, "step": step_context(step, policy.timezone),
                               "link": f"{runtime.public_url}/requests/{request.id}"})


def _changed(row: StepRow, new: StepState) -> bool:
    return (row.state, list(row.assignees), list(row.approved_by)) != (new.state, list(new.assignees),
                                                                        list(new.approved_by))


def _step_row(request: RequestRow, planned: PlannedStep) -> StepRow:
    return StepRow(request_id=request.id or 0, position=planned.index, step_key=planned.step_id,
                   title=planned.title, mode=planned.mode, assignees=list(planned.assignees))


async def _policy(session: AsyncSession, runtime: Runtime, request: RequestRow) -> ApprovalPolicy:
    policy = (await runtime.registry.version(session, request.policy_version_id)).policy
    assert isinstance(policy, ApprovalPolicy)
    return policy


async def _open_step(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                     step: StepRow, *, now: datetime) -> None:
    spec = policy.step(step.step_key)
    deadline = add_duration(now, spec.sla, runtime.calendar, tz=policy.timezone)
    step.state, step.opened_at, step.due_at, step.provisional = "pending", now, deadline.at, deadline.provisional
    session.add(step)
    await assign(session, step, step.assignees)
    for plan in step_thresholds(spec.escalate, deadline, runtime.calendar, tz=policy.timezone,
                                reminders=spec.remind, opened_at=now):
        session.add(ThresholdRow(subject_type="step", subject_id=step.id or 0, key=plan.key, action=plan.action,
                                 rung=plan.rung, fire_at=plan.fire_at, provisional=plan.provisional))
    await append_audit(session, at=now, actor_id=None, action="step.opened", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "assignees": step.assignees, "mode": step.mode,
                             "quorum": spec.quorum, "due_at": deadline.at.isoformat(),
                             "provisional": deadline.provisional})
    await notify_assigned(session, runtime, request, policy, step, step.assignees,
                          event_key=f"step:{step.id}:assigned", now=now)


async def _finish(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                  outcome: str, *, decider_id: str, reason: str | None, now: datetime) -> None:
    """The request ends; its audit event records what the outcome means (the policy's `outcomes`)."""
    request.state, request.decided_at = outcome, now
    session.add(request)
    meaning = policy.outcomes.approved.allows if outcome == "approved" and policy.outcomes.approved else \
        policy.outcomes.rejected.record if outcome == "rejected" and policy.outcomes.rejected else None
    await append_audit(session, at=now, actor_id=decider_id, action=f"request.{outcome}", subject_type="request",
                       subject_id=request.id or 0, data={"reason": reason, "outcome": meaning})
    people = await people_by_id(session, {decider_id, request.requester_id})
    requester = people[request.requester_id]
    decider_name = people[decider_id].name if decider_id in people else SYSTEM_NAME
    queue_message(session, event_key=f"request:{request.id}:decided", event="request_decided", recipient=requester,
                  now=now, context={"request": await _request_context(session, request, policy, requester),
                                    "outcome": outcome, "decider_name": decider_name, "meaning": meaning,
                                    "reason": reason, "link": f"{runtime.public_url}/requests/{request.id}"})
    from store.submissions import review_finished  # a submission's review ends with its request
    await review_finished(session, runtime, request, outcome, now)


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
