"""Every verb of a request over real HTTP (uvicorn on loopback), stored and checked in the database:
state, decision row, audit event, outbox row. Runs on SQLite and PostgreSQL.

The policy: huang.lei (信息科) files; 科室负责人 zheng.hao → 财务总监 zhao.weidong → 院领导会签 li.ming and
chen.jing (all). The CFO step may send back to the requester, the previous step or the head step.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from store.tables import AuditEventRow, CommentRow, DecisionRow, OutboxRow, StepRow, ThresholdRow

pytestmark = pytest.mark.usefixtures("prefect_harness")

EQUIPMENT_REVIEW = """\
kind: approval
id: equipment-review
title: 设备采购评审
form:
  items:  {type: text,  label: 采购内容}
  amount: {type: money, label: 金额（元）, min: 0.01}
steps:
  - id: head
    title: 科室负责人审批
    approvers: {head_of: requester}
    sla: 3 working days
    remind: [1 working day]
    escalate:
      - {notify: {leader_in_charge_of: requester}}
  - id: cfo
    title: 财务总监审批
    approvers: {role: cfo}
    sla: 3 working days
    send_back: {to: [requester, previous, head]}
    escalate:
      - {notify: {person: zhang.jianguo}}
  - id: leaders
    title: 院领导会签
    approvers: {role: vice_president}
    mode: all
    sla: 3 working days
