"""An IT hardware purchase (seed AC-12) through the REST API, served by uvicorn on loopback."""

from __future__ import annotations

import threading

import pytest

from notifications.catcher import MailCatcher, list_caught

pytestmark = pytest.mark.usefixtures("prefect_harness")


def file_purchase(server, amount: str, user: str = "huang.lei") -> dict:
    with server.client(user) as client:
        answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                    "form": {"items": "笔记本电脑 10台", "amount": amount}})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def deliver_now() -> dict:
    from flows.deliver import deliver

    return await deliver()


class TestRouting:
    def test_fifty_thousand_inclusive_goes_to_general_management_head(self, live_server):
        request = file_purchase(live_server, "50000.00")
        assert [s["assignees"] for s in request["steps"]] == [["liu.yang"]]

    def test_one_fen_above_fifty_thousand_goes_to_cfo(self, live_server):
        request = file_purchase(live_server, "50000.01")
        assert [s["key"] for s in request["steps"]] == ["cfo"]
        assert request["steps"][0]["assignees"] == ["zhao.weidong"]

    def test_bad_form_names_every_field(self, live_server):
        with live_server.client("huang.lei") as client:
            answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                        "form": {"amount": "abc", "colour": "red"}})
        assert answer.status_code == 422
        problems = answer.json()["error"]["problems"]
        assert set(problems) == {"amount", "items", "colour"}


async def test_approval_emails_the_requester_over_real_smtp(live_server, mail: MailCatcher):
    request = file_purchase(live_server, "48000")
    step = request["steps"][0]
    with live_server.client("liu.yang") as client:
        tasks = client.get("/api/tasks").json()
        assert [t["request_id"] for t in tasks["items"]] == [request["id"]]
        answer = client.post(f"/api/requests/{request['id']}/steps/{step['id']}/decision", json={"verb": "approve"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "approved"
    report = await deliver_now()
    assert report["sent"] == 3  # the approver's assignment, the requester's confirmation, then the outcome
    inbox = list_caught(mail.maildir, recipient="huang.lei@hospital.example")
    assert sorted(m.subject[:3] for m in inbox) == ["已批准", "已提交"]
    [decided] = [m for m in inbox if m.subject.startswith("已批准")]
    assert "刘洋" in decided.text
    with live_server.client("liu.yang") as client:
        assert client.get("/api/tasks").json()["count"] == 0


def test_reject_without_reason_is_422_and_changes_nothing(live_server):
    request = file_purchase(live_server, "1200")
    step_id = request["steps"][0]["id"]
    with live_server.client("liu.yang") as client:
        answer = client.post(f"/api/requests/{request['id']}/steps/{step_id}/decision", json={"verb": "reject"})
        assert answer.status_code == 422
        assert "reason" in answer.json()["error"]["problems"]
        assert client.get(f"/api/requests/{request['id']}").json()["steps"][0]["state"] == "pending"
        answer = client.post(f"/api/requests/{request['id']}/steps/{step_id}/decision",
                             json={"verb": "reject", "reason": "预算已用完"})
    assert answer.status_code == 200
    assert answer.json()["state"] == "rejected"


def test_requester_cannot_approve_own_request(live_server):
    request = file_purchase(live_server, "1200", user="huang.lei")
    step_id = request["steps"][0]["id"]
    with live_server.client("huang.lei") as client:
        answer = client.post(f"/api/requests/{request['id']}/steps/{step_id}/decision", json={"verb": "approve"})
    assert answer.status_code == 403
    assert "own request" in answer.json()["error"]["message"]


def test_head_filing_a_purchase_is_never_routed_to_himself(live_server):
    with live_server.client("liu.yang") as client:
        answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                    "form": {"items": "打印机", "amount": "3000"}})
    assert answer.status_code == 422
    assert "only the requester" in answer.json()["error"]["message"]


def test_someone_not_involved_sees_404(live_server):
    request = file_purchase(live_server, "1200")
    with live_server.client("lin.fang") as client:
        assert client.get(f"/api/requests/{request['id']}").status_code == 404
        step_id = request["steps"][0]["id"]
        answer = client.post(f"/api/requests/{request['id']}/steps/{step_id}/decision", json={"verb": "approve"})
        assert answer.status_code == 404


def test_anonymous_and_wrong_password_get_401(live_server):
    with live_server.client(None) as client:
        assert client.get("/api/tasks").status_code == 401
        assert client.post("/api/requests", json={"policy": "it-hardware-purchase", "form": {}}).status_code == 401
    with live_server.client("liu.yang", password="wrong") as client:
        assert client.get("/api/tasks").status_code == 401


def test_second_concurrent_approval_gets_409(live_server):
    request = file_purchase(live_server, "1200")
    url = f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision"
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def approve() -> None:
        with live_server.client("liu.yang") as client:
            client.get("/api/me")  # warm the credential cache so the four posts really race
            barrier.wait()
            codes.append(client.post(url, json={"verb": "approve"}).status_code)

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409, 409, 409]
    with live_server.client("huang.lei") as client:
        assert client.get(f"/api/requests/{request['id']}").json()["state"] == "approved"


class TestBadInputIsRefusedNotCrashed:
    def test_ids_beyond_the_id_columns_are_422(self, live_server):
        with live_server.client("huang.lei") as client:
            assert client.get("/api/requests/99999999999999999999").status_code == 422
            answer = client.post("/api/requests/1/steps/99999999999/decision", json={"verb": "approve"})
            assert answer.status_code == 422
            assert client.get("/requests/0").status_code == 422

    def test_nul_in_a_reason_is_422(self, live_server):
        request = file_purchase(live_server, "1200")
        url = f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision"
        with live_server.client("liu.yang") as client:
            answer = client.post(url, json={"verb": "reject", "reason": "预算\x00不足"})
            assert answer.status_code == 422
            assert client.get(f"/api/requests/{request['id']}").json()["state"] == "pending"

    def test_nul_in_the_user_name_is_401(self, live_server):
        with live_server.client("liu\x00yang") as client:
            assert client.get("/api/tasks").status_code == 401

    def test_readiness_says_ready_without_details(self, live_server):
        with live_server.client(None) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
