"""Reading requests over HTTP: the filtered, paged list; the timeline in words; the inbox counts; and bulk
approval answering item by item."""

from __future__ import annotations

import pendulum
import pytest
from sqlalchemy import select

from store.tables import DecisionRow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def file_purchase(server, amount: str = "3000", user: str = "huang.lei") -> dict:
    with server.client(user) as client:
        answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                    "form": {"items": "打印机", "amount": amount}})
    assert answer.status_code == 201, answer.text
    return answer.json()


def step_url(request: dict) -> str:
    return f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision"


async def test_list_filters_by_scope_state_policy_and_day_with_paging(live_server):
    filed = [file_purchase(live_server) for _ in range(3)] + [file_purchase(live_server, user="zhou.min")]
    with live_server.client("liu.yang") as client:
        client.post(step_url(filed[0]), json={"verb": "reject", "reason": "预算不足"})
    with live_server.client("huang.lei") as client:
        mine = client.get("/api/requests?scope=mine").json()
        assert mine["count"] == 3 and [r["id"] for r in mine["items"]] == [r["id"] for r in filed[2::-1]]
        assert client.get("/api/requests?scope=assigned").json()["count"] == 0
        rejected = client.get("/api/requests?state=rejected").json()
        assert [(r["id"], r["state"], r["open_step"]) for r in rejected["items"]] == [(filed[0]["id"], "rejected",
                                                                                       None)]
        page = client.get("/api/requests?scope=mine&limit=2&offset=2").json()
        assert page["count"] == 3 and [r["id"] for r in page["items"]] == [filed[0]["id"]]
        today = pendulum.now("Asia/Shanghai").date()
        assert client.get(f"/api/requests?created_from={today}&created_to={today}").json()["count"] == 3
        assert client.get(f"/api/requests?created_to={today.subtract(days=1)}").json()["count"] == 0
        assert client.get("/api/requests?policy=equipment-review").json()["count"] == 0
        assert client.get("/api/requests?state=lost").status_code == 422
        assert client.get("/api/requests?limit=501").status_code == 422
        assert client.get(f"/api/requests?created_from={today}&created_to={today.subtract(days=1)}").status_code \
            == 422
    with live_server.client("liu.yang") as client:
        assigned = client.get("/api/requests?scope=assigned&state=pending").json()
        assert assigned["count"] == 3
        assert assigned["items"][0]["open_step"] == "综合管理部负责人审批"
    with live_server.client("lin.fang") as client:
        assert client.get("/api/requests").json()["count"] == 0
    with live_server.client("admin") as client:
        assert client.get("/api/requests?scope=all").json()["count"] == 4


async def test_inbox_counts_by_policy_and_deadline(live_server):
    file_purchase(live_server)
    file_purchase(live_server, amount="60000")
    with live_server.client("liu.yang") as client:
        tasks = client.get("/api/tasks").json()
    assert (tasks["count"], tasks["by_policy"]) == (1, {"it-hardware-purchase": 1})
    assert tasks["overdue"] == 0 and tasks["due_today"] in (0, 1)
    assert tasks["items"][0]["policy"] == "it-hardware-purchase"


async def test_timeline_in_chinese_and_english(live_server):
    request = file_purchase(live_server)
    with live_server.client("liu.yang") as client:
        client.post(step_url(request), json={"verb": "reject", "reason": "预算不足"})
    with live_server.client("huang.lei") as client:
        zh = client.get(f"/api/requests/{request['id']}/timeline").json()
        en = client.get(f"/api/requests/{request['id']}/timeline?lang=en").json()
    assert [e["action"] for e in zh["items"]] == ["request.filed", "step.opened", "step.reject", "request.rejected"]
    texts = [(e["actor_name"], e["text"]) for e in zh["items"]]
    assert texts[0] == ("黄磊", "提交申请")
    assert texts[1][0] == "系统" and texts[1][1].startswith("「综合管理部负责人审批」分配给 刘洋，时限 ")
    assert texts[2:] == [("刘洋", "驳回「综合管理部负责人审批」（理由：预算不足）"), ("刘洋", "审批结束：申请已驳回")]
    assert zh["items"][0]["at"].endswith("+08:00")
    assert [e["text"] for e in en["items"]][2:] == [
        'rejected "综合管理部负责人审批" (reason: 预算不足)', "approval ended: the request is rejected"]
    with live_server.client("lin.fang") as client:
        assert client.get(f"/api/requests/{request['id']}/timeline").status_code == 404


async def test_bulk_approve_answers_each_item(live_server, runtime):
    ok_one, ok_two = file_purchase(live_server), file_purchase(live_server, amount="4000")
    not_mine = file_purchase(live_server, amount="60000")  # the CFO's
    own = file_purchase(live_server, user="liu.yang", amount="60000")  # liu.yang filed it: never his to approve
    items = [{"request_id": r["id"], "step_id": r["steps"][0]["id"]} for r in (ok_one, not_mine, ok_two, own)]
    items.append({"request_id": 99999, "step_id": 1})
    with live_server.client("liu.yang") as client:
        answer = client.post("/api/tasks/approve", json={"items": items})
        again = client.post("/api/tasks/approve", json={"items": items[:1]})
        assert client.post("/api/tasks/approve", json={"items": items[:1] * 2}).status_code == 422
        assert client.post("/api/tasks/approve", json={"items": []}).status_code == 422
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["ok"], result["failed"]) == (2, 3)
    assert [(i["ok"], i["state"], i["error"] and i["error"]["code"]) for i in result["items"]] == [
        (True, "approved", None), (False, None, "not_found"), (True, "approved", None), (False, None, "forbidden"),
        (False, None, "not_found")]
    assert result["items"][3]["error"]["problems"]["rule"] == "own_request"
    assert again.json()["items"][0]["error"]["code"] == "conflict"
    async with runtime.sessions() as session:
        verbs = list((await session.execute(select(DecisionRow.request_id).where(
            DecisionRow.actor_id == "liu.yang"))).scalars())
    assert sorted(verbs) == sorted([ok_one["id"], ok_two["id"]])


async def test_bulk_approve_is_refused_where_the_policy_leaves_it_out(live_server):
    """The demo's CFO step (over ¥50,000) leaves bulk_approve out of `allow`: the CFO approves it one by one."""
    large = file_purchase(live_server, amount="60000")
    item = {"request_id": large["id"], "step_id": large["steps"][0]["id"]}
    with live_server.client("zhao.weidong") as client:
        refused = client.post("/api/tasks/approve", json={"items": [item]}).json()["items"][0]
        assert client.get(f"/api/requests/{large['id']}").json()["state"] == "pending"
        single = client.post(f"/api/requests/{large['id']}/steps/{item['step_id']}/decision", json={"verb": "approve"})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    assert refused["error"]["problems"]["rule"] == "not_allowed" and "one by one" in refused["error"]["message"]
    assert single.status_code == 200 and single.json()["state"] == "approved"


async def test_bulk_approve_by_an_admin_not_assigned_is_refused_with_the_rule(live_server):
    with live_server.client("zhao.weidong") as client:
        own = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                 "form": {"items": "服务器", "amount": "3000"}}).json()
    with live_server.client("admin") as client:
        answer = client.post("/api/tasks/approve",
                             json={"items": [{"request_id": own["id"], "step_id": own["steps"][0]["id"]}]}).json()
    assert answer["items"][0]["error"]["code"] == "forbidden"
    assert answer["items"][0]["error"]["problems"]["rule"] == "not_assigned"