"""


@pytest.fixture
def settings(settings, tmp_path: Path):
    folder = tmp_path / "verb-policies"
    folder.mkdir()
    (folder / "equipment-review.yaml").write_text(EQUIPMENT_REVIEW, encoding="utf-8")
    return settings.model_copy(update={"policy_paths": [*settings.policy_paths, folder]})


# --- helpers ------------------------------------------------------------------------------------------

def file_review(server, user: str = "huang.lei", amount: str = "80000") -> dict:
    with server.client(user) as client:
        answer = client.post("/api/requests", json={"policy": "equipment-review",
                                                    "form": {"items": "彩超 1台", "amount": amount}})
    assert answer.status_code == 201, answer.text
    return answer.json()


def open_step(request: dict) -> dict:
    return next(s for s in request["steps"] if s["state"] == "pending")


def step_verb(server, user: str, request: dict, verb: str, expect: int = 200, **fields) -> dict:
    with server.client(user) as client:
        answer = client.post(f"/api/requests/{request['id']}/steps/{open_step(request)['id']}/decision",
                             json={"verb": verb, **fields})
    assert answer.status_code == expect, answer.text
    return answer.json()


def request_verb(server, user: str, request: dict, verb: str, expect: int = 200, **body) -> dict:
    with server.client(user) as client:
        answer = client.post(f"/api/requests/{request['id']}/{verb}", json=body)
    assert answer.status_code == expect, answer.text
    return answer.json()


async def rows(runtime, table, **where) -> list:
    async with runtime.sessions() as session:
        query = select(table)
        for key, value in where.items():
            query = query.where(getattr(table, key) == value)
        return list((await session.execute(query.order_by(*table.__table__.primary_key.columns))).scalars())


async def decisions(runtime, request: dict) -> list[tuple]:
    return [(d.verb, d.actor_id, d.on_behalf_of, d.target)
            for d in await rows(runtime, DecisionRow, request_id=request["id"])]


async def audit_actions(runtime, request: dict) -> list[str]:
    return [e.action for e in await rows(runtime, AuditEventRow, subject_type="request",
                                         subject_id=str(request["id"]))]


async def mails(runtime, event: str, request: dict) -> list[str]:
    return [m.recipient_id for m in await rows(runtime, OutboxRow, event=event)
            if m.context["request"]["id"] == request["id"]]


# --- send back, resubmit, withdraw --------------------------------------------------------------------

class TestSendBack:
    async def test_send_back_to_requester_then_resubmit_then_approve_to_the_end(self, live_server, runtime):
        request = file_review(live_server)
        request = step_verb(live_server, "zheng.hao", request, "approve")
        step_verb(live_server, "zhao.weidong", request, "send_back", expect=422)  # a reason is required
        request = step_verb(live_server, "zhao.weidong", request, "send_back", reason="请附报价单", to="requester")
        assert request["state"] == "returned"
        assert [s["state"] for s in request["steps"]] == ["waiting", "waiting", "waiting"]
        assert await mails(runtime, "request_returned", request) == ["huang.lei"]
        with live_server.client("zhao.weidong") as client:
            assert client.get("/api/tasks").json()["count"] == 0
        request = request_verb(live_server, "huang.lei", request, "resubmit")
        assert request["state"] == "pending" and open_step(request)["key"] == "head"
        for user in ("zheng.hao", "zhao.weidong", "li.ming", "chen.jing"):
            request = step_verb(live_server, user, request, "approve")
        assert request["state"] == "approved"
        assert await decisions(runtime, request) == [
            ("approve", "zheng.hao", None, None), ("send_back", "zhao.weidong", None, "requester"),
            ("resubmit", "huang.lei", None, None), ("approve", "zheng.hao", None, None),
            ("approve", "zhao.weidong", None, None), ("approve", "li.ming", None, None),
            ("approve", "chen.jing", None, None)]
        actions = await audit_actions(runtime, request)
        assert actions.count("step.send_back") == 1 and actions.count("request.resubmitted") == 1
        assert actions[-1] == "request.approved"
        head = request["steps"][0]
        keys = [t.key for t in await rows(runtime, ThresholdRow, subject_type="step", subject_id=head["id"])]
        assert set(keys[:2]) == {"remind-1", "escalate-1"} and sorted(keys[2:]) == ["escalate-1@4", "remind-1@4"]
        assigned = await mails(runtime, "step_assigned", request)
        assert assigned[:4] == ["zheng.hao", "zhao.weidong", "zheng.hao", "zhao.weidong"]
        assert sorted(assigned[4:]) == ["chen.jing", "li.ming"]

    async def test_send_back_to_previous_reopens_the_head_step_with_fresh_thresholds(self, live_server, runtime):
        request = file_review(live_server)
        request = step_verb(live_server, "zheng.hao", request, "approve")
        request = step_verb(live_server, "zhao.weidong", request, "send_back", reason="金额有误", to="previous")
        assert request["state"] == "pending"
        assert [(s["key"], s["state"], s["approved_by"]) for s in request["steps"]] == [
            ("head", "pending", []), ("cfo", "waiting", []), ("leaders", "waiting", [])]
        assert (await decisions(runtime, request))[-1] == ("send_back", "zhao.weidong", None, "head")
        head = request["steps"][0]
        pending = [t.key for t in await rows(runtime, ThresholdRow, subject_type="step", subject_id=head["id"],
                                             state="pending")]
        assert pending and all(k.endswith("@3") for k in pending)
        request = step_verb(live_server, "zheng.hao", request, "approve")
        assert open_step(request)["key"] == "cfo"

    async def test_send_back_to_a_later_or_unknown_step_is_refused(self, live_server):
        request = file_review(live_server)
        request = step_verb(live_server, "zheng.hao", request, "approve")
        answer = step_verb(live_server, "zhao.weidong", request, "send_back", expect=422, reason="x", to="leaders")
        assert answer["error"]["problems"]["rule"] == "bad_target"


class TestWithdraw:
    async def test_requester_withdraws_before_the_first_decision(self, live_server, runtime):
        request = file_review(live_server)
        request_verb(live_server, "zheng.hao", request, "withdraw", expect=403)  # only the requester
        request = request_verb(live_server, "huang.lei", request, "withdraw", reason="不再需要")
        assert request["state"] == "withdrawn"
        assert [s["state"] for s in request["steps"]] == ["cancelled"] * 3
        assert await decisions(runtime, request) == [("withdraw", "huang.lei", None, None)]
        assert (await audit_actions(runtime, request))[-1] == "request.withdrawn"
        assert await mails(runtime, "request_withdrawn", request) == ["huang.lei"]
        with live_server.client("zheng.hao") as client:
            assert client.get("/api/tasks").json()["count"] == 0
        request_verb(live_server, "huang.lei", request, "withdraw", expect=409)  # already withdrawn

    async def test_withdraw_after_the_first_decision_is_refused(self, live_server, runtime):
        request = file_review(live_server)
        step_verb(live_server, "zheng.hao", request, "approve")
        answer = request_verb(live_server, "huang.lei", request, "withdraw", expect=403)
        assert answer["error"]["problems"]["rule"] == "not_allowed"
        assert await mails(runtime, "request_withdrawn", request) == []


# --- transfer, add approver, comment ------------------------------------------------------------------

async def test_transfer_hands_the_place_over(live_server, runtime):
    request = file_review(live_server)
    answer = step_verb(live_server, "zheng.hao", request, "transfer", expect=422, to="huang.lei")
    assert answer["error"]["problems"]["rule"] == "to_requester"
    step_verb(live_server, "zheng.hao", request, "transfer", expect=422, reason="x")  # `to` is required
    request = step_verb(live_server, "zheng.hao", request, "transfer", to="wu.qiang", reason="出差")
    assert open_step(request)["assignees"] == ["wu.qiang"]
    assert (await decisions(runtime, request))[-1] == ("transfer", "zheng.hao", None, "wu.qiang")
    assert (await audit_actions(runtime, request))[-1] == "step.transfer"
    assert await mails(runtime, "step_assigned", request) == ["zheng.hao", "wu.qiang"]
    with live_server.client("zheng.hao") as client:
        assert client.get("/api/tasks").json()["count"] == 0
    step_verb(live_server, "zheng.hao", request, "approve", expect=403)
    request = step_verb(live_server, "wu.qiang", request, "approve")
    assert open_step(request)["key"] == "cfo"


class TestAddApprover:
    async def test_before_opens_a_new_step_first_then_returns_to_the_adder(self, live_server, runtime):
        request = file_review(live_server)
        request = step_verb(live_server, "zheng.hao", request, "add_approver", people=["sun.li"], position="before")
        assert [(s["position"], s["key"], s["state"], s["added_by"]) for s in request["steps"]] == [
            (0, "head+before-1", "pending", "zheng.hao"), (1, "head", "waiting", None),
            (2, "cfo", "waiting", None), (3, "leaders", "waiting", None)]
        assert (await decisions(runtime, request))[-1] == ("add_approver", "zheng.hao", None, "sun.li")
        assert await mails(runtime, "step_assigned", request) == ["zheng.hao", "sun.li"]
        request = step_verb(live_server, "sun.li", request, "approve")
        assert (open_step(request)["key"], open_step(request)["assignees"]) == ("head", ["zheng.hao"])
        request = step_verb(live_server, "zheng.hao", request, "approve")
        assert open_step(request)["key"] == "cfo"

    async def test_after_inserts_a_step_that_opens_when_the_current_one_is_approved(self, live_server, runtime):
        request = file_review(live_server)
        request = step_verb(live_server, "zheng.hao", request, "add_approver", people=["sun.li", "ma.chao"],
                            position="after")
        assert [s["key"] for s in request["steps"]] == ["head", "head+after-1", "cfo", "leaders"]
        assert [s["position"] for s in request["steps"]] == [0, 1, 2, 3]
        request = step_verb(live_server, "zheng.hao", request, "approve")
        assert (open_step(request)["key"], open_step(request)["mode"]) == ("head+after-1", "all")
        request = step_verb(live_server, "sun.li", request, "approve")
        request = step_verb(live_server, "ma.chao", request, "approve")
        assert open_step(request)["key"] == "cfo"

    async def test_parallel_joins_a_countersigning_step_only(self, live_server, runtime):
        request = file_review(live_server)
        answer = step_verb(live_server, "zheng.hao", request, "add_approver", expect=403, people=["sun.li"],
                           position="parallel")
        assert answer["error"]["problems"]["rule"] == "not_allowed"  # head is 或签 (any)
        request = step_verb(live_server, "zheng.hao", request, "approve")
        request = step_verb(live_server, "zhao.weidong", request, "approve")
        request = step_verb(live_server, "li.ming", request, "add_approver", people=["wang.xiuying"],
                            position="parallel")
        assignees = open_step(request)["assignees"]
        assert sorted(assignees[:2]) == ["chen.jing", "li.ming"] and assignees[2] == "wang.xiuying"
        assert "wang.xiuying" in await mails(runtime, "step_assigned", request)
        for user in ("li.ming", "chen.jing"):
            request = step_verb(live_server, user, request, "approve")
        assert request["state"] == "pending"
        request = step_verb(live_server, "wang.xiuying", request, "approve")
        assert request["state"] == "approved"

    async def test_fields_of_another_verb_are_refused(self, live_server):
        request = file_review(live_server)
        answer = step_verb(live_server, "zheng.hao", request, "approve", expect=422, people=["sun.li"])
        assert "people" in answer["error"]["problems"]["body"]
        step_verb(live_server, "zheng.hao", request, "approve", expect=422, state="approved")


async def test_comments_by_the_involved_only(live_server, runtime):
    request = file_review(live_server)
    request_verb(live_server, "huang.lei", request, "comments", expect=201, text="报价单已补充")
    request_verb(live_server, "zheng.hao", request, "comments", expect=201, text="收到")
    request_verb(live_server, "lin.fang", request, "comments", expect=404, text="路过")
    request_verb(live_server, "huang.lei", request, "comments", expect=422, text="")
    comments = await rows(runtime, CommentRow, subject_type="request", subject_id=request["id"])
    assert [(c.author_id, c.text) for c in comments] == [("huang.lei", "报价单已补充"), ("zheng.hao", "收到")]
    assert (await audit_actions(runtime, request)).count("request.commented") == 2
    assert [d[0] for d in await decisions(runtime, request)] == ["comment", "comment"]


# --- separation of duties, races ----------------------------------------------------------------------

async def test_requester_cannot_approve_own_request_even_as_admin(live_server):
    request = file_review(live_server, user="admin")  # admin is in 信息科: the head step goes to zheng.hao
    with live_server.client("admin") as client:
        answer = client.post(f"/api/requests/{request['id']}/steps/{open_step(request)['id']}/decision",
                             json={"verb": "approve", "on_behalf_of": "zheng.hao"})
    assert answer.status_code == 403
    assert answer.json()["error"]["problems"]["rule"] == "own_request"


def test_eight_racing_approvers_one_wins(live_server):
    request = file_review(live_server)
    url = f"/api/requests/{request['id']}/steps/{open_step(request)['id']}/decision"
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def approve() -> None:
        with live_server.client("zheng.hao") as client:
            client.get("/api/tasks")  # warm the credential cache so the posts really race
            barrier.wait()
            codes.append(client.post(url, json={"verb": "approve"}).status_code)

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 7
    with live_server.client("huang.lei") as client:
        steps = client.get(f"/api/requests/{request['id']}").json()["steps"]
    assert [s["state"] for s in steps] == ["approved", "pending", "waiting"]


async def test_steps_added_and_moved_keep_positions_unique(live_server, runtime):
    request = file_review(live_server)
    request = step_verb(live_server, "zheng.hao", request, "add_approver", people=["sun.li"], position="after")
    request = step_verb(live_server, "zheng.hao", request, "add_approver", people=["ma.chao"], position="before")
    stored = await rows(runtime, StepRow, request_id=request["id"])
    assert sorted(s.position for s in stored) == [0, 1, 2, 3, 4]
    assert [s["key"] for s in request["steps"]] == ["head+before-2", "head", "head+after-1", "cfo", "leaders"]
