"""Report submissions over HTTP: required attachments, 补报 and 修报 as linked rows, the review chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from config import clock
from policies.recurrence import period_containing
from store.obligations import materialise_policy
from store.tables import AuditEventRow, ObligationRow, OutboxRow, ThresholdRow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = [ROOT / "policies" / "library" / "hospital",
           ROOT / "policies" / "library" / "hospital-statistics-office" / "report-signoff.yaml",
           ROOT / "tests" / "fixtures" / "reports" / "finance-reports.yaml"]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"policy_paths": PROFILE})


async def obligations(runtime, *, months_ago: int = 0) -> dict[str, int]:
    """finance-reports' obligations of the month `months_ago` months before this one: key → id."""
    version_id, loaded = runtime.registry.current("finance-reports")
    day = clock.now().in_timezone("Asia/Shanghai").subtract(months=months_ago).date()
    period = period_containing(day, "monthly")
    async with runtime.write() as session:
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=clock.now(),
                                 periods=[period])
        rows = (await session.execute(select(ObligationRow).where(ObligationRow.period_key == period.key))).scalars()
        return {r.obligation_key: r.id for r in rows}


def upload(client, kind: str | None = None, name: str = "报表.pdf") -> int:
    answer = client.post("/api/attachments", files={"file": (name, PDF, "application/pdf")},
                         data={"kind": kind} if kind else None)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def submit(client, obligation_id: int, **body):
    return client.post(f"/api/obligations/{obligation_id}/submissions", json=body)


async def test_missing_attachment_kinds_are_listed_with_their_labels_and_nothing_is_kept(live_server, runtime):
    ids = await obligations(runtime)
    with live_server.client("ma.chao") as client:
        sheet = upload(client, "data_sheet")
        answer = submit(client, ids["F-SEALED"], attachments=[sheet])
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["problems"] == {"attachments.paper_copy_sealed": "missing: 盖章纸质报表"}
        assert "paper_copy_sealed (盖章纸质报表)" in error["message"]
        assert client.get(f"/api/attachments/{sheet}").json()["attached_to"] is None  # rolled back
        sealed = upload(client, "paper_copy_sealed", "盖章件.pdf")
        answer = submit(client, ids["F-SEALED"], attachments=[sheet, sealed], note="10月数据")
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "accepted"
    assert sorted(a["kind"] for a in answer.json()["attachments"]) == ["data_sheet", "paper_copy_sealed"]


async def test_on_time_submission_is_accepted_and_cancels_the_reminders(live_server, runtime):
    ids = await obligations(runtime)
    with live_server.client("ma.chao") as client:
        answer = submit(client, ids["F-PLAIN"], note="按时报送")
        assert answer.status_code == 201, answer.text
        assert (answer.json()["kind"], answer.json()["late"], answer.json()["state"]) == ("original", False, "accepted")
        obligation = client.get(f"/api/obligations/{ids['F-PLAIN']}").json()
        again = submit(client, ids["F-PLAIN"])
    assert (obligation["state"], obligation["late"]) == ("submitted", False)
    assert obligation["submitted_at"] is not None
    assert [s["id"] for s in obligation["submissions"]] == [answer.json()["id"]]
    assert again.status_code == 409 and "corrects" in again.json()["error"]["message"]
    async with runtime.sessions() as session:
        states = set((await session.execute(select(ThresholdRow.state).where(
            ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == ids["F-PLAIN"]))).scalars())
        audit = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "submission.submitted"))).scalar_one()
    assert states == {"cancelled"}
    assert audit.actor_id == "ma.chao" and audit.data["kind"] == "original"


async def test_late_report_then_correction_are_new_rows_linked_to_the_old(live_server, runtime):
    ids = await obligations(runtime, months_ago=3)
    with live_server.client("ma.chao") as client:
        late = submit(client, ids["F-PLAIN"], note="补报")
        assert late.status_code == 201, late.text
        correction = submit(client, ids["F-PLAIN"], corrects=late.json()["id"], note="修正第3行")
        assert correction.status_code == 201, correction.text
        listed = client.get(f"/api/obligations/{ids['F-PLAIN']}/submissions").json()
        obligation = client.get(f"/api/obligations/{ids['F-PLAIN']}").json()
        stale = submit(client, ids["F-PLAIN"], corrects=late.json()["id"])
    assert (late.json()["kind"], late.json()["late"]) == ("late", True)
    assert (correction.json()["kind"], correction.json()["corrects"]) == ("correction", late.json()["id"])
    assert listed["count"] == 2
    assert [(s["id"], s["state"]) for s in listed["items"]] == [(correction.json()["id"], "accepted"),
                                                                (late.json()["id"], "superseded")]
    assert (obligation["state"], obligation["late"]) == ("submitted", True)
    assert stale.status_code == 409 and "superseded" in stale.json()["error"]["message"]


