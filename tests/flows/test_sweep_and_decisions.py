"""A sweep batch and a person's decision at the same moment: both complete, neither deadlocks.

Every writing transaction takes the audit chain's lock first (store.audit.lock_chain), then row locks;
a decision that took the step's row before the chain could deadlock with a sweep holding its claimed
thresholds (seen on PostgreSQL before the fix)."""

from __future__ import annotations

import asyncio

import pendulum
from sqlalchemy import select

from store.approvals import decide, file_request
from store.audit import first_broken_event, lock_chain
from store.sweep import claim_due, fire_thresholds
from store.tables import RequestRow, StepRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)
LATER = pendulum.datetime(2026, 10, 12, 9, tz=SHANGHAI)


async def _file(runtime) -> tuple[int, int]:
    async with runtime.sessions() as session, session.begin():
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "交换机", "amount": "100"}, requester_id="huang.lei", now=FILED)
    async with runtime.sessions() as session:
        step = (await session.execute(select(StepRow).where(StepRow.request_id == request.id))).scalar_one()
    return request.id, step.id


async def test_decision_during_a_sweep_batch_waits_and_both_commit(runtime):
    overdue = await _file(runtime)
    decided = await _file(runtime)
    sweep_session = runtime.sessions()
    await sweep_session.begin()
    await lock_chain(sweep_session)
    claimed = await claim_due(sweep_session, runtime, now=LATER, limit=10)
    assert len(claimed) == 2

    async def approve() -> str:
        async with runtime.sessions() as session, session.begin():
            await decide(session, runtime, request_id=decided[0], step_id=decided[1], actor_id="liu.yang",
                         verb="approve", reason=None, now=LATER)
        return "approved"

    person = asyncio.create_task(approve())
    await asyncio.sleep(0.5)  # the decision is now waiting for the chain's lock
    assert not person.done()
    counts = await fire_thresholds(sweep_session, runtime, claimed, now=LATER)
    await sweep_session.commit()
    await sweep_session.close()
    assert await asyncio.wait_for(person, timeout=10) == "approved"
    assert counts["fired"] == 2  # both were open when the batch fired
    async with runtime.sessions() as session:
        states = dict((await session.execute(select(RequestRow.id, RequestRow.state))).all())
        assert states[decided[0]] == "approved" and states[overdue[0]] == "pending"
        assert await first_broken_event(session) is None
