"""Materialising every recurrence and every owner department: one row per (policy, obligation, owner, period)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pendulum
from sqlalchemy import func, select

from flows.materialise import materialise_obligations
from policies.due import period_containing
from policies.loader import load_policy_text
from store.obligations import materialise_policy
from store.tables import ObligationRow, ThresholdRow

SHANGHAI = "Asia/Shanghai"
MIXED = """\
kind: calendar
id: mixed-calendar
title: 各类周期报表
defaults:
  due: day 15 of next month
  owner: {departments: [medical, finance]}
  remind: [1 working day]
obligations:
  - {id: M-1, title: 月报, owner: {department: performance, role: statistician}}
  - {id: Q-1, title: 季报, recurrence: quarterly, due: day 10 of the first month of next quarter}
  - {id: Q-2, title: 季度分析, recurrence: quarterly, due: {with: M-1}}
  - {id: W-1, title: 周报, recurrence: weekly, weekday: friday, at: "12:00", owner: {department: it}}
  - {id: Y-1, title: 全年统计汇编, recurrence: yearly, due: 次年第一季度内, owner: {department: office}}
  - {id: E-1, title: 个案报告, trigger: case_created, due: within 5 working days}
  - {id: X-1, title: 区局报表, owner: {departments: [medical, district_bureau]}}
"""


async def _sync(runtime, now: pendulum.DateTime) -> tuple[int, object]:
    loaded = load_policy_text(MIXED, file="tests/mixed-calendar.yaml")
    async with runtime.sessions() as session, session.begin():
        await runtime.registry.sync(session, [loaded], now=now)
    version_id, current = runtime.registry.current("mixed-calendar")
    return version_id, current


async def _rows(runtime) -> list[ObligationRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(ObligationRow).where(
            ObligationRow.policy_id == "mixed-calendar").order_by(ObligationRow.obligation_key,
                                                                   ObligationRow.period_key,
                                                                   ObligationRow.owner_department))).scalars())


async def test_each_recurrence_and_each_owner_gets_its_rows_and_a_second_run_adds_none(runtime, prefect_harness):
    now = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
    await _sync(runtime, now)
    first = await materialise_obligations(now=now, months_ahead=2)
    rows = await _rows(runtime)
    keys = Counter((r.obligation_key, r.period_key) for r in rows)
    assert {k: n for k, n in keys.items() if k[0] == "Q-1"} == {("Q-1", "2026-Q4"): 2}  # Q3 was due 10-10
    assert {k for k in keys if k[0] == "Q-2"} == {("Q-2", "2026-Q4")}
    assert sorted(k[1] for k in keys if k[0] == "W-1") == [f"2026-W{n}" for n in range(43, 52)]
    assert {k for k in keys if k[0] == "Y-1"} == {("Y-1", "2026")}
    assert not any(k[0] == "E-1" for k in keys)  # event-relative: materialised per event, not per period
    assert {r.owner_department for r in rows if r.obligation_key == "X-1"} == {"medical"}  # no district_bureau
    q2 = [r for r in rows if r.obligation_key == "Q-2"]
    assert {pendulum.instance(r.due_at).in_timezone(SHANGHAI).isoformat() for r in q2} == {
        "2027-01-15T23:59:59+08:00"}  # with December's monthly report
    again = await materialise_obligations(now=now, months_ahead=2)
    assert again["created"] == 0 and first["created"] > 0
    assert len(await _rows(runtime)) == len(rows)


async def test_every_materialised_row_has_its_thresholds(runtime, prefect_harness):
    now = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
    await _sync(runtime, now)
    await materialise_obligations(now=now, months_ahead=1)
    rows = await _rows(runtime)
    async with runtime.sessions() as session:
        counted = dict((await session.execute(
            select(ThresholdRow.subject_id, func.count()).where(ThresholdRow.subject_type == "obligation")
            .group_by(ThresholdRow.subject_id))).all())
    assert all(counted[r.id] == 2 for r in rows)  # remind-1 and due (no escalation ladder)


async def test_explicit_periods_materialise_the_obligations_of_that_recurrence_that_overlap_them(runtime):
    now = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
    version_id, loaded = await _sync(runtime, now)
    async with runtime.sessions() as session, session.begin():
        result = await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=now,
                                          periods=[period_containing(date(2026, 11, 1), "monthly")])
    assert result.unknown_owners == ("district_bureau",)
    keys = {(r.obligation_key, r.period_key) for r in await _rows(runtime)}
    assert ("M-1", "2026-11") in keys and ("Q-1", "2026-Q4") in keys and ("Y-1", "2026") in keys
    # November 2026 runs from Sunday the 1st (in W44) to Monday the 30th (in W49)
    assert sorted(k[1] for k in keys if k[0] == "W-1") == [f"2026-W{n}" for n in range(44, 50)]
