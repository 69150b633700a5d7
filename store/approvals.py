"""Apply approval decisions: file a request, store what the core decided. Each call runs in the caller's
transaction and writes the state change, its audit event and its outbox rows together (or nothing).

The core (policies/chain*.py) decides; `apply_decision` stores what it decided: steps added by 加签 (later
steps renumbered), the steps' new states and the request's state with compare-and-set, a decision row for
every verb (actor None for the system), assignments, fresh thresholds of opened steps, audit and
notifications. The verbs people use are in store/request_verbs.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import (
    SYSTEM,
    Approval,
    Decision,
    PlannedStep,
    RequestState,
    RouteError,
    StepState,
    plan_route,
)
from policies.durations import add_duration
from policies.escalation import step_thresholds
from policies.forms import FormError, form_to_json, validate_form
from policies.models import ApprovalPolicy
from store.approval_mail import notify_assigned, notify_filed, notify_requester
from store.attachments import attach
from store.audit import append_audit
from store.decision_record import audit_action, audit_data, decided_place, decision_target
from store.delegations import active_delegations, delegators
from store.errors import ConflictError, InvalidInputError, NotFoundError
from store.organisation import load_organisation
from store.runtime import Runtime
from store.tables import (
    AssignmentRow,
    DecisionRow,
    PersonRow,
    RequestRow,
    StepRow,
    ThresholdRow,
)


async def file_request(session: AsyncSession, runtime: Runtime, *, policy_id: str, form: object,
                       requester_id: str, now: datetime, attach_files: bool = True) -> RequestRow:
    """Validate the form, plan the route, store the request and open its first step; the requester is told
    (`request_filed`, event key `request:<id>:filed`) in the same transaction."""
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
    if attach_files:
        await _attach_form_files(session, policy, values, request, requester_id, now)
    await _open_step(session, runtime, request, policy, steps[0], now=now)
    await notify_filed(session, runtime, request, policy, next((s for s in steps if s.state == "pending"), None),
                       now=now)
    return request


async def _attach_form_files(session: AsyncSession, policy: ApprovalPolicy, values: dict[str, object],
                             request: RequestRow, requester_id: str, now: datetime) -> None:
    """The files the form's attachment fields name (ids of the requester's uploads, POST /api/attachments)
    now belong to the request, so whoever may see the request may open them. A paper copy ({name, kind})
    or a reference that is not one of our ids stays as written."""
    fields = {int(v): name for name, spec in policy.form.items() if spec.type == "attachment"
              and isinstance(v := values.get(name), str) and v.isdigit() and len(v) < 10}
    if not fields:
        return
    try:
        await attach(session, attachment_ids=list(fields), owner_type="request", owner_id=request.id or 0,
                     person_id=requester_id, now=now)
    except (InvalidInputError, ConflictError) as exc:
        problems = {f"form.{fields[int(key.split('.')[-1])]}": message
                    for key, message in getattr(exc, "problems", {}).items() if key.split(".")[-1].isdigit()}
        raise InvalidInputError(f"the form names a file that cannot be attached: {exc}", problems) from None


async def decide(session: AsyncSession, runtime: Runtime, *, request_id: int, step_id: int, actor_id: str,
                 verb: str, reason: str | None, now: datetime) -> RequestRow:
    """Record one approval or rejection on an open step (store.request_verbs.act does every verb)."""
    from store.request_verbs import act  # act builds on this module's functions

    if verb not in ("approve", "reject"):
        raise InvalidInputError(f"unknown verb {verb!r}", {"verb": "expected approve or reject"})
    return await act(session, runtime, request_id=request_id, step_id=step_id, actor_id=actor_id, verb=verb,
                     reason=reason, now=now)


DECIDING_VERBS = ("approve", "reject", "send_back")
"""The verbs that count as decisions on a request (撤回 is possible only before the first)."""


async def request_state(session: AsyncSession, request: RequestRow,
                        policy: ApprovalPolicy) -> tuple[RequestState, list[StepRow]]:
    """The request as the core sees it, and its step rows in position order. Who actually gave each
    approval (a delegate, or the system) is read back from the decision rows."""
    rows = list((await session.execute(select(StepRow).where(StepRow.request_id == request.id)
                                       .order_by(StepRow.position))).scalars())  # type: ignore[arg-type]
    decided = list((await session.execute(select(DecisionRow).where(
        DecisionRow.request_id == request.id, DecisionRow.verb.in_(DECIDING_VERBS))  # type: ignore[attr-defined]
        .order_by(DecisionRow.id))).scalars())  # type: ignore[arg-type]
    actors: dict[tuple[int, str], str] = {}
    for d in decided:
        if d.verb == "approve" and d.step_id is not None:
            actor = d.actor_id or SYSTEM
            actors[(d.step_id, d.on_behalf_of or actor)] = actor
    steps = tuple(StepState(key=r.step_key, policy_step=r.policy_step or r.step_key, title=r.title,
                            mode=r.mode,  # type: ignore[arg-type]
                            quorum=policy.step(r.policy_step or r.step_key).quorum if r.mode == "quorum" else None,
                            state=r.state, assignees=tuple(r.assignees), added_by=r.added_by,  # type: ignore[arg-type]
                            approvals=tuple(Approval(place=p, actor=actors.get((r.id or 0, p), p))
                                            for p in r.approved_by))
                  for r in rows)
    return RequestState(requester=request.requester_id, policy=policy.id, state=request.state,  # type: ignore[arg-type]
                        steps=steps, decisions=len(decided)), rows


async def apply_decision(session: AsyncSession, runtime: Runtime, request: RequestRow, rows: Sequence[StepRow],
                         policy: ApprovalPolicy, decision: Decision, *, now: datetime,
                         data: dict[str, object] | None = None) -> DecisionRow:
    """Store a core decision: the route (steps added by 加签), step rows with compare-and-set, the
    request's state (compare-and-set), the decision row, audit, assignments, opened steps, notifications
    and the request's end. `data` adds to the audit event (e.g. the threshold). 409 on a lost race."""
    rows = await _align_route(session, request, rows, decision.after.steps)
    acted = rows[decision.step] if decision.step is not None else None
    await _store_request_state(session, request, decision)
    for index, (row, new) in enumerate(zip(rows, decision.after.steps, strict=True)):
        if index in decision.opened:
            continue
        # The acted step is always compare-and-set (even when 加签 after leaves it as it was), so two
        # concurrent actions on one step never both succeed; a comment changes nothing and races nobody.
        if _changed(row, new) or (row is acted and decision.verb != "comment"):
            await _store_step(session, row, new, now=now)
    actor = decision.actor
    place = decided_place(decision)
    row = DecisionRow(request_id=request.id or 0, step_id=acted.id if acted else None,
                      actor_id=None if actor == SYSTEM else actor,
                      on_behalf_of=place if place not in (None, actor) else None, verb=decision.verb,
                      reason=decision.reason, target=decision_target(decision), decided_at=now)
    session.add(row)
    await session.flush()
    if decision.verb not in ("reassign", "comment", "withdraw"):  # the sweep, comments, the end audit themselves
        await append_audit(session, at=now, actor_id=actor, action=audit_action(decision), subject_type="request",
                           subject_id=request.id or 0, data=audit_data(decision, acted, place, data))
    for index in decision.closed:
        await _close_assignments(session, rows[index])
        await _cancel_thresholds(session, "step", rows[index].id or 0, now)
    if acted is not None and decision.step_state == "pending" and decision.verb == "approve":
        await _close_assignments(session, acted, only=place or actor)
    await _notify_newcomers(session, runtime, request, policy, rows, decision, row, now=now)
    for index in decision.opened:
        await _open_step(session, runtime, request, policy, rows[index], now=now, new=decision.after.steps[index])
    if decision.verb == "send_back" and decision.target == "requester":
        await notify_requester(session, runtime, request, policy, "request_returned", event_key=f"decision:{row.id}",
                                actor=actor, reason=decision.reason, now=now)
        await _review_finished(session, runtime, request, "returned", now)
    if decision.finished is not None:
        await _finish(session, runtime, request, policy, decision.finished, decider_id=actor,
                      reason=decision.reason, now=now)
    return row


