"""Points (积分) read from obligations: the health bureau's weekly information items (base 60, +1 on time,
0 late, −1 missing, seed E-13), and the sweep's mark-late recording the penalty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select

from flows.materialise import materialise_obligations
from flows.sweep import sweep
from store.errors import InvalidInputError
from store.points import half_year, points
from store.tables import AuditEventRow, ObligationRow
from tests.profiles import profile_settings

SHANGHAI = "Asia/Shanghai"
NOW = pendulum.datetime(2026, 11, 30, 10, tz=SHANGHAI)


@pytest.fixture
async def bureau(database_url: str, tmp_path: Path) -> AsyncIterator[object]:
    from duly.bootstrap import prepare
    from flows import runtime as flow_runtime

    settings = profile_settings("health-bureau", database_url, tmp_path / "data")
    runtime = await prepare(settings, now=NOW)
    flow_runtime.use(runtime, flow_runtime.delivery_settings(settings))
    yield runtime
    flow_runtime.clear()
    await runtime.close()


async def _weeks(runtime, department: str) -> list[ObligationRow]:
    async with runtime.read_sessions() as session:
        return list((await session.execute(select(ObligationRow).where(
            ObligationRow.policy_id == "information-items", ObligationRow.owner_department == department)
            .order_by(ObligationRow.due_at))).scalars())


async def test_on_time_late_and_missing_weeks_score_from_the_base(bureau, prefect_harness):
    await materialise_obligations(now=NOW, since=date(2026, 11, 1), until=date(2026, 11, 30))
    weeks = await _weeks(bureau, "medical_section")
    assert len(weeks) >= 8  # D-066 and D-069, weekly
    past = [w for w in weeks if w.due_at <= NOW]
    async with bureau.write() as session:  # 医政科's weekly items and plans: on time, on time, late, then nothing
        for row, (state, late) in zip(past, [("submitted", False), ("submitted", False), ("submitted", True)],
                                      strict=False):
            row.state, row.late = state, late
            session.add(row)
    async with bureau.read_sessions() as session:
        found = await points(session, bureau, half=half_year("2026-H2"), now=NOW, departments={"medical_section"})
    [office] = [p.tally for p in found if p.policy_id == "information-items"]
    missing = len(past) - 3
    assert office.counts == {"on_time": 2, "late": 1, "missing": missing}
    assert office.total == 60 + 2 - missing


async def test_the_sweep_records_the_penalty_when_it_marks_a_week_late(bureau, prefect_harness):
    await materialise_obligations(now=pendulum.datetime(2026, 11, 2, tz=SHANGHAI), months_ahead=0)
    await sweep(now=pendulum.datetime(2026, 11, 9, tz=SHANGHAI))
    async with bureau.read_sessions() as session:
        late = (await session.execute(select(AuditEventRow).where(AuditEventRow.action == "obligation.late"))
                ).scalars().all()
    scored = [e for e in late if e.data.get("points") == -1]
    assert scored, [e.data for e in late]


def test_a_half_year_is_named_like_2026_H2():
    assert half_year("2026-H1").end == date(2026, 6, 30)
    with pytest.raises(InvalidInputError, match="not a half-year"):
        half_year("2026-Q3")
