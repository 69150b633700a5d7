"""Event-relative obligations: a reported case opens its 5-working-day report (seed SC-07), once per reference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import func, select

from store.audit import first_broken_event
from store.errors import ForbiddenError, InvalidInputError, NotFoundError
from store.event_obligations import report_event, triggered_by
from store.tables import AuditEventRow, ObligationRow, PersonRow, ThresholdRow
from tests.profiles import profile_settings

SHANGHAI = "Asia/Shanghai"
CASE_AT = pendulum.datetime(2026, 6, 10, 16, 0, tz=SHANGHAI)  # a Wednesday
NOW = pendulum.datetime(2026, 6, 10, 17, 0, tz=SHANGHAI)


@pytest.fixture
async def supervision(database_url: str, tmp_path: Path) -> AsyncIterator[object]:
    from duly.bootstrap import prepare

    settings = profile_settings("health-supervision", database_url, tmp_path / "data")
    runtime = await prepare(settings, now=NOW)
    yield runtime
    await runtime.close()


async def _report(runtime, person: str = "xiao.ming", **options):
    async with runtime.write() as session:
        reporter = await session.get(PersonRow, person)
        return await report_event(session, runtime, event=options.pop("event", "case_created"),
                                  reference=options.pop("reference", "案-2026-0610-01"),
                                  occurred_at=options.pop("occurred_at", CASE_AT), reporter=reporter, now=NOW,
                                  **options)


def test_the_policies_list_what_each_event_opens(supervision):
    kinds = {(t.rules.trigger, t.obligation_id) for t in triggered_by(supervision)}
    assert kinds == {("case_created", "D-052"), ("error_found", "D-054-revision"),
                     ("omission_found", "D-054-supplement")}


async def test_a_case_opens_its_report_due_five_working_days_later_for_the_reporters_department(supervision):
    report = await _report(supervision)
    assert report.department == "public_sup" and not report.existing
    [row] = report.opened
    assert (row.obligation_key, row.owner_department) == ("D-052", "public_sup")
    assert pendulum.instance(row.due_at).in_timezone(SHANGHAI) == pendulum.datetime(2026, 6, 17, 23, 59, 59,
                                                                                    tz=SHANGHAI)
    assert row.event_ref == "案-2026-0610-01" and row.event_at == CASE_AT
    async with supervision.read_sessions() as session:
        thresholds = (await session.execute(select(ThresholdRow.key).where(
            ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == row.id))).scalars().all()
        opened = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "obligation.opened"))).scalars().all()
        assert await first_broken_event(session) is None
    assert "due" in thresholds
    assert [(e.actor_id, e.data["reference"]) for e in opened] == [("xiao.ming", "案-2026-0610-01")]


async def test_reporting_the_same_reference_again_opens_nothing(supervision):
    first = await _report(supervision)
    again = await _report(supervision, person="yu.hai")
    assert not again.opened and [r.id for r in again.existing] == [first.opened[0].id]
    other = await _report(supervision, reference="案-2026-0610-02")
    assert len(other.opened) == 1
    async with supervision.read_sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one() == 2


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"occurred_at": NOW.add(days=1)}, InvalidInputError, "the event is in the future"),
    ({"occurred_at": CASE_AT.naive()}, InvalidInputError, "needs a time zone"),
    ({"reference": "  "}, InvalidInputError, "a reference is required"),
    ({"event": "fire"}, NotFoundError, "events the current policies know: case_created, error_found"),
    ({"department": "information"}, InvalidInputError, "opens obligations for medical_sup, public_sup"),
    ({"department": "medical_sup"}, ForbiddenError, "only people of department 'medical_sup'"),
])
async def test_bad_reports_are_refused_and_open_nothing(supervision, options, error, words):
    with pytest.raises(error, match=words):
        await _report(supervision, **options)
    async with supervision.read_sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one() == 0
