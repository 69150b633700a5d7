"""Obligations over HTTP: filters and paging, detail with rules, mark late, waive (免报) and who may."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from config import clock
from policies.due import Period
from policies.recurrence import period_containing
from store.obligations import materialise_policy
from store.tables import AuditEventRow, ObligationRow, ThresholdRow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = [ROOT / "policies" / "library" / "hospital",
           ROOT / "policies" / "library" / "hospital-statistics-office" / "report-signoff.yaml",
           ROOT / "tests" / "fixtures" / "reports" / "finance-reports.yaml"]
OCTOBER = period_containing(date(2026, 10, 1), "monthly")  # due 2026-11-15
NOVEMBER = period_containing(date(2026, 11, 1), "monthly")  # due 2026-12-15


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"policy_paths": PROFILE})


async def materialise(runtime, policy_id: str, periods: list[Period]) -> dict[tuple[str, str, str], int]:
    version_id, loaded = runtime.registry.current(policy_id)
    async with runtime.write() as session:
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=clock.now(),
                                 periods=periods)
        rows = (await session.execute(select(ObligationRow))).scalars()
        return {(r.obligation_key, r.owner_department, r.period_key): r.id for r in rows}


class TestFilters:
    async def test_department_state_period_due_range_provisional_and_paging(self, live_server, runtime):
        ids = await materialise(runtime, "finance-reports", [OCTOBER, NOVEMBER])
        await materialise(runtime, "municipal-monthly-reports", [OCTOBER])
        with live_server.client("he.jing") as client:
            client.post(f"/api/obligations/{ids['F-PLAIN', 'finance', '2026-10']}/waive", json={"reason": "停报"})
            finance = client.get("/api/obligations", params={"department": "finance"}).json()
            owner = client.get("/api/obligations", params={"owner": "finance", "period": "2026-11"}).json()
            waived = client.get("/api/obligations", params={"state": "waived"}).json()
            due = client.get("/api/obligations", params={"due_from": "2026-12-15", "due_to": "2026-12-15"}).json()
            provisional = client.get("/api/obligations", params={"provisional": "true"}).json()
            first = client.get("/api/obligations", params={"limit": 5}).json()
            rest = client.get("/api/obligations", params={"limit": 500, "offset": 5}).json()
            bad = client.get("/api/obligations", params={"state": "done", "limit": 501})
        assert finance["count"] == 6 and {i["owner_department"] for i in finance["items"]} == {"finance"}
        assert owner["count"] == 3 and {i["period"] for i in owner["items"]} == {"2026-11"}
        assert [(i["obligation"], i["waived_reason"]) for i in waived["items"]] == [("F-PLAIN", "停报")]
        assert due["count"] == 3 and {i["due_at"][:10] for i in due["items"]} == {"2026-12-15"}
        assert provisional == {"count": 0, "items": []}  # 2026 is a published holiday year
        assert first["count"] == rest["count"] == 6 + 13
        assert len(first["items"]) == 5 and len(rest["items"]) == 14
        assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in rest["items"])
        assert bad.status_code == 422 and set(bad.json()["error"]["problems"]) == {"query.state", "query.limit"}

    async def test_staff_see_only_their_department(self, live_server, runtime):
        ids = await materialise(runtime, "finance-reports", [OCTOBER])
        await materialise(runtime, "municipal-monthly-reports", [OCTOBER])
        with live_server.client("huang.lei") as client:
            mine = client.get("/api/obligations").json()
            other = client.get(f"/api/obligations/{ids['F-PLAIN', 'finance', '2026-10']}")
        with live_server.client("ma.chao") as client:
            finance = client.get("/api/obligations").json()
        assert mine == {"count": 0, "items": []}
        assert other.status_code == 404
        assert finance["count"] == 3


async def test_detail_names_the_rules_required_attachments_and_review(live_server, runtime):
    ids = await materialise(runtime, "finance-reports", [OCTOBER])
    with live_server.client("ma.chao") as client:
        sealed = client.get(f"/api/obligations/{ids['F-SEALED', 'finance', '2026-10']}").json()
        reviewed = client.get(f"/api/obligations/{ids['F-REVIEWED', 'finance', '2026-10']}").json()
    assert sealed["rules"]["attachments"] == [{"kind": "paper_copy_sealed", "label": "盖章纸质报表"},
                                              {"kind": "data_sheet", "label": "数据表"}]
    assert sealed["rules"]["due"] == "day 15 of next month" and sealed["rules"]["review_policy"] is None
    assert sealed["due_at"] == "2026-11-15T23:59:59+08:00"
    assert (sealed["review"], sealed["submissions"]) == (None, [])
    assert reviewed["rules"]["review_policy"] == "report-signoff"
    assert reviewed["rules"]["review_policy_title"] == "统计报表审核签字"


class TestMarkLate:
    async def test_statistician_marks_open_obligation_late_once(self, live_server, runtime):
        ids = await materialise(runtime, "finance-reports", [NOVEMBER])
        obligation_id = ids["F-PLAIN", "finance", "2026-11"]
        with live_server.client("he.jing") as client:
            first = client.post(f"/api/obligations/{obligation_id}/late", json={"reason": "已确认无法按时报送"})
            second = client.post(f"/api/obligations/{obligation_id}/late", json={})
        assert first.status_code == 200, first.text
        assert (first.json()["state"], first.json()["late"]) == ("late", True)
        assert second.status_code == 409 and second.json()["error"]["message"] == \
            f"obligation {obligation_id} is already marked late"
        async with runtime.sessions() as session:
            thresholds = {t.action: t.state for t in (await session.execute(select(ThresholdRow).where(
                ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == obligation_id))).scalars()}
            audit = (await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == "obligation.marked_late"))).scalar_one()
        assert thresholds["mark_late"] == "cancelled" and thresholds["remind"] == "pending"
        assert audit.actor_id == "he.jing" and audit.data["reason"] == "已确认无法按时报送"

    async def test_department_staff_get_403_naming_the_roles(self, live_server, runtime):
        ids = await materialise(runtime, "finance-reports", [NOVEMBER])
        with live_server.client("sun.li") as client:
            answer = client.post(f"/api/obligations/{ids['F-PLAIN', 'finance', '2026-11']}/late", json={})
        assert answer.status_code == 403
        assert "statistician" in answer.json()["error"]["message"] and "admin" in answer.json()["error"]["message"]


class TestWaive:
    async def test_statistician_waives_with_reason_and_thresholds_are_cancelled(self, live_server, runtime):
        ids = await materialise(runtime, "finance-reports", [NOVEMBER])
        obligation_id = ids["F-SEALED", "finance", "2026-11"]
        with live_server.client("he.jing") as client:
            missing = client.post(f"/api/obligations/{obligation_id}/waive", json={})
            answer = client.post(f"/api/obligations/{obligation_id}/waive", json={"reason": "上级通知本月停报"})
            twice = client.post(f"/api/obligations/{obligation_id}/waive", json={"reason": "再次"})
            state_in_body = client.post(f"/api/obligations/{obligation_id}/waive",
                                        json={"reason": "x", "state": "open"})
        assert missing.status_code == 422 and "reason" in missing.json()["error"]["problems"]
        assert answer.status_code == 200, answer.text
        assert (answer.json()["state"], answer.json()["waived_reason"]) == ("waived", "上级通知本月停报")
        assert twice.status_code == 409
        assert state_in_body.status_code == 422 and "state" in state_in_body.json()["error"]["problems"]
        async with runtime.sessions() as session:
            states = set((await session.execute(select(ThresholdRow.state).where(
                ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == obligation_id))).scalars())
        assert states == {"cancelled"}
        with live_server.client("ma.chao") as client:
            refused = client.post(f"/api/obligations/{obligation_id}/submissions", json={})
        assert refused.status_code == 409 and "waived" in refused.json()["error"]["message"]

    @pytest.mark.parametrize(("person", "status"), [("ma.chao", 403), ("huang.lei", 404), ("admin", 200)])
    async def test_who_may_waive(self, live_server, runtime, person, status):
        ids = await materialise(runtime, "finance-reports", [NOVEMBER])
        with live_server.client(person) as client:
            answer = client.post(f"/api/obligations/{ids['F-PLAIN', 'finance', '2026-11']}/waive",
                                 json={"reason": "免报"})
        assert answer.status_code == status, answer.text
