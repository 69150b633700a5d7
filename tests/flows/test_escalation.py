"""The sweep escalates an unanswered approval once its SLA has passed on China's working-day calendar."""

from __future__ import annotations

import pendulum
from sqlalchemy import select

from flows.deliver import deliver
from flows.sweep import sweep
from notifications.catcher import list_caught
from store.approvals import decide, file_request
from store.tables import AuditEventRow, OutboxRow, StepRow, ThresholdRow

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
