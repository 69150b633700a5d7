"""Each threshold of each item fires exactly once (DESIGN invariant 4): across re-runs, parallel sweeps,
a crash in the middle of a batch, and a clock that jumps forward and back between sweeps."""

from __future__ import annotations

import asyncio
from collections import Counter

import pendulum
import pytest
from prefect.exceptions import FailedRun
from sqlalchemy import func, select

from flows.materialise import materialise_obligations
from flows.sweep import sweep
from store import faults
from store.approvals import file_request
from store.audit import first_broken_event
from store.tables import AuditEventRow, ObligationRow, OutboxRow, ThresholdRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)
ESCALATED_BY = pendulum.datetime(2026, 10, 12, 9, 0, tz=SHANGHAI)  # past the SLA and its first rung


async def _file_many(runtime, n: int) -> None:
    async with runtime.write() as session:
        for i in range(n):
            await file_request(session, runtime, policy_id="it-hardware-purchase",
                               form={"items": f"交换机 {i}", "amount": "100"}, requester_id="huang.lei", now=FILED)


async def _fired_state(runtime) -> tuple[Counter[str], int, int]:
    """(threshold states, audit events of the sweep, outbox rows), and the chain must be intact."""
    async with runtime.read_sessions() as session:
        states = Counter(dict((await session.execute(
            select(ThresholdRow.state, func.count()).group_by(ThresholdRow.state))).all()))
        audit = (await session.execute(select(func.count()).select_from(AuditEventRow).where(
            AuditEventRow.action.in_(["step.escalated", "step.reminded", "obligation.late",  # type: ignore[attr-defined]
                                      "obligation.remind", "obligation.escalate"])))).scalar_one()
        outbox = (await session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.event_key.like("threshold:%")))).scalar_one()  # type: ignore[attr-defined]
        assert await first_broken_event(session) is None
    return states, audit, outbox


async def _no_mail_twice(runtime) -> None:
    async with runtime.read_sessions() as session:
        keys = (await session.execute(select(OutboxRow.event_key, OutboxRow.recipient_id))).all()
    assert len(keys) == len(set(keys))


async def test_two_sweeps_in_parallel_split_the_work_and_fire_each_threshold_once(runtime, prefect_harness):
    await _file_many(runtime, 24)
    results = await asyncio.gather(sweep(now=ESCALATED_BY, batch_size=4), sweep(now=ESCALATED_BY, batch_size=4))
    states, audit, outbox = await _fired_state(runtime)
    assert sum(r["fired"] for r in results) == states["fired"] == 24
    assert states["pending"] == 0 or (await sweep(now=ESCALATED_BY))["fired"] == 0
    assert audit == 24 and outbox == 24  # one 督办 mail each, to the leader in charge
    await _no_mail_twice(runtime)


async def test_a_crash_in_the_middle_of_a_batch_leaves_no_half_applied_item(runtime, prefect_harness):
    await _file_many(runtime, 6)
    faults.arm("sweep.after_threshold", after=2)  # the third threshold of the first batch
    try:
        with pytest.raises((FailedRun, faults.InjectedFault)):
            await sweep(now=ESCALATED_BY, batch_size=5)
    finally:
        faults.disarm()
    states, audit, outbox = await _fired_state(runtime)
    assert states["fired"] == 0 and states["pending"] == 6  # the batch rolled back as a whole
    assert audit == 0 and outbox == 0
    again = await sweep(now=ESCALATED_BY, batch_size=5)
    states, audit, outbox = await _fired_state(runtime)
    assert again["fired"] == states["fired"] == 6 and audit == 6 and outbox == 6


async def test_a_crash_in_a_later_batch_keeps_the_batches_before_it(runtime, prefect_harness):
    await _file_many(runtime, 6)
    faults.arm("sweep.after_threshold", after=3)  # the second batch of three
    try:
        with pytest.raises((FailedRun, faults.InjectedFault)):
            await sweep(now=ESCALATED_BY, batch_size=3)
    finally:
        faults.disarm()
    states, _, outbox = await _fired_state(runtime)
    assert states["fired"] == 3 and outbox == 3
    await sweep(now=ESCALATED_BY, batch_size=3)
    states, _, outbox = await _fired_state(runtime)
    assert states["fired"] == 6 and outbox == 6
    await _no_mail_twice(runtime)


async def test_clock_jumps_between_sweeps_fire_each_threshold_once(runtime, prefect_harness):
    """Reports of October (reminder Thu 12 Nov 09:00, due Sun 15 Nov 23:59:59, escalation after it): the
    clock runs forward an hour, back an hour, a day ahead; every threshold fires once, in its turn."""
    await materialise_obligations(now=pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI), months_ahead=0)
    async with runtime.read_sessions() as session:
        total = (await session.execute(select(func.count()).select_from(ThresholdRow))).scalar_one()
        obligations = (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one()
    start = pendulum.datetime(2026, 11, 12, 9, 30, tz=SHANGHAI)
    fired = []
    for now in (start, start.add(hours=1), start.subtract(hours=1), start.add(days=1), start.add(days=1),
                pendulum.datetime(2026, 11, 16, 9, tz=SHANGHAI), pendulum.datetime(2026, 11, 15, 9, tz=SHANGHAI),
                pendulum.datetime(2026, 12, 31, tz=SHANGHAI), pendulum.datetime(2026, 12, 31, tz=SHANGHAI)):
        fired.append((await sweep(now=now))["fired"])
    assert fired[0] == obligations  # the reminders
    assert fired[1:5] == [0, 0, 0, 0]
    assert fired[5] == 2 * obligations  # after the due time: marked late, and the leader in charge told
    # (the clock back to the 15th: nothing; the year's end: nothing left)
    assert fired[6] == 0 and fired[8] == 0
    states, audit, outbox = await _fired_state(runtime)
    assert sum(fired) == states["fired"] == total and audit == total
    await _no_mail_twice(runtime)


async def test_two_sweeps_in_parallel_over_reports_fire_each_threshold_once(runtime, prefect_harness):
    """Obligation thresholds take the sweep's batch path (loaded and marked at once per batch)."""
    await materialise_obligations(now=pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI), months_ahead=1)
    after = pendulum.datetime(2026, 12, 31, tz=SHANGHAI)
    results = await asyncio.gather(sweep(now=after, batch_size=7), sweep(now=after, batch_size=7))
    states, audit, outbox = await _fired_state(runtime)
    assert states["pending"] == 0 and sum(r["fired"] for r in results) == states["fired"] == audit
    assert outbox > 0
    await _no_mail_twice(runtime)
