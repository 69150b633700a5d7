"""Fire thresholds that have come due: one indexed range scan, then compare-and-set per threshold.

A step threshold reminds the undecided assignees (`remind-n`, mailed as `step_reminder` with the event key
`step:<id>:remind-n`), or fires an escalation rung: notify (督办 mail, the people become watchers),
reassign (the undecided places move; new assignments and `step_assigned` mail), or decide (the system
approves or rejects, as actor "system"; audit and outbox as for a person's decision). Automatic decisions
and reassignments leave a decision row with no actor (store.approvals.apply_decision). A step opened again
(after a send-back) has fresh thresholds keyed `<key>@<version>`; the key names the round in mail keys.

A threshold moves from `pending` to `fired` (or `skipped` when its item is no longer open) with
`UPDATE ... WHERE state = 'pending'`; only the transaction whose update matched applies the effects,
so each threshold fires once even when two sweeps overlap. On PostgreSQL the scan also takes
`FOR UPDATE SKIP LOCKED`, so concurrent sweeps split the work instead of waiting on each other.

Speed (bench/sweep_million.py): a batch loads its obligations in one query, marks consecutive obligation
thresholds with one such UPDATE per outcome (`... WHERE id IN (...) AND state = 'pending' RETURNING id`),
looks up each person and department once, and writes the mail rows together when it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import SYSTEM, DecisionError
from policies.escalation import fires, rung_effect
from policies.models import ApprovalPolicy, CalendarPolicy, PersonRule
from policies.org import Organisation
from policies.routing import Context, resolve_people
from store.approval_mail import notify_assigned
from store.approvals import apply_decision, assign, request_state
from store.audit import append_audit
from store.faults import fault_point
from store.notices import obligation_context, request_context, step_context
from store.organisation import load_organisation, people_by_id
from store.outbox import queue_message
from store.runtime import Runtime
from store.tables import AssignmentRow, DepartmentRow, ObligationRow, PersonRow, RequestRow, StepRow, ThresholdRow


async def claim_due(session: AsyncSession, runtime: Runtime, *, now: datetime, limit: int) -> list[ThresholdRow]:
    query = (select(ThresholdRow).where(ThresholdRow.state == "pending", ThresholdRow.fire_at <= now)
             .order_by(ThresholdRow.fire_at, ThresholdRow.id).limit(limit))  # type: ignore[arg-type]
    if not runtime.sqlite:
        query = query.with_for_update(skip_locked=True)
    return list((await session.execute(query)).scalars())


async def fire_thresholds(session: AsyncSession, runtime: Runtime, thresholds: Sequence[ThresholdRow], *,
                          now: datetime) -> dict[str, int]:
    """Apply each threshold's effects in the caller's transaction; returns counts by outcome."""
    counts = {"fired": 0, "skipped": 0, "lost": 0}
    org = await load_organisation(session)
    lookups = _Lookups(session)
    # the batch's obligations in one query; held here, so `session.get` finds them without another
    wanted = sorted({t.subject_id for t in thresholds if t.subject_type == "obligation"})
    held = list((await session.execute(select(ObligationRow).where(
        ObligationRow.id.in_(wanted)))).scalars()) if wanted else []  # type: ignore[union-attr]
    position = 0
    while position < len(thresholds):
        if thresholds[position].subject_type == "step":
            counts[await _fire_step(session, runtime, org, thresholds[position], now)] += 1
            position += 1
            fault_point("sweep.after_threshold")  # a crash here must leave the whole batch unapplied
            continue
        run = []  # consecutive obligation thresholds: none of them changes whether another one fires
        while position < len(thresholds) and thresholds[position].subject_type != "step":
            run.append(thresholds[position])
            position += 1
        for outcome in await _fire_obligations(session, runtime, org, lookups, run, now):
            counts[outcome] += 1
            fault_point("sweep.after_threshold")
    del held
    return counts


class _Lookups:
    """People and departments of one batch, each read once (the identity map forgets unreferenced rows)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._people: dict[str, PersonRow] = {}
        self._departments: dict[str, DepartmentRow | None] = {}

    async def people(self, ids: Iterable[str]) -> dict[str, PersonRow]:
        wanted = set(ids)
        missing = wanted - self._people.keys()
        if missing:
            self._people.update(await people_by_id(self.session, missing))
        return {i: self._people[i] for i in wanted if i in self._people}

    async def department(self, code: str) -> DepartmentRow | None:
        if code not in self._departments:
            self._departments[code] = await self.session.get(DepartmentRow, code)
        return self._departments[code]


