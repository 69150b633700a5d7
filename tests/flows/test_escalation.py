"""The sweep escalates an unanswered approval once its SLA has passed on China's working-day calendar."""

from __future__ import annotations

import pendulum
from sqlalchemy import select

from flows.deliver import deliver
from flows.sweep import sweep
from notifications.catcher import list_caught
from store.approvals import decide, file_request
from store.tables import AssignmentRow, AuditEventRow, OutboxRow, RequestRow, StepRow, ThresholdRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)  # Wednesday before the National Day block


async def _file(runtime, amount: str = "48000"):
    async with runtime.sessions() as session, session.begin():
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "交换机", "amount": amount}, requester_id="huang.lei", now=FILED)
    async with runtime.sessions() as session:
        step = (await session.execute(select(StepRow).where(StepRow.request_id == request.id))).scalar_one()
    return request, step


async def _escalation_mails(runtime, request_id: int) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).where(
            OutboxRow.event == "step_escalated",
            OutboxRow.context["request"]["id"].as_integer() == request_id))).scalars())


async def test_sla_of_24_working_hours_skips_the_national_day_block(runtime, prefect_harness):
    """24 hours counted on working days from Wed 16:00: 8 h on 09-30, the holiday 10-01..07, then 16 h
    on Thursday 10-08: due 2026-10-08 16:00 Asia/Shanghai."""
    _, step = await _file(runtime)
    assert pendulum.instance(step.due_at).in_timezone(SHANGHAI) == pendulum.datetime(2026, 10, 8, 16, tz=SHANGHAI)


async def test_sweep_escalates_to_the_leader_in_charge_exactly_once_even_when_run_twice(
        runtime, prefect_harness, mail):
    request, _ = await _file(runtime)
    before_due = pendulum.datetime(2026, 10, 8, 15, 59, tz=SHANGHAI)
    assert (await sweep(now=before_due))["fired"] == 0
    after_due = pendulum.datetime(2026, 10, 9, 9, 0, tz=SHANGHAI)
    first = await sweep(now=after_due)
    second = await sweep(now=after_due.add(hours=1))
    assert first["fired"] == 1
    assert second["fired"] == 0
    escalations = await _escalation_mails(runtime, request.id)
    assert [m.recipient_id for m in escalations] == ["li.ming"]  # 分管领导 of 综合管理部
    await deliver(now=after_due)
    inbox = list_caught(mail.maildir, recipient="li.ming@hospital.example")
    assert len(inbox) == 1
    assert inbox[0].subject.startswith("督办")
    assert "刘洋" in inbox[0].text  # the approver who has not answered


async def test_two_sweeps_at_once_fire_each_threshold_once(runtime, prefect_harness):
    import asyncio

    request, _ = await _file(runtime)
    later = pendulum.datetime(2026, 10, 12, 9, 0, tz=SHANGHAI)
    results = await asyncio.gather(sweep(now=later), sweep(now=later))
    assert sum(r["fired"] for r in results) == 1
    assert len(await _escalation_mails(runtime, request.id)) == 1


async def test_a_decided_step_is_not_escalated(runtime, prefect_harness):
    request, step = await _file(runtime)
    async with runtime.sessions() as session, session.begin():
        await decide(session, runtime, request_id=request.id, step_id=step.id, actor_id="liu.yang",
                     verb="approve", reason=None, now=FILED.add(hours=2))
    totals = await sweep(now=pendulum.datetime(2026, 10, 20, tz=SHANGHAI))
    assert totals["fired"] == 0
    assert await _escalation_mails(runtime, request.id) == []
    async with runtime.sessions() as session:
        states = set((await session.execute(select(ThresholdRow.state).where(
            ThresholdRow.subject_type == "step", ThresholdRow.subject_id == step.id))).scalars())
    assert states == {"cancelled"}


