"""Delegations over HTTP: created, listed, revoked with checks; a delegate decides in the assignee's place
and sees the task in their inbox until the delegation is revoked; never on their own request."""

from __future__ import annotations

import pendulum
import pytest
from sqlalchemy import select, update

from store.tables import AuditEventRow, DecisionRow, PersonRow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def window(days: int = 7, start_hours: int = -1) -> dict:
    now = pendulum.now("Asia/Shanghai")
    return {"starts": now.add(hours=start_hours).isoformat(), "ends": now.add(days=days).isoformat()}


def delegate(server, user: str, expect: int = 201, **body) -> dict:
    with server.client(user) as client:
        answer = client.post("/api/delegations", json={**window(), **body})
    assert answer.status_code == expect, answer.text
    return answer.json()


def file_purchase(server, user: str = "huang.lei") -> dict:
    with server.client(user) as client:
        answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                    "form": {"items": "打印机", "amount": "3000"}})
    assert answer.status_code == 201, answer.text
    return answer.json()


def decide(server, user: str, request: dict, **body):
    with server.client(user) as client:
        return client.post(f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision",
                           json={"verb": "approve", **body})


async def test_delegate_approves_on_behalf_until_revoked(live_server, runtime):
    first, second = file_purchase(live_server), file_purchase(live_server)
    assert decide(live_server, "sun.li", first).status_code == 404  # no delegation yet: not even visible
    given = delegate(live_server, "liu.yang", to="sun.li", policies=["it-hardware-purchase"], reason="出差")
    assert given["from"] == "liu.yang" and given["active"] is True
    with live_server.client("sun.li") as client:
        tasks = client.get("/api/tasks").json()
        assert {t["request_id"] for t in tasks["items"]} == {first["id"], second["id"]}
        assert all(t["delegated_from"] == ["liu.yang"] for t in tasks["items"])
        assert tasks["by_policy"] == {"it-hardware-purchase": 2}
        assert client.get(f"/api/requests/{first['id']}").status_code == 200
    answer = decide(live_server, "sun.li", first)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "approved"
    async with runtime.sessions() as session:
        row = (await session.execute(select(DecisionRow).where(DecisionRow.request_id == first["id"]))).scalar_one()
    assert (row.verb, row.actor_id, row.on_behalf_of) == ("approve", "sun.li", "liu.yang")
    with live_server.client("huang.lei") as client:
        timeline = client.get(f"/api/requests/{first['id']}/timeline").json()["items"]
    assert ("孙丽", "批准「综合管理部负责人审批」（代 刘洋 审批）") in [(e["actor_name"], e["text"]) for e in timeline]
    with live_server.client("sun.li") as client:
        assert client.delete(f"/api/delegations/{given['id']}").status_code == 403  # only the delegator
    with live_server.client("liu.yang") as client:
        revoked = client.delete(f"/api/delegations/{given['id']}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert decide(live_server, "sun.li", second).status_code == 404
    with live_server.client("sun.li") as client:
        assert client.get("/api/tasks").json()["count"] == 0
    async with runtime.sessions() as session:
        actions = list((await session.execute(select(AuditEventRow.action).where(
            AuditEventRow.subject_type == "delegation", AuditEventRow.subject_id == str(given["id"])))).scalars())
    assert actions == ["delegation.created", "delegation.revoked"]


async def test_delegation_to_the_requester_never_lets_them_decide_their_own_request(live_server):
    delegate(live_server, "liu.yang", to="huang.lei")
    request = file_purchase(live_server, "huang.lei")
    answer = decide(live_server, "huang.lei", request, on_behalf_of="liu.yang")
    assert answer.status_code == 403
    assert answer.json()["error"]["problems"]["rule"] == "own_request"
    with live_server.client("huang.lei") as client:
        assert client.get("/api/tasks").json()["count"] == 0


async def test_policy_scope_is_respected(live_server):
    delegate(live_server, "liu.yang", to="sun.li", policies=["leaders-review-unknown"], expect=422)
    request = file_purchase(live_server)
    with live_server.client("admin") as client:
        answer = client.post("/api/delegations", json={**window(), "from": "zhao.weidong", "to": "sun.li"})
    assert answer.status_code == 201, answer.text
    assert decide(live_server, "sun.li", request).status_code == 404  # zhao.weidong holds no place here


class TestRefusedDelegations:
    async def test_bad_ones_name_the_field(self, live_server, runtime):
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(PersonRow).where(PersonRow.id == "lin.fang").values(active=False))
        cases = [({"to": "liu.yang"}, "to"), ({"to": "lin.fang"}, "to"), ({"to": "nobody.here"}, "to"),
                 ({"to": "sun.li", **window(days=400)}, "ends"),
                 ({"to": "sun.li", "starts": window()["ends"], "ends": window()["starts"]}, "ends")]
        for body, field in cases:
            answer = delegate(live_server, "liu.yang", expect=422, **body)
            assert field in answer["error"]["problems"], (body, answer)
        delegate(live_server, "liu.yang", expect=422, to="sun.li", starts="2026-10-01T00:00:00",
                 ends="2026-10-03T00:00:00")  # no offset
        delegate(live_server, "liu.yang", expect=403, to="sun.li", **{"from": "zhao.weidong"})
        delegate(live_server, "liu.yang", to="sun.li")
        overlap = delegate(live_server, "liu.yang", expect=422, to="sun.li", **window(days=3, start_hours=2))
        assert "starts" in overlap["error"]["problems"]

    async def test_lists_given_received_and_admin_all_with_paging(self, live_server):
        delegate(live_server, "liu.yang", to="sun.li")
        delegate(live_server, "zhao.weidong", to="sun.li")
        delegate(live_server, "sun.li", to="ma.chao")
        with live_server.client("sun.li") as client:
            assert client.get("/api/delegations").json()["count"] == 3
            assert client.get("/api/delegations?direction=received").json()["count"] == 2
            given = client.get("/api/delegations?direction=given").json()
            assert [(d["from"], d["to"]) for d in given["items"]] == [("sun.li", "ma.chao")]
            assert client.get("/api/delegations?direction=all").json()["count"] == 3  # not an admin: own only
        with live_server.client("liu.yang") as client:
            assert client.get("/api/delegations").json()["count"] == 1
        with live_server.client("admin") as client:
            page = client.get("/api/delegations?direction=all&limit=2&offset=2").json()
        assert page["count"] == 3 and len(page["items"]) == 1
