"""Automatic decisions of the sweep leave decision rows with no actor, like a person's decisions."""

from __future__ import annotations

import pendulum
from sqlalchemy import select

from policies.loader import load_policy_text
from store.approvals import file_request
from store.sweep import claim_due, fire_thresholds
from store.tables import DecisionRow, RequestRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 14, 10, 0, tz=SHANGHAI)
TIMED_OUT = """\
kind: approval
id: timed-out
title: 超时自动处理
form:
  subject: {type: text, label: 事项}
steps:
  - id: head
    title: 部门负责人审批
    approvers: {head_of: requester}
    sla: 1 working day
    escalate:
      - {after: 1 working day, reassign: {person: wang.xiuying}}
      - {after: 2 working days, decide: approve}
"""


async def test_reassign_and_decide_rungs_write_decision_rows_without_actor(runtime):
    async with runtime.write() as session:
        await runtime.registry.sync(session, [load_policy_text(TIMED_OUT, file="timed-out.yaml")], now=FILED)
        request = await file_request(session, runtime, policy_id="timed-out", form={"subject": "机房"},
                                     requester_id="huang.lei", now=FILED)
    later = FILED.add(weeks=2)
    async with runtime.write() as session:
        counts = await fire_thresholds(session, runtime, await claim_due(session, runtime, now=later, limit=10),
                                       now=later)
    assert counts["fired"] == 2
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(DecisionRow).where(DecisionRow.request_id == request.id)
                                           .order_by(DecisionRow.id))).scalars())
        state = (await session.get(RequestRow, request.id)).state
    assert [(r.verb, r.actor_id, r.step_id is not None) for r in rows] == [("reassign", None, True),
                                                                         ("approve", None, True)]
    assert state == "approved"