async def _align_route(session: AsyncSession, request: RequestRow, rows: Sequence[StepRow],
                       steps: Sequence[StepState]) -> list[StepRow]:
    """Rows in the order of `steps`, inserting the steps 加签 added. Positions are unique per request, so
    the later steps move up first, highest first, before the new rows take the places freed."""
    by_key = {r.step_key: r for r in rows}
    if [s.key for s in steps] == [r.step_key for r in rows]:
        return list(rows)
    wanted = {s.key: i for i, s in enumerate(steps)}
    if not set(by_key) <= set(wanted):
        raise ConflictError("a step of this request would disappear; reload and try again")
    for row in sorted(rows, key=lambda r: r.position, reverse=True):
        if wanted[row.step_key] != row.position:
            row.position = wanted[row.step_key]
            session.add(row)
            await session.flush()  # one row at a time, in this order, so no two rows share a position
    aligned: list[StepRow] = []
    for index, step in enumerate(steps):
        row = by_key.get(step.key)
        if row is None:
            row = StepRow(request_id=request.id or 0, position=index, step_key=step.key,
                          policy_step=step.policy_step, added_by=step.added_by, title=step.title, mode=step.mode,
                          assignees=list(step.assignees), state="waiting")
            session.add(row)
            await session.flush()
        aligned.append(row)
    return aligned