async def test_staff_of_another_department_cannot_submit_and_a_leader_is_told_who_may(live_server, runtime):
    ids = await obligations(runtime)
    with live_server.client("huang.lei") as client:
        assert submit(client, ids["F-PLAIN"]).status_code == 404
    with live_server.client("li.ming") as client:  # a vice president sees every obligation
        answer = submit(client, ids["F-PLAIN"])
    assert answer.status_code == 403
    assert "finance" in answer.json()["error"]["message"]
    with live_server.client("he.jing") as client:  # the statistics office may submit for a department
        assert submit(client, ids["F-PLAIN"]).status_code == 201


def decide_open_step(server, request_id: int, person: str, verb: str = "approve", reason: str | None = None):
    with server.client(person) as client:
        request = client.get(f"/api/requests/{request_id}").json()
        step = next(s for s in request["steps"] if s["state"] == "pending")
        assert person in step["assignees"], (person, step)
        answer = client.post(f"/api/requests/{request_id}/steps/{step['id']}/decision",
                             json={"verb": verb, "reason": reason})
    assert answer.status_code == 200, answer.text
    return answer.json()


class TestReviewChain:
    async def test_three_signatures_make_the_report_submitted(self, live_server, runtime):
        ids = await obligations(runtime)
        with live_server.client("ma.chao") as client:
            answer = submit(client, ids["F-REVIEWED"], attachments=[upload(client)], note="请审核")
            assert answer.status_code == 201, answer.text
            submission = answer.json()
            request = client.get(f"/api/requests/{submission['review_request_id']}").json()
            under_review = client.get(f"/api/obligations/{ids['F-REVIEWED']}").json()
        assert submission["state"] == "under_review"
        assert request["policy"] == "report-signoff"
        assert request["form"]["report"] == "对外报送财务统计月报" and request["form"]["scope"] == "对外上报"
        assert request["form"]["file"] == str(submission["attachments"][0]["id"])
        assert under_review["state"] == "under_review"
        assert under_review["review"]["open_steps"] == ["主管部门主任审核签字"]
        assert under_review["rules"]["review_policy"] == "report-signoff"
        with live_server.client("sun.li") as client:  # the reviewer reads the attached report
            assert client.get(f"/api/attachments/{request['form']['file']}/content").content == PDF

        for person in ("sun.li", "zhang.jianguo", "he.jing"):
            decide_open_step(live_server, request["id"], person)

        with live_server.client("ma.chao") as client:
            done = client.get(f"/api/obligations/{ids['F-REVIEWED']}").json()
        assert done["state"] == "submitted" and done["submitted_at"] is not None
        assert done["review"]["state"] == "approved"
        assert [(s["id"], s["state"]) for s in done["submissions"]] == [(submission["id"], "accepted")]
        mails = await _outbox(runtime, "submission_reviewed")
        assert [(m.recipient_id, m.context["outcome"]) for m in mails] == [("ma.chao", "approved")]

    async def test_rejection_returns_the_report_and_opens_the_obligation_again(self, live_server, runtime):
        ids = await obligations(runtime)
        with live_server.client("ma.chao") as client:
            submission = submit(client, ids["F-REVIEWED"], attachments=[upload(client)]).json()
        decide_open_step(live_server, submission["review_request_id"], "sun.li", "reject", "第5行数据有误")

        with live_server.client("ma.chao") as client:
            obligation = client.get(f"/api/obligations/{ids['F-REVIEWED']}").json()
            again = submit(client, ids["F-REVIEWED"], attachments=[upload(client)])
        assert obligation["state"] == "open"
        assert obligation["submissions"][0]["state"] == "returned"
        assert obligation["review"]["state"] == "rejected"
        assert again.status_code == 201 and again.json()["state"] == "under_review"
        mails = await _outbox(runtime, "submission_reviewed")
        assert [(m.recipient_id, m.context["outcome"]) for m in mails] == [("ma.chao", "rejected")]

    async def test_review_without_a_file_names_the_review_form_field(self, live_server, runtime):
        ids = await obligations(runtime)
        with live_server.client("ma.chao") as client:
            answer = submit(client, ids["F-REVIEWED"])
            obligation = client.get(f"/api/obligations/{ids['F-REVIEWED']}").json()
        assert answer.status_code == 422
        assert list(answer.json()["error"]["problems"]) == ["review_form.file"]
        assert obligation["state"] == "open" and obligation["submissions"] == []


async def _outbox(runtime, event: str) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).where(OutboxRow.event == event)
                                           .order_by(OutboxRow.id))).scalars())
