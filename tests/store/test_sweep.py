"""Firing thresholds: each fires once even when two sweeps race, and reminders reach only active people."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest
from sqlalchemy import select, update

from policies.loader import load_policy_text
from policies.recurrence import period_containing
from store.approvals import file_request
from store.sweep import claim_due, fire_thresholds
from store.tables import AuditEventRow, OutboxRow, PersonRow, ThresholdRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)  # due Thu 2026-10-08 16:00, after National Day
LATER = pendulum.datetime(2026, 10, 12, 9, tz=SHANGHAI)


async def _outbox(runtime) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())


class TestCompareAndSet:
    """Invariant 4: a threshold moves from pending once; a sweep whose claim went stale applies nothing."""

    async def test_threshold_fired_by_another_transaction_after_the_claim_is_lost_and_mails_nobody(self, runtime):
        async with runtime.sessions() as session, session.begin():
            await file_request(session, runtime, policy_id="it-hardware-purchase",
                               form={"items": "交换机", "amount": "100"}, requester_id="huang.lei", now=FILED)
        first = runtime.sessions()
        try:
            async with first.begin():
                [claimed] = await claim_due(first, runtime, now=LATER, limit=10)
            async with runtime.sessions() as second, second.begin():
                again = await claim_due(second, runtime, now=LATER, limit=10)
                assert await fire_thresholds(second, runtime, again, now=LATER) == {"fired": 1, "skipped": 0,
                                                                                   "lost": 0}
            mailed = await _outbox(runtime)

            async with first.begin():
                counts = await fire_thresholds(first, runtime, [claimed], now=LATER.add(minutes=5))
        finally:
            await first.close()

        assert counts == {"fired": 0, "skipped": 0, "lost": 1}
        assert [(m.event, m.recipient_id) for m in mailed] == [("step_assigned", "liu.yang"),
                                                               ("request_filed", "huang.lei"),
                                                               ("step_escalated", "li.ming")]
        assert [m.id for m in await _outbox(runtime)] == [m.id for m in mailed]  # nothing queued by the loser
        async with runtime.sessions() as session:
            threshold = await session.get(ThresholdRow, claimed.id)
        assert threshold is not None and threshold.state == "fired"
        assert pendulum.instance(threshold.fired_at) == LATER


IT_REPORTS = """\
kind: calendar
id: it-monthly-report
title: 信息科月报
defaults:
  due: day 15 of next month
  owner: {department: it}
  remind: [1 working day]
obligations:
  - {id: IT-1, title: 信息系统运行月报}
"""
REMINDER_TIME = pendulum.datetime(2026, 11, 14, 12, tz=SHANGHAI)  # after the reminder, before Sun 15th's deadline


class TestObligationReminders:
    @pytest.mark.parametrize(("head_active", "mailed"), [(True, ["zheng.hao"]), (False, [])])
    async def test_reminder_without_a_role_goes_to_the_department_head_only_while_active(
            self, runtime, head_active, mailed):
        from store.obligations import materialise_policy

        loaded = load_policy_text(IT_REPORTS, file="it-monthly-report.yaml")
        async with runtime.sessions() as session, session.begin():
            await runtime.registry.sync(session, [loaded], now=FILED)
        version_id, _ = runtime.registry.current("it-monthly-report")
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(PersonRow).where(PersonRow.id == "zheng.hao").values(active=head_active))
            result = await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=FILED,
                                              periods=[period_containing(date(2026, 10, 1), "monthly")])
        assert result.created == 1

        async with runtime.sessions() as session, session.begin():
            due = await claim_due(session, runtime, now=REMINDER_TIME, limit=10)
            assert [t.action for t in due] == ["remind"]
            assert await fire_thresholds(session, runtime, due, now=REMINDER_TIME) == {"fired": 1, "skipped": 0,
                                                                                       "lost": 0}

        assert [m.recipient_id for m in await _outbox(runtime)] == mailed
        async with runtime.sessions() as session:
            event = (await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == "obligation.remind"))).scalar_one()
        assert event.data["to"] == mailed