async def test_escalation_is_in_the_audit_chain(runtime, prefect_harness):
    from store.audit import first_broken_event

    request, _ = await _file(runtime)
    await sweep(now=pendulum.datetime(2026, 10, 9, 9, 0, tz=SHANGHAI))
    async with runtime.sessions() as session:
        actions = list((await session.execute(select(AuditEventRow.action).where(
            AuditEventRow.subject_id == str(request.id)).order_by(AuditEventRow.seq))).scalars())
        assert actions == ["request.filed", "step.opened", "step.escalated"]
        assert await first_broken_event(session) is None


# --- the full ladder and quorum, on a policy synced into the running registry ---------------------------

LEADERS_REVIEW = """\
kind: approval
id: leaders-review
title: 院领导评审
form:
  subject: {type: text, label: 事项}
steps:
  - id: head
    title: 部门负责人审批
    approvers: {head_of: requester}
    sla: 24 hours on working days
    remind: [4 hours]
    escalate:
      - {notify: {leader_in_charge_of: approver}}
      - {after: 1 working day, reassign: {person: wang.xiuying}}
      - {after: 3 working days, decide: reject, reason: 超时未审批，自动驳回}
  - id: leaders
    title: 院领导评审
    approvers: {role: vice_president}
    mode: quorum
    quorum: 2
    sla: 3 working days
    escalate:
      - {after: 1 working day, decide: approve}
outcomes:
  approved: {allows: 可以实施}
  rejected: {record: 不予实施}
"""


async def _file_review(runtime):
    from policies.loader import load_policy_text

    async with runtime.sessions() as session, session.begin():
        await runtime.registry.sync(session, [load_policy_text(LEADERS_REVIEW, file="leaders-review.yaml")], now=FILED)
    async with runtime.sessions() as session, session.begin():
        request = await file_request(session, runtime, policy_id="leaders-review", form={"subject": "机房改造"},
                                     requester_id="huang.lei", now=FILED)
    return request, await _steps(runtime, request.id)


async def _steps(runtime, request_id: int) -> list[StepRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(StepRow).where(StepRow.request_id == request_id)
                                           .order_by(StepRow.position))).scalars())


async def _decide(runtime, request, step, actor: str, at, verb: str = "approve", reason: str | None = None):
    async with runtime.sessions() as session, session.begin():
        await decide(session, runtime, request_id=request.id, step_id=step.id, actor_id=actor, verb=verb,
                     reason=reason, now=at)


async def _audit(runtime, request_id: int) -> list[AuditEventRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEventRow).where(
            AuditEventRow.subject_id == str(request_id)).order_by(AuditEventRow.seq))).scalars())


async def _mails(runtime, event: str) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).where(OutboxRow.event == event)
                                           .order_by(OutboxRow.id))).scalars())


async def test_quorum_of_two_closes_the_step_on_the_second_approval_and_records_the_outcome(
        runtime, prefect_harness):
    request, steps = await _file_review(runtime)
    await _decide(runtime, request, steps[0], "zheng.hao", FILED.add(hours=1))
    leaders = (await _steps(runtime, request.id))[1]
    assert (leaders.state, leaders.mode, leaders.assignees) == ("pending", "quorum", ["chen.jing", "li.ming"])
    await _decide(runtime, request, leaders, "li.ming", FILED.add(hours=2))
    leaders = (await _steps(runtime, request.id))[1]
    assert (leaders.state, leaders.approved_by) == ("pending", ["li.ming"])
    await _decide(runtime, request, leaders, "chen.jing", FILED.add(hours=3))
    assert (await _steps(runtime, request.id))[1].state == "approved"
    [end] = [e for e in await _audit(runtime, request.id) if e.action == "request.approved"]
    assert end.data["outcome"] == "可以实施"