async def _mark(session: AsyncSession, threshold: ThresholdRow, state: str, now: datetime) -> bool:
    result = await session.execute(update(ThresholdRow).where(
        ThresholdRow.id == threshold.id, ThresholdRow.state == "pending")  # type: ignore[arg-type]
        .values(state=state, fired_at=now))
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _mark_all(session: AsyncSession, states: Sequence[tuple[ThresholdRow, str]], now: datetime) -> set[int]:
    """`_mark` for many thresholds in one statement per state; returns the ids whose update matched. No
    autoflush: what the batch has added so far (mail, changed items) does not bear on these rows, and is
    written together at commit."""
    won: set[int] = set()
    for state in ("fired", "skipped"):
        ids = sorted({t.id for t, s in states if s == state and t.id is not None})
        if ids:
            with session.no_autoflush:
                result = await session.execute(update(ThresholdRow).where(
                    ThresholdRow.id.in_(ids), ThresholdRow.state == "pending")  # type: ignore[union-attr,arg-type]
                    .values(state=state, fired_at=now).returning(ThresholdRow.id))
            won.update(result.scalars())
    return won


async def _fire_step(session: AsyncSession, runtime: Runtime, org: Organisation, threshold: ThresholdRow,
                     now: datetime) -> str:
    step = await session.get(StepRow, threshold.subject_id)
    is_open = step is not None and step.state == "pending"
    if not fires(threshold.action, item_open=is_open, now=now, due_at=step.due_at if step else None):  # type: ignore[arg-type]
        return "skipped" if await _mark(session, threshold, "skipped", now) else "lost"
    assert step is not None
    if not await _mark(session, threshold, "fired", now):
        return "lost"
    request = await session.get(RequestRow, step.request_id)
    assert request is not None
    policy = (await runtime.registry.version(session, request.policy_version_id)).policy
    assert isinstance(policy, ApprovalPolicy)
    waiting_on = [a for a in step.assignees if a not in step.approved_by]
    if threshold.action == "remind":
        await append_audit(session, at=now, actor_id=None, action="step.reminded", subject_type="request",
                           subject_id=request.id or 0,
                           data={"step": step.step_key, "threshold": threshold.key, "to": waiting_on})
        await notify_assigned(session, runtime, request, policy, step, waiting_on,
                              event_key=f"step:{step.id}:{threshold.key}", now=now, event="step_reminder")
        return "fired"
    rung = policy.step(step.policy_step or step.step_key).escalate[threshold.rung or 0]  # 加签 steps: their rules
    state, rows = await request_state(session, request, policy)
    try:
        effect = rung_effect(policy, state, step.position, rung, org=org, form=request.form)
    except DecisionError as exc:
        await append_audit(session, at=now, actor_id=None, action="step.escalation_failed", subject_type="request",
                           subject_id=request.id or 0,
                           data={"step": step.step_key, "threshold": threshold.key, "action": rung.action,
                                 "reason": exc.reason, "message": str(exc)})
        return "fired"
    if effect.action == "decide":
        assert effect.decision is not None
        await apply_decision(session, runtime, request, rows, policy, effect.decision, now=now,
                             data={"threshold": threshold.key, "automatic": True})
        return "fired"
    if effect.action == "reassign":
        assert effect.decision is not None
        await apply_decision(session, runtime, request, rows, policy, effect.decision, now=now)
        await _reassign(session, runtime, request, policy, step, threshold, waiting_on, list(effect.targets), now)
        return "fired"
    await _notify(session, runtime, request, policy, step, threshold, waiting_on, list(effect.targets), now)
    return "fired"


async def _reassign(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                    step: StepRow, threshold: ThresholdRow, waiting_on: list[str], targets: list[str],
                    now: datetime) -> None:
    """The step's undecided places went to `targets`: their assignments open, the others' close."""
    await session.execute(update(AssignmentRow).where(
        AssignmentRow.step_id == step.id, AssignmentRow.kind == "approver",  # type: ignore[arg-type]
        AssignmentRow.person_id.in_(waiting_on)).values(open=False))  # type: ignore[attr-defined]
    await assign(session, step, targets)
    await append_audit(session, at=now, actor_id=SYSTEM, action="step.reassigned", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "threshold": threshold.key, "from": waiting_on, "to": targets})
    await notify_assigned(session, runtime, request, policy, step, targets, event_key=f"threshold:{threshold.id}",
                          now=now)


