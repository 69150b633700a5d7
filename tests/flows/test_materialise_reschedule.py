"""A new policy version or holiday year moves the due dates of open obligations, audited, thresholds re-planned;
handed-in reports keep theirs. And a year materialised twice creates each obligation once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pendulum
from sqlalchemy import func, select

from flows.materialise import materialise_obligations
from flows.sweep import sweep
from store.holiday_years import upload_year
from store.policy_uploads import upload_policy
from store.tables import AuditEventRow, ObligationRow, ThresholdRow

SHANGHAI = "Asia/Shanghai"
POLICY = Path(__file__).parents[2] / "policies" / "library" / "hospital" / "municipal-monthly-reports.yaml"
OCT_20 = pendulum.datetime(2026, 10, 20, 10, tz=SHANGHAI)
YEAR_2027 = """\
year: 2027
source: test arrangement, not an official notice
published: 2026-11-01
holidays:
  - name: 元旦
    days_off: [2027-01-01, 2027-01-03]
    makeup_workdays: []
  - name: 测试假期
    days_off: [2027-01-11, 2027-01-14]
    makeup_workdays: []
"""


async def _rows(runtime, period: str) -> list[ObligationRow]:
    async with runtime.read_sessions() as session:
        return list((await session.execute(select(ObligationRow).where(ObligationRow.period_key == period)
                                           .order_by(ObligationRow.obligation_key))).scalars())


async def _thresholds(runtime, obligation_id: int) -> dict[str, tuple[str, pendulum.DateTime]]:
    async with runtime.read_sessions() as session:
        rows = (await session.execute(select(ThresholdRow).where(
            ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == obligation_id))).scalars()
        return {r.key: (r.state, pendulum.instance(r.fire_at).in_timezone(SHANGHAI)) for r in rows}


async def _rescheduled(runtime) -> list[AuditEventRow]:
    async with runtime.read_sessions() as session:
        return list((await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "obligation.rescheduled").order_by(AuditEventRow.seq))).scalars())


async def _upload_policy(runtime, text: str, now) -> None:
    async with runtime.write() as session:
        result = await upload_policy(session, runtime.registry, text=text, actor_id="admin", now=now)
    runtime.registry.publish(result.version_id, result.loaded)


async def test_a_new_policy_version_moves_open_obligations_and_leaves_submitted_ones(runtime, prefect_harness):
    await materialise_obligations(now=OCT_20, months_ahead=1)
    october = await _rows(runtime, "2026-10")
    async with runtime.write() as session:  # one report is in already: its date is history
        handed_in = await session.get(ObligationRow, october[0].id)
        handed_in.state = "submitted"
    later = OCT_20.add(days=2)
    await _upload_policy(runtime, POLICY.read_text().replace("due: day 15 of next month", "due: day 10 of next month"),
                         later)
    totals = await materialise_obligations(now=later, months_ahead=1)
    assert totals["moved"] == 2 * 13 - 1  # October's and November's, less the one handed in
    rows = {r.id: r for r in await _rows(runtime, "2026-10")}
    assert pendulum.instance(rows[october[0].id].due_at).in_timezone(SHANGHAI).day == 15
    moved = [r for r in rows.values() if r.id != october[0].id]
    assert {pendulum.instance(r.due_at).in_timezone(SHANGHAI).isoformat() for r in moved} == {
        "2026-11-10T23:59:59+08:00"}
    current_version = runtime.registry.current("municipal-monthly-reports")[0]
    assert {r.policy_version_id for r in moved} == {current_version}
    events = await _rescheduled(runtime)
    assert len(events) == 25
    assert {e.data["because"] for e in events} == {"policy"}
    assert {e.data["from"]["due_at"] for e in events} == {"2026-11-15T15:59:59+00:00", "2026-12-15T15:59:59+00:00"}
    thresholds = await _thresholds(runtime, moved[0].id)
    assert thresholds["due"][0] == "cancelled" and thresholds["due@2"] == ("pending", pendulum.datetime(
        2026, 11, 10, 23, 59, 59, tz=SHANGHAI))
    again = await materialise_obligations(now=later, months_ahead=1)
    assert again["moved"] == 0 and len(await _rescheduled(runtime)) == 25


async def test_a_holiday_year_upload_settles_provisional_dates_and_moves_reminders(runtime, settings,
                                                                                    prefect_harness):
    december_1 = pendulum.datetime(2026, 12, 1, tz=SHANGHAI)
    await materialise_obligations(now=december_1, months_ahead=0)
    [row, *_] = await _rows(runtime, "2026-12")
    assert row.provisional
    assert (await _thresholds(runtime, row.id))["remind-1"][1].day == 12  # 3 working days before Fri 15 Jan
    async with runtime.write() as session:
        await upload_year(session, year=2027, text=YEAR_2027, directory=settings.holidays_dir, actor_id="admin",
                          now=december_1)
    totals = await materialise_obligations(now=december_1.add(hours=1), months_ahead=0)  # reads the upload
    assert totals["moved"] == 13
    [row, *_] = await _rows(runtime, "2026-12")
    assert not row.provisional
    thresholds = await _thresholds(runtime, row.id)
    assert thresholds["remind-1"][0] == "cancelled"
    assert thresholds["remind-1@2"] == ("pending", pendulum.datetime(2027, 1, 6, 9, 0, tz=SHANGHAI))
    assert {e.data["because"] for e in await _rescheduled(runtime)} == {"calendar"}


async def test_a_late_obligation_whose_date_moves_ahead_is_open_again_and_nothing_fires_twice(runtime,
                                                                                                prefect_harness):
    await materialise_obligations(now=OCT_20, months_ahead=0)
    after_due = pendulum.datetime(2026, 11, 16, 9, tz=SHANGHAI)
    first = await sweep(now=after_due)
    assert first["fired"] == 13 * 2  # October's reminders and its due (marked late)
    [row, *_] = await _rows(runtime, "2026-10")
    assert row.state == "late"
    await _upload_policy(runtime, POLICY.read_text().replace("due: day 15 of next month", "due: day 20 of next month"),
                         after_due)
    await materialise_obligations(now=after_due, months_ahead=0)
    [row, *_] = await _rows(runtime, "2026-10")
    assert (row.state, row.late) == ("open", False)
    thresholds = await _thresholds(runtime, row.id)
    assert "remind-1@2" in thresholds  # the new reminder (17 November) is still ahead: it will fire
    assert thresholds["due@2"][0] == "pending"
    later = await sweep(now=pendulum.datetime(2026, 11, 21, 9, tz=SHANGHAI))
    assert later["fired"] == 13 * 2  # the new reminder and the new due, once each
    assert (await sweep(now=pendulum.datetime(2026, 11, 21, 9, tz=SHANGHAI)))["fired"] == 0


async def test_a_year_materialised_twice_creates_each_obligation_once(runtime, prefect_harness):
    jan_1 = pendulum.datetime(2027, 1, 1, tz=SHANGHAI)
    first = await materialise_obligations(now=jan_1, since=date(2027, 1, 1), until=date(2027, 12, 31))
    second = await materialise_obligations(now=jan_1, since=date(2027, 1, 1), until=date(2027, 12, 31))
    assert first["created"] > 13 * 12 and second["created"] == 0 and second["moved"] == 0
    async with runtime.read_sessions() as session:
        count = (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one()
    assert count == first["created"]