async def _store_request_state(session: AsyncSession, request: RequestRow, decision: Decision) -> None:
    if decision.after.state == decision.before.state:
        return
    changed = await session.execute(update(RequestRow).where(
        RequestRow.id == request.id, RequestRow.state == decision.before.state)  # type: ignore[arg-type]
        .values(state=decision.after.state))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"request {request.id} was changed by someone else just now; reload and try again")
    await session.refresh(request)


async def _store_step(session: AsyncSession, row: StepRow, new: StepState, *, now: datetime) -> None:
    closing = row.state == "pending" and new.state != "pending"
    changed = await session.execute(update(StepRow).where(
        StepRow.id == row.id, StepRow.version == row.version)  # type: ignore[arg-type]
        .values(state=new.state, assignees=list(new.assignees), approved_by=list(new.approved_by),
                version=row.version + 1, decided_at=now if closing else row.decided_at))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"step {row.title!r} was decided by someone else just now")
    await session.refresh(row)


async def _notify_newcomers(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                            rows: Sequence[StepRow], decision: Decision, row: DecisionRow, *, now: datetime) -> None:
    """People who joined the open step (转交, parallel 加签): an assignment and a `step_assigned` mail."""
    if decision.verb not in ("transfer", "add_approver") or decision.step is None:
        return
    index = decision.step
    if decision.after.steps[index].state != "pending":
        return  # 加签 before/after: the added step notifies its people when it opens
    old = set(decision.before.steps[index].assignees) if len(decision.before.steps) == len(decision.after.steps) \
        else set()
    people = [p for p in decision.after.steps[index].assignees if p not in old]
    if not people:
        return
    step = rows[index]
    if decision.verb == "transfer":
        await _close_assignments(session, step, only=decision.actor)
    await assign(session, step, people)
    await notify_assigned(session, runtime, request, policy, step, people, event_key=f"decision:{row.id}:assigned",
                          now=now)