async def _notify(session: AsyncSession, runtime: Runtime, request: RequestRow, policy: ApprovalPolicy,
                  step: StepRow, threshold: ThresholdRow, waiting_on: list[str], targets: list[str],
                  now: datetime) -> None:
    """督办: the rung's people are told (and may see the request); the step stays with its assignees."""
    existing = set((await session.execute(select(AssignmentRow.person_id).where(
        AssignmentRow.step_id == step.id, AssignmentRow.kind == "watcher"))).scalars())
    for person_id in targets:
        if person_id not in existing:
            session.add(AssignmentRow(step_id=step.id or 0, request_id=request.id or 0, person_id=person_id,
                                      kind="watcher", open=False))
    await append_audit(session, at=now, actor_id=None, action="step.escalated", subject_type="request",
                       subject_id=request.id or 0,
                       data={"step": step.step_key, "threshold": threshold.key, "to": targets,
                             "waiting_on": waiting_on})
    people = await people_by_id(session, {*targets, *waiting_on, request.requester_id})
    department = await session.get(DepartmentRow, people[request.requester_id].department_code)
    context = {"request": request_context(request, policy, people[request.requester_id],
                                          department.name if department else ""),
               "step": step_context(step, policy.timezone),
               "approver_name": "、".join(people[a].name for a in waiting_on if a in people),
               "link": f"{runtime.public_url}/requests/{request.id}"}
    for person_id in targets:
        await queue_message(session, event_key=f"threshold:{threshold.id}", event="step_escalated",
                      recipient=people[person_id], context=context, now=now)


async def _fire_obligations(session: AsyncSession, runtime: Runtime, org: Organisation, lookups: _Lookups,
                            run: Sequence[ThresholdRow], now: datetime) -> list[str]:
    """Obligation thresholds, in order: whether each fires is decided first and all are marked at once
    (marking one late keeps it open, so no threshold of the run changes whether another one fires)."""
    decided: list[tuple[ThresholdRow, ObligationRow | None, bool]] = []
    for threshold in run:
        obligation = await session.get(ObligationRow, threshold.subject_id)
        is_open = obligation is not None and obligation.state in ("open", "late")
        decided.append((threshold, obligation, fires(threshold.action, item_open=is_open, now=now,  # type: ignore[arg-type]
                                                     due_at=obligation.due_at if obligation else None)))
    won = await _mark_all(session, [(t, "fired" if firing else "skipped") for t, _, firing in decided], now)
    outcomes = []
    for threshold, obligation, firing in decided:
        if threshold.id not in won:
            outcomes.append("lost")
            continue
        won.discard(threshold.id)  # the same threshold twice in a batch: the second one lost
        if not firing:
            outcomes.append("skipped")
            continue
        assert obligation is not None
        await _fire_obligation(session, runtime, org, lookups, threshold, obligation, now)
        outcomes.append("fired")
    return outcomes


async def _fire_obligation(session: AsyncSession, runtime: Runtime, org: Organisation, lookups: _Lookups,
                           threshold: ThresholdRow, obligation: ObligationRow, now: datetime) -> None:
    """The effects of one obligation threshold that has just been marked fired."""
    policy = (await runtime.registry.version(session, obligation.policy_version_id)).policy
    assert isinstance(policy, CalendarPolicy)
    spec = next(o for o in policy.obligations if o.id == obligation.obligation_key)
    rules = policy.rules_for(spec)
    if threshold.action == "mark_late":
        obligation.state, obligation.late = "late", True
        session.add(obligation)
        # with a points rule, a report missing at its due time costs `missing` points until it is handed in
        penalty = {"points": policy.points.missing} if policy.points is not None else {}
        await append_audit(session, at=now, actor_id=None, action="obligation.late", subject_type="obligation",
                           subject_id=obligation.id or 0, data={"due_at": obligation.due_at.isoformat(), **penalty})
        return
    if threshold.action == "remind":
        dept = org.departments.get(obligation.owner_department)
        if rules.owner.role:
            targets = [p.id for p in org.people.values()
                       if p.department == obligation.owner_department and rules.owner.role in p.roles and p.active]
        else:
            head = org.people.get(dept.head) if dept and dept.head else None
            targets = [head.id] if head is not None and head.active else []  # nobody is mailed who has left
        event = "obligation_reminder"
    else:
        rung = rules.escalate[threshold.rung or 0]
        targets = _targets(rung.notify, org, [Context(owner_department=obligation.owner_department)], exclude=set())
        event = "obligation_overdue"
    await append_audit(session, at=now, actor_id=None, action=f"obligation.{threshold.action}",
                       subject_type="obligation", subject_id=obligation.id or 0,
                       data={"threshold": threshold.key, "to": targets})
    people = await lookups.people(targets)
    department = await lookups.department(obligation.owner_department)
    context = {"obligation": obligation_context(obligation, policy.title, department.name if department else "",
                                                policy.timezone),
               "link": f"{runtime.public_url}/obligations/{obligation.id}"}
    for person_id in targets:
        await queue_message(session, event_key=f"threshold:{threshold.id}", event=event, recipient=people[person_id],
                      context=context, now=now)


def _targets(rule: PersonRule, org: Organisation, contexts: list[Context], *, exclude: set[str]) -> list[str]:
    found: list[str] = []
    for context in contexts:
        for candidate in resolve_people(rule, org, context):
            if candidate.person_id not in exclude and candidate.person_id not in found:
                found.append(candidate.person_id)
    return found
