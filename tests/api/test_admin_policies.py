"""Policy upload over HTTP: checked like `duly check`, stored as a version, current at once; requests
already filed keep the version they began on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.tables import AuditEventRow, PolicyVersionRow

pytestmark = pytest.mark.usefixtures("prefect_harness")

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library" / "hospital"
PURCHASE = (LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8")
PURCHASE_40K = PURCHASE.replace("amount <= 50000", "amount <= 40000").replace("amount > 50000", "amount > 40000")
YAML = {"Content-Type": "application/yaml"}


def upload(client, text: str, **params):
    return client.post("/api/policies", content=text.encode("utf-8"), headers=YAML, params=params)


def file_purchase(server, amount: str) -> dict:
    with server.client("huang.lei") as client:
        answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                    "form": {"items": "服务器 1台", "amount": amount}})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def count_versions(runtime, policy_id: str) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(PolicyVersionRow)
                                      .where(PolicyVersionRow.policy_id == policy_id))).scalar_one()


async def test_a_new_version_is_current_and_a_request_filed_before_keeps_its_version(live_server, runtime):
    before = file_purchase(live_server, "48000")
    assert before["steps"][0]["assignees"] == ["liu.yang"]
    with live_server.client("admin") as admin:
        answer = upload(admin, PURCHASE_40K)
        assert answer.status_code == 201, answer.text
        uploaded = answer.json()
        detail = admin.get("/api/policies/it-hardware-purchase").json()
    assert uploaded["new_version"] is True and uploaded["id"] == "it-hardware-purchase"
    assert detail["version"] == uploaded["version"] and detail["current"] is True
    assert "amount <= 40000" in detail["text"]
    assert [v["current"] for v in detail["versions"]] == [True, False]

    after = file_purchase(live_server, "48000")
    assert [s["key"] for s in after["steps"]] == ["cfo"]  # the new threshold routes it to the CFO

    with live_server.client("liu.yang") as head:  # the old request still runs on the 50,000 version
        decided = head.post(f"/api/requests/{before['id']}/steps/{before['steps'][0]['id']}/decision",
                            json={"verb": "approve"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "approved"
    async with runtime.sessions() as session:
        event = (await session.execute(select(AuditEventRow)
                                       .where(AuditEventRow.action == "policy.upload"))).scalar_one()
    assert event.actor_id == "admin"
    assert event.data["version"] == uploaded["version"]
    assert event.data["before"]["version"] == detail["versions"][1]["version"]


async def test_an_old_version_can_be_read_by_its_number(live_server):
    with live_server.client("admin") as admin:
        old = admin.get("/api/policies/it-hardware-purchase").json()
        upload(admin, PURCHASE_40K)
        answer = admin.get(f"/api/policies/it-hardware-purchase/versions/{old['version']}")
        wrong_policy = admin.get(f"/api/policies/municipal-monthly-reports/versions/{old['version']}")
    assert answer.status_code == 200
    assert answer.json()["text"] == PURCHASE and answer.json()["current"] is False
    assert wrong_policy.status_code == 404


async def test_a_syntax_error_is_refused_with_its_line_and_column(live_server, runtime):
    broken = "kind: approval\nid: broken\ntitle: [未闭合\nsteps: []\n"
    with live_server.client("admin") as admin:
        answer = upload(admin, broken)
    assert answer.status_code == 422
    problems = answer.json()["error"]["problems"]
    assert [(p["line"], p["column"], p["severity"]) for p in problems] == [(4, 6, "error")]
    assert problems[0]["message"].startswith("not valid YAML")
    assert await count_versions(runtime, "broken") == 0


async def test_schema_problems_are_all_reported_with_hints(live_server):
    with live_server.client("admin") as admin:
        answer = upload(admin, PURCHASE.replace("    approvers: {role: cfo}", "    aprovers: {role: cfo}"))
    assert answer.status_code == 422
    problems = answer.json()["error"]["problems"]
    assert problems[0]["message"] == "steps[1]: unknown key 'aprovers'"
    assert problems[0]["hint"].startswith("did you mean 'approvers'?")
    assert problems[0]["line"] == PURCHASE.splitlines().index("    approvers: {role: cfo}") + 1


async def test_a_lint_error_against_the_database_organisation_is_refused(live_server, runtime):
    """The role exists nowhere in the organisation the system runs: the step could never be decided."""
    with live_server.client("admin") as admin:
        answer = upload(admin, PURCHASE.replace("{role: cfo}", "{role: astronaut}"))
    assert answer.status_code == 422
    errors = [p for p in answer.json()["error"]["problems"] if p["severity"] == "error"]
    assert len(errors) == 1
    assert "role: astronaut names nobody" in errors[0]["message"]
    assert errors[0]["line"] == PURCHASE.splitlines().index("    approvers: {role: cfo}") + 1
    assert await count_versions(runtime, "it-hardware-purchase") == 1


async def test_a_new_role_holder_makes_the_same_text_pass(live_server):
    """Lint reads the organisation in the database: give someone the role and the upload passes."""
    text = PURCHASE.replace("{role: cfo}", "{role: auditor}")
    with live_server.client("admin") as admin:
        assert upload(admin, text).status_code == 422
        assert admin.patch("/api/people/sun.li", json={"roles": ["auditor"]}).status_code == 200
        assert upload(admin, text).status_code == 201


async def test_a_dry_run_checks_and_stores_nothing(live_server, runtime):
    with live_server.client("admin") as admin:
        answer = upload(admin, PURCHASE_40K, dry_run="true")
        bad = upload(admin, PURCHASE.replace("{role: cfo}", "{role: astronaut}"), dry_run="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] is None and answer.json()["dry_run"] is True
    assert bad.status_code == 422
    assert await count_versions(runtime, "it-hardware-purchase") == 1
    assert [s["key"] for s in file_purchase(live_server, "48000")["steps"]] == ["general-management"]


async def test_identical_text_answers_the_version_stored_before(live_server, runtime):
    with live_server.client("admin") as admin:
        current = admin.get("/api/policies/it-hardware-purchase").json()
        answer = upload(admin, PURCHASE)
    assert answer.status_code == 200
    assert answer.json()["version"] == current["version"]
    assert answer.json()["new_version"] is False
    assert answer.json()["content_hash"] == current["content_hash"]
    assert await count_versions(runtime, "it-hardware-purchase") == 1


async def test_a_brand_new_policy_is_filed_under_at_once_with_its_warnings(live_server):
    text = ("kind: approval\nid: leave-request\ntitle: 请假申请\ntimezone: Asia/Shanghai\n"
            "form:\n  days: {type: number, label: 天数, min: 1}\n"
            "steps:\n  - id: head\n    title: 科室负责人审批\n    approvers: {superior_of: requester}\n"
            "    sla: 2 working days\n    escalate:\n      - notify: {leader_in_charge_of: requester}\n")
    with live_server.client("admin") as admin:
        answer = upload(admin, text)
    assert answer.status_code == 201, answer.text
    assert all(w["severity"] == "warning" for w in answer.json()["warnings"])
    with live_server.client("huang.lei") as staff:
        filed = staff.post("/api/requests", json={"policy": "leave-request", "form": {"days": 2}})
    assert filed.status_code == 201, filed.text
    assert filed.json()["steps"][0]["assignees"] == ["zheng.hao"]


def test_the_body_must_be_yaml_text_of_at_most_one_mebibyte(live_server):
    with live_server.client("admin") as admin:
        as_json = admin.post("/api/policies", json={"text": PURCHASE})
        too_big = admin.post("/api/policies", content=b"# " + b"x" * (1024 * 1024), headers=YAML)
        not_utf8 = admin.post("/api/policies", content="kind: approval\n".encode("gb18030") + b"\xff\xfe",
                              headers={"Content-Type": "text/plain"})
    assert as_json.status_code == 415
    assert "application/yaml" in as_json.json()["error"]["message"]
    assert too_big.status_code == 413
    assert not_utf8.status_code == 422
    assert not_utf8.json()["error"]["problems"] == {"body": "invalid byte at offset 15"}
