"""The 13 monthly reports of the municipal calendar (seed D-001…D-013) as obligations."""

from __future__ import annotations

from datetime import date

import pendulum
from sqlalchemy import func, select

from flows.deliver import deliver
from flows.materialise import materialise_obligations
from flows.sweep import sweep
from notifications.catcher import list_caught
from store.tables import ObligationRow

SHANGHAI = "Asia/Shanghai"


async def _october(runtime) -> list[ObligationRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(ObligationRow).where(
            ObligationRow.period_key == "2026-10").order_by(ObligationRow.obligation_key))).scalars())


async def test_october_2026_reports_are_due_sunday_november_15_without_shift(runtime, prefect_harness):
    now = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
    await materialise_obligations(now=now, months_ahead=1)
    rows = await _october(runtime)
    assert [r.obligation_key for r in rows] == [f"D-{n:03d}" for n in range(1, 14)]
    due = {pendulum.instance(r.due_at).in_timezone(SHANGHAI).isoformat() for r in rows}
    assert due == {"2026-11-15T23:59:59+08:00"}
    assert {r.shift for r in rows} == {"none"}
    assert {r.owner_department for r in rows} == {"performance"}
    assert not any(r.provisional for r in rows)


async def test_materialising_twice_creates_nothing_new(runtime, prefect_harness):
    now = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
    first = await materialise_obligations(now=now, months_ahead=2)
    second = await materialise_obligations(now=now, months_ahead=2)
    assert first["created"] == 13 * 3  # periods 2026-10, 2026-11, 2026-12 (09 was due before now)
    assert second["created"] == 0
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one() == 39


async def test_december_2026_reports_due_in_2027_are_flagged_provisional(runtime, prefect_harness):
    await materialise_obligations(now=pendulum.datetime(2026, 12, 1, tz=SHANGHAI), months_ahead=1)
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(ObligationRow).where(
            ObligationRow.period_key == "2026-12"))).scalars())
    assert len(rows) == 13 and all(r.provisional for r in rows)


async def test_late_report_is_marked_late_and_escalated_once(runtime, prefect_harness, mail):
    await materialise_obligations(now=pendulum.datetime(2026, 11, 1, tz=SHANGHAI), months_ahead=0,
                                  since=date(2026, 10, 1))
    reminder_time = pendulum.datetime(2026, 11, 11, 9, 30, tz=SHANGHAI)  # Wed: 3rd working day before Sun 15th
    reminded = await sweep(now=reminder_time)
    assert reminded["fired"] == 13
    late = pendulum.datetime(2026, 11, 16, 0, 5, tz=SHANGHAI)
    first = await sweep(now=late)
    again = await sweep(now=late.add(minutes=1))
    assert first["fired"] == 26  # 13 × (mark late + escalate to the leader in charge)
    assert again["fired"] == 0
    october = await _october(runtime)
    assert {r.state for r in october} == {"late"} and all(r.late for r in october)
    await deliver(now=late)
    statistician = list_caught(mail.maildir, recipient="he.jing@hospital.example")
    leader = list_caught(mail.maildir, recipient="chen.jing@hospital.example")
    assert len(statistician) == 13 and all(m.subject.startswith("请在") for m in statistician)
    assert len(leader) == 13 and all(m.subject.startswith("逾期未报") for m in leader)