async def test_step_reminder_mails_the_waiting_approver_once_before_the_sla(runtime, prefect_harness):
    """SLA due 2026-10-08 16:00; `remind: [4 hours]` → 12:00, mailed as `step_reminder`."""
    request, steps = await _file_review(runtime)
    assert (await sweep(now=pendulum.datetime(2026, 10, 8, 11, 59, tz=SHANGHAI)))["fired"] == 0
    assert (await sweep(now=pendulum.datetime(2026, 10, 8, 12, 30, tz=SHANGHAI)))["fired"] == 1
    assert (await sweep(now=pendulum.datetime(2026, 10, 8, 12, 40, tz=SHANGHAI)))["fired"] == 0
    reminders = [m for m in await _mails(runtime, "step_reminder") if m.event_key.endswith(":remind-1:zheng.hao")]
    assert [m.event_key for m in reminders] == [f"step:{steps[0].id}:remind-1:zheng.hao"]
    assert [e.action for e in await _audit(runtime, request.id)][-1] == "step.reminded"


async def test_reassign_rung_moves_the_step_to_the_new_person_and_mails_them(runtime, prefect_harness):
    request, steps = await _file_review(runtime)
    totals = await sweep(now=pendulum.datetime(2026, 10, 10, 12, 0, tz=SHANGHAI))
    # escalate-1 (notify) and escalate-2 (reassign) fire; remind-1 is skipped: its SLA deadline has passed
    assert (totals["fired"], totals["skipped"]) == (2, 1)
    head = (await _steps(runtime, request.id))[0]
    assert (head.state, head.assignees) == ("pending", ["wang.xiuying"])
    async with runtime.sessions() as session:
        open_assignments = set((await session.execute(select(AssignmentRow.person_id).where(
            AssignmentRow.step_id == head.id, AssignmentRow.kind == "approver", AssignmentRow.open))).scalars())
    assert open_assignments == {"wang.xiuying"}
    [event] = [e for e in await _audit(runtime, request.id) if e.action == "step.reassigned"]
    assert (event.actor_id, event.data["from"], event.data["to"]) == ("system", ["zheng.hao"], ["wang.xiuying"])
    assert "wang.xiuying" in [m.recipient_id for m in await _mails(runtime, "step_assigned")]
    await _decide(runtime, request, head, "wang.xiuying", pendulum.datetime(2026, 10, 10, 13, tz=SHANGHAI))
    assert (await _steps(runtime, request.id))[1].state == "pending"


async def test_decide_rung_rejects_as_the_system_with_audit_and_mail(runtime, prefect_harness):
    request, _ = await _file_review(runtime)
    await sweep(now=pendulum.datetime(2026, 10, 30, 9, 0, tz=SHANGHAI))
    states = [s.state for s in await _steps(runtime, request.id)]
    assert states == ["rejected", "cancelled"]
    events = await _audit(runtime, request.id)
    [rejection] = [e for e in events if e.action == "step.reject"]
    assert (rejection.actor_id, rejection.data["reason"], rejection.data["automatic"]) == (
        "system", "超时未审批，自动驳回", True)
    [end] = [e for e in events if e.action == "request.rejected"]
    assert end.data["outcome"] == "不予实施"
    [mail] = [m for m in await _mails(runtime, "request_decided") if m.context["request"]["id"] == request.id]
    assert (mail.recipient_id, mail.context["decider_name"]) == ("huang.lei", "系统（超时自动处理）")
    async with runtime.sessions() as session:
        from store.audit import first_broken_event

        assert await first_broken_event(session) is None


async def test_an_automatic_approval_of_the_last_step_approves_the_request(runtime, prefect_harness):
    request, steps = await _file_review(runtime)
    await _decide(runtime, request, steps[0], "zheng.hao", FILED.add(hours=1))
    await sweep(now=pendulum.datetime(2026, 10, 30, 9, 0, tz=SHANGHAI))
    assert [s.state for s in await _steps(runtime, request.id)] == ["approved", "approved"]
    async with runtime.sessions() as session:
        refreshed = await session.get(RequestRow, request.id)
    assert refreshed is not None and refreshed.state == "approved"
