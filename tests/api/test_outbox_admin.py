"""Dead letters for administrators: listed with their recipient, destination and error; resent by moving the
same row back to pending (same event_key, so the same Message-ID), audited, and `deliver` nudged at once.

A row that is not dead answers 409 naming its state and stays as it was; only administrators list or resend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pendulum
import pytest
from sqlalchemy import select

from api.app import create_app
from store.tables import AuditEventRow, ChatHookRow, OutboxRow

T0 = pendulum.datetime(2026, 11, 13, 9, tz="Asia/Shanghai")


async def outbox_row(runtime: Any, key: str, *, state: str = "dead", channel: str = "email",
                     recipient: str = "huang.lei", hook_id: int | None = None, attempts: int = 8,
                     error: str | None = "550 5.1.1 mailbox unavailable") -> int:
    async with runtime.sessions() as session, session.begin():
        row = OutboxRow(event_key=f"{key}:{recipient}", event="obligation_reminder", channel=channel, hook_id=hook_id,
                        recipient_id=recipient, to_address="huang.lei@hospital.example", context={}, state=state,
                        attempts=attempts, last_error=error, next_attempt_at=T0, created_at=T0)
        session.add(row)
        await session.flush()
        return row.id


async def stored(runtime: Any, outbox_id: int) -> OutboxRow:
    async with runtime.sessions() as session:
        return await session.get(OutboxRow, outbox_id)


class Nudges:
    """What the app nudges (flows.schedule.Nudger): the job ids, in order."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def nudge(self, job_id: str) -> None:
        self.jobs.append(job_id)

    async def shutdown(self) -> None:
        pass


@pytest.fixture
async def app_with_nudges(runtime) -> AsyncIterator[tuple[httpx.AsyncClient, Nudges]]:
    """The app in this process with a Nudger that records, as `duly serve` is given a deployment nudger."""
    nudges = Nudges()
    app = create_app(runtime, nudger=nudges)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://duly.test",
                                     auth=("admin", "duly-demo")) as client:
            yield client, nudges


async def test_dead_letters_are_listed_with_recipient_destination_and_counts(live_server, runtime):
    async with runtime.sessions() as session, session.begin():
        hook = ChatHookRow(scope="department", owner="it", kind="wecom", label="信息科群", created_by="admin",
                           url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", created_at=T0)
        session.add(hook)
        await session.flush()
        hook_id = hook.id
    mail = await outbox_row(runtime, "a")
    chat = await outbox_row(runtime, "b", channel="chat", hook_id=hook_id, error="errcode 93000: invalid webhook url")
    await outbox_row(runtime, "c", state="pending", error=None, attempts=0)
    await outbox_row(runtime, "d", state="sent", error=None, attempts=1)
    with live_server.client("admin") as client:
        dead = client.get("/api/admin/outbox").json()
        chats = client.get("/api/admin/outbox", params={"channel": "chat"}).json()
        pending = client.get("/api/admin/outbox", params={"state": "pending"}).json()
        wrong = client.get("/api/admin/outbox", params={"state": "lost"})
    assert [i["id"] for i in dead["items"]] == [chat, mail]
    by_id = {i["id"]: i for i in dead["items"]}
    assert by_id[mail]["recipient_name"] == "黄磊" and by_id[mail]["to_address"] == "huang.lei@hospital.example"
    assert by_id[mail]["last_error"] == "550 5.1.1 mailbox unavailable" and by_id[mail]["attempts"] == 8
    assert by_id[chat]["to_address"] == "信息科群 · 企业微信"
    assert [i["id"] for i in chats["items"]] == [chat]
    assert [i["state"] for i in pending["items"]] == ["pending"]
    assert dead["counts"]["dead"] == {"email": 1, "chat": 1}
    assert dead["counts"]["pending"] == {"email": 1, "chat": 0} and dead["counts"]["sent"]["email"] == 1
    assert wrong.status_code == 422 and "query.state" in wrong.json()["error"]["problems"]


async def test_resending_a_dead_letter_keeps_the_row_and_nudges_deliver(runtime, app_with_nudges):
    client, nudges = app_with_nudges
    dead = await outbox_row(runtime, "resend")
    before = await stored(runtime, dead)
    answer = await client.post(f"/api/admin/outbox/{dead}/resend")
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "pending" and answer.json()["attempts"] == 0
    row = await stored(runtime, dead)
    assert (row.state, row.attempts, row.event_key) == ("pending", 0, before.event_key)
    assert row.last_error == "550 5.1.1 mailbox unavailable"  # kept until the next attempt replaces it
    assert row.next_attempt_at > pendulum.now("UTC").subtract(minutes=1)
    assert nudges.jobs == ["deliver"]
    async with runtime.sessions() as session:
        resent = select(AuditEventRow).where(AuditEventRow.action == "outbox.resent")
        (event,) = (await session.execute(resent)).scalars()
    assert (event.actor_id, event.subject_id, event.data["attempts"]) == ("admin", str(dead), 8)
    again = await client.post(f"/api/admin/outbox/{dead}/resend")  # now pending: not a dead letter any more
    assert again.status_code == 409 and "is pending, not dead" in again.json()["error"]["message"]
    assert nudges.jobs == ["deliver"]


@pytest.mark.parametrize("state", ["pending", "sent", "held", "digested"])
async def test_only_dead_letters_are_resent(runtime, app_with_nudges, state):
    client, nudges = app_with_nudges
    row_id = await outbox_row(runtime, f"not-dead-{state}", state=state, attempts=2)
    answer = await client.post(f"/api/admin/outbox/{row_id}/resend")
    assert answer.status_code == 409, answer.text
    assert f"is {state}, not dead" in answer.json()["error"]["message"]
    row = await stored(runtime, row_id)
    assert (row.state, row.attempts) == (state, 2)
    assert nudges.jobs == []


async def test_a_chat_letter_whose_hook_was_deleted_cannot_be_resent(runtime, app_with_nudges):
    client, _ = app_with_nudges
    row_id = await outbox_row(runtime, "orphan", channel="chat", hook_id=None)
    answer = await client.post(f"/api/admin/outbox/{row_id}/resend")
    assert answer.status_code == 409 and "deleted" in answer.json()["error"]["message"]
    assert (await stored(runtime, row_id)).state == "dead"
    assert (await client.post("/api/admin/outbox/2000000000/resend")).status_code == 404


async def test_others_may_neither_list_nor_resend(live_server, runtime):
    dead = await outbox_row(runtime, "refused")
    for user in ("huang.lei", "liu.yang"):
        with live_server.client(user) as client:
            assert client.get("/api/admin/outbox").status_code == 403
            answer = client.post(f"/api/admin/outbox/{dead}/resend")
        assert answer.status_code == 403 and answer.json()["error"]["message"] == "administrators only"
    assert (await stored(runtime, dead)).state == "dead"
