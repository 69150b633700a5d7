"""Chat-bot hooks over HTTP: my own, and administrators' for departments and people.

Rules under test: the kind, URL and secret are checked by notifications.chat.validate_hook (422 with its
fix-it message, nothing stored); `events` names chat events only (the message names the allowed ones); the
secret never comes back (`has_secret`), the URL's key or token is cut short, and neither reaches the audit
trail; someone else's hook answers 404 and stays; only administrators use /api/admin/chat-hooks; deleting a
hook dead-letters the messages not yet sent to it.
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from sqlalchemy import select

from store.tables import AuditEventRow, ChatHookRow, OutboxRow

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"
DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/2c1e0c8d-1111-2222-3333-9f0e5b6a7c8d"


async def hooks(runtime: Any) -> list[ChatHookRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(ChatHookRow).order_by(ChatHookRow.id))).scalars())


async def audit(runtime: Any, prefix: str = "chat_hook.") -> list[AuditEventRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEventRow).where(AuditEventRow.action.startswith(prefix))
                                           .order_by(AuditEventRow.seq))).scalars())


class TestMine:
    async def test_i_add_a_wecom_hook_and_see_it_masked(self, live_server, runtime):
        with live_server.client("huang.lei") as client:
            answer = client.post("/api/me/chat-hooks", json={"kind": "wecom", "url": WECOM, "label": "我的群"})
            assert answer.status_code == 201, answer.text
            listed = client.get("/api/me/chat-hooks").json()
        hook = answer.json()
        assert (hook["scope"], hook["owner"], hook["kind"], hook["has_secret"]) == ("person", "huang.lei", "wecom",
                                                                                    False)
        assert hook["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a…"
        assert hook["events"] is None and hook["active"] is True
        assert [h["id"] for h in listed["items"]] == [hook["id"]]
        (row,) = await hooks(runtime)
        assert row.url == WECOM  # stored whole: delivery needs it

    async def test_a_signing_secret_is_write_only_and_never_audited(self, live_server, runtime):
        with live_server.client("huang.lei") as client:
            answer = client.post("/api/me/chat-hooks", json={"kind": "dingtalk", "url": DINGTALK,
                                                             "secret": DING_SECRET,
                                                             "events": ["step_assigned", "obligation_overdue"]})
            assert answer.status_code == 201, answer.text
            listed = client.get("/api/me/chat-hooks").text
        assert answer.json()["has_secret"] is True
        assert answer.json()["events"] == ["step_assigned", "obligation_overdue"]
        for text in (answer.text, listed):
            assert DING_SECRET not in text and "a1b2c3d4e5f6" not in text
        (event,) = await audit(runtime)
        stored = json.dumps(event.data, ensure_ascii=False)
        assert event.action == "chat_hook.created" and event.data["has_secret"] is True
        assert DING_SECRET not in stored and "a1b2c3d4e5f6" not in stored

    async def test_a_url_that_is_not_the_kinds_webhook_is_refused_with_how_to_fix_it(self, live_server, runtime):
        cases = [({"kind": "wecom", "url": DINGTALK}, "url", "choose the kind dingtalk"),
                 ({"kind": "feishu", "url": "http://example.com/hook/x"}, "url", "https://"),
                 ({"kind": "wecom", "url": WECOM, "secret": "abc"}, "secret", "leave the secret empty"),
                 ({"kind": "dingtalk", "url": DINGTALK, "secret": "abc"}, "secret", "starts with SEC"),
                 # a hook of one's own cannot make the server post to its own loopback services
                 ({"kind": "wecom", "url": "http://127.0.0.1:5432/cgi-bin/webhook/send?key=x"}, "url",
                  "only administrators may point a hook at this machine")]
        with live_server.client("huang.lei") as client:
            for body, field, words in cases:
                answer = client.post("/api/me/chat-hooks", json=body)
                assert answer.status_code == 422, (body, answer.text)
                assert words in answer.json()["error"]["problems"][field], answer.json()
            unknown_kind = client.post("/api/me/chat-hooks", json={"kind": "slack", "url": WECOM})
        assert unknown_kind.status_code == 422 and "kind" in unknown_kind.json()["error"]["problems"]
        assert await hooks(runtime) == []

    async def test_events_must_be_chat_events_and_the_message_names_them(self, live_server, runtime):
        with live_server.client("huang.lei") as client:
            for events, words in ((["digest"], "not a chat event: 'digest'"), (["stepassigned"], "step_assigned"),
                                  ([], "at least one event"), (["step_assigned", "step_assigned"], "twice")):
                answer = client.post("/api/me/chat-hooks", json={"kind": "feishu", "url": FEISHU, "events": events})
                assert answer.status_code == 422, answer.text
                assert words in answer.json()["error"]["problems"]["events"]
        message = answer.json()
        assert await hooks(runtime) == []
        with live_server.client("huang.lei") as client:
            allowed = client.post("/api/me/chat-hooks", json={"kind": "feishu", "url": FEISHU,
                                                              "events": ["escalation_report"]})
        problem = allowed.json()["error"]["problems"]["events"]
        assert "allowed: delegated, obligation_opened, obligation_overdue, obligation_reminder" in problem, problem
        assert "audit_broken" not in problem.split("allowed:")[1], message

    async def test_someone_elses_hook_reads_as_missing_and_stays(self, live_server, runtime):
        with live_server.client("huang.lei") as client:
            hook = client.post("/api/me/chat-hooks", json={"kind": "feishu", "url": FEISHU}).json()
        with live_server.client("lin.fang") as client:
            assert client.get("/api/me/chat-hooks").json()["count"] == 0
            answer = client.delete(f"/api/me/chat-hooks/{hook['id']}")
        assert answer.status_code == 404, answer.text
        assert [h.id for h in await hooks(runtime)] == [hook["id"]]
        with live_server.client("huang.lei") as client:
            gone = client.delete(f"/api/me/chat-hooks/{hook['id']}")
        assert gone.status_code == 200 and gone.json() == {"id": hook["id"], "deleted": True, "unsent_dead": 0}
        assert await hooks(runtime) == []
        assert [e.action for e in await audit(runtime)] == ["chat_hook.created", "chat_hook.deleted"]

    async def test_a_department_hook_is_not_mine_to_delete(self, live_server, runtime):
        with live_server.client("admin") as client:
            hook = client.post("/api/admin/chat-hooks", json={"scope": "department", "owner": "it", "kind": "feishu",
                                                              "url": FEISHU}).json()
        with live_server.client("huang.lei") as client:  # 信息科 staff: the group's bot is the administrators'
            assert client.delete(f"/api/me/chat-hooks/{hook['id']}").status_code == 404
        assert len(await hooks(runtime)) == 1


class TestAdministrators:
    async def test_only_administrators_use_the_admin_routes_and_nothing_changes_otherwise(self, live_server, runtime):
        body = {"scope": "department", "owner": "it", "kind": "wecom", "url": WECOM, "label": "信息科群"}
        with live_server.client("admin") as client:
            hook = client.post("/api/admin/chat-hooks", json=body).json()
        with live_server.client("liu.yang") as client:
            answers = [client.get("/api/admin/chat-hooks"), client.post("/api/admin/chat-hooks", json=body),
                       client.patch(f"/api/admin/chat-hooks/{hook['id']}", json={"active": False}),
                       client.delete(f"/api/admin/chat-hooks/{hook['id']}")]
        assert [a.status_code for a in answers] == [403, 403, 403, 403]
        assert all(a.json()["error"]["message"] == "administrators only" for a in answers)
        (row,) = await hooks(runtime)
        assert row.active is True and row.label == "信息科群"

    async def test_the_owner_must_exist(self, live_server, runtime):
        with live_server.client("admin") as client:
            department = client.post("/api/admin/chat-hooks", json={"scope": "department", "owner": "nowhere",
                                                                    "kind": "wecom", "url": WECOM})
            person = client.post("/api/admin/chat-hooks", json={"scope": "person", "owner": "no.body",
                                                                "kind": "wecom", "url": WECOM})
            scope = client.post("/api/admin/chat-hooks", json={"scope": "hospital", "owner": "it",
                                                               "kind": "wecom", "url": WECOM})
        assert department.json()["error"]["problems"] == {"owner": "no department 'nowhere'"}
        assert person.json()["error"]["problems"] == {"owner": "no person 'no.body'"}
        assert scope.status_code == 422 and "scope" in scope.json()["error"]["problems"]
        assert await hooks(runtime) == []

    async def test_patch_changes_label_events_secret_and_active(self, live_server, runtime):
        with live_server.client("admin") as client:
            hook = client.post("/api/admin/chat-hooks", json={"scope": "person", "owner": "liu.yang",
                                                              "kind": "dingtalk", "url": DINGTALK}).json()
            assert hook["has_secret"] is False
            answer = client.patch(f"/api/admin/chat-hooks/{hook['id']}",
                                  json={"label": "刘洋的钉钉", "events": ["step_assigned"], "secret": DING_SECRET,
                                        "active": False})
            assert answer.status_code == 200, answer.text
            changed = answer.json()
            assert (changed["label"], changed["events"], changed["has_secret"], changed["active"]) == (
                "刘洋的钉钉", ["step_assigned"], True, False)
            cleared = client.patch(f"/api/admin/chat-hooks/{hook['id']}", json={"secret": None, "events": None})
            assert (cleared.json()["has_secret"], cleared.json()["events"]) == (False, None)
            refused = [client.patch(f"/api/admin/chat-hooks/{hook['id']}", json=b)
                       for b in ({"url": WECOM}, {"label": None}, {"events": ["digest"]}, {"kind": "wecom"})]
            missing = client.patch("/api/admin/chat-hooks/2000000000", json={"label": "x"})
            listed = client.get("/api/admin/chat-hooks", params={"owner": "liu.yang"}).json()
        assert [r.status_code for r in refused] == [422, 422, 422, 422]
        assert "choose the kind wecom" in refused[0].json()["error"]["problems"]["url"]
        assert missing.status_code == 404
        (row,) = await hooks(runtime)
        assert (row.url, row.secret, row.label, row.active) == (DINGTALK, None, "刘洋的钉钉", False)
        assert [h["id"] for h in listed["items"]] == [hook["id"]]
        updates = [e for e in await audit(runtime) if e.action == "chat_hook.updated"]
        assert updates[0].data["changed"]["secret_changed"] is True
        assert all(DING_SECRET not in json.dumps(e.data) for e in updates)

    async def test_deleting_a_hook_dead_letters_what_was_not_sent_to_it(self, live_server, runtime):
        with live_server.client("admin") as client:
            hook = client.post("/api/admin/chat-hooks", json={"scope": "department", "owner": "it", "kind": "feishu",
                                                              "url": FEISHU, "label": "信息科群"}).json()
        now = pendulum.now("UTC")
        async with runtime.sessions() as session, session.begin():
            for state in ("pending", "sent"):
                session.add(OutboxRow(event_key=f"hook-test:{state}", event="step_assigned", channel="chat",
                                      hook_id=hook["id"], recipient_id="huang.lei", to_address="信息科群",
                                      context={}, state=state, next_attempt_at=now, created_at=now))
        with live_server.client("admin") as client:
            answer = client.delete(f"/api/admin/chat-hooks/{hook['id']}")
        assert answer.status_code == 200 and answer.json()["unsent_dead"] == 1, answer.text
        async with runtime.sessions() as session:
            rows = {r.event_key: r for r in (await session.execute(select(OutboxRow))).scalars()}
        assert rows["hook-test:pending"].state == "dead" and rows["hook-test:pending"].hook_id is None
        assert "was deleted" in rows["hook-test:pending"].last_error
        assert rows["hook-test:sent"].state == "sent" and rows["hook-test:sent"].hook_id is None
        assert await hooks(runtime) == []