async def visible_request(session: AsyncSession, request_id: int, person_id: str, *,
                          now: datetime | None = None) -> RequestRow:
    """The request if `person_id` may see it: the requester, anyone assigned or escalated to, an
    administrator, and (given `now`) a delegate of an assignee whose delegation is in force and covers the
    policy. Anyone else gets NotFoundError, so existence is not leaked."""
    request = await session.get(RequestRow, request_id)
    if request is None:
        raise NotFoundError(f"no request {request_id}")
    if request.requester_id == person_id:
        return request
    involved = (await session.execute(select(AssignmentRow.id).where(
        AssignmentRow.request_id == request_id, AssignmentRow.person_id == person_id).limit(1))).first()
    if involved is not None:
        return request
    if now is not None:
        from_ids = delegators(await active_delegations(session, to_id=person_id, now=now),
                              policy=request.policy_id, now=now)
        if from_ids and (await session.execute(select(AssignmentRow.id).where(
                AssignmentRow.request_id == request_id, AssignmentRow.kind == "approver",
                AssignmentRow.person_id.in_(from_ids)).limit(1))).first() is not None:  # type: ignore[attr-defined]
            return request
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
                     step: StepRow, *, now: datetime, new: StepState | None = None) -> None:
    """Open a step: assignments, SLA, thresholds, audit, mail. A step opened again (after a send-back, or
    after 加签 before it) gets a new version and fresh thresholds, keyed `<key>@<version>` (threshold keys
    are unique per step), and its mails fresh event keys; the first opening keeps the plain keys."""
    spec = policy.step(step.policy_step or step.step_key)
    reopened = step.opened_at is not None
    if new is not None:
        step.assignees, step.approved_by = list(new.assignees), list(new.approved_by)
    if reopened:
        step.version += 1
    suffix = f"@{step.version}" if reopened else ""
    deadline = add_duration(now, spec.sla, runtime.calendar, tz=policy.timezone)
    step.state, step.opened_at, step.due_at, step.provisional = "pending", now, deadline.at, deadline.provisional
    step.decided_at = None
    session.add(step)
    await assign(session, step, step.assignees)
    for plan in step_thresholds(spec.escalate, deadline, runtime.calendar, tz=policy.timezone,
                                reminders=spec.remind, opened_at=now):
        session.add(ThresholdRow(subject_type="step", subject_id=step.id or 0, key=f"{plan.key}{suffix}",
                                 action=plan.action, rung=plan.rung, fire_at=plan.fire_at,
                                 provisional=plan.provisional))
    await append_audit(session, at=now, actor_id=None, action="step.opened", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "assignees": step.assignees, "mode": step.mode,
                             "quorum": spec.quorum, "due_at": deadline.at.isoformat(),
                             "provisional": deadline.provisional, "round": step.version if reopened else 1})
    await notify_assigned(session, runtime, request, policy, step, step.assignees,
                          event_key=f"step:{step.id}:assigned{suffix}", now=now)


async def _finish(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                  outcome: str, *, decider_id: str, reason: str | None, now: datetime) -> None:
    """The request ends; its audit event records what the outcome means (the policy's `outcomes`). The
    requester is told: the outcome (`request_decided`), or the confirmation of their withdrawal."""
    request.state, request.decided_at = outcome, now
    session.add(request)
    await _review_finished(session, runtime, request, outcome, now)
    if outcome == "withdrawn":
        await append_audit(session, at=now, actor_id=decider_id, action="request.withdrawn", subject_type="request",
                           subject_id=request.id or 0, data={"reason": reason})
        await notify_requester(session, runtime, request, policy, "request_withdrawn",
                                event_key=f"request:{request.id}:withdrawn", actor=decider_id, reason=reason, now=now)
        return
    meaning = policy.outcomes.approved.allows if outcome == "approved" and policy.outcomes.approved else \
        policy.outcomes.rejected.record if outcome == "rejected" and policy.outcomes.rejected else None
    await append_audit(session, at=now, actor_id=decider_id, action=f"request.{outcome}", subject_type="request",
                       subject_id=request.id or 0, data={"reason": reason, "outcome": meaning})
    await notify_requester(session, runtime, request, policy, "request_decided",
                           event_key=f"request:{request.id}:decided", actor=decider_id, reason=reason, now=now,
                           extra={"outcome": outcome, "meaning": meaning})


async def _review_finished(session: AsyncSession, runtime: Runtime, request: RequestRow, outcome: str,
                           now: datetime) -> None:
    """When the request reviews a report submission, its end (or return to the submitter) settles it."""
    from store.submissions import review_finished  # a local import: submissions files its reviews through here

    await review_finished(session, runtime, request, outcome, now)


async def _close_assignments(session: AsyncSession, step: StepRow, *, only: str | None = None) -> None:
    query = update(AssignmentRow).where(AssignmentRow.step_id == step.id, AssignmentRow.kind == "approver")
    if only is not None:
        query = query.where(AssignmentRow.person_id == only)
    await session.execute(query.values(open=False))


async def _cancel_thresholds(session: AsyncSession, subject_type: str, subject_id: int, now: datetime) -> None:
    await session.execute(update(ThresholdRow).where(
        ThresholdRow.subject_type == subject_type, ThresholdRow.subject_id == subject_id,
        ThresholdRow.state == "pending").values(state="cancelled", fired_at=now))  # type: ignore[arg-type]
