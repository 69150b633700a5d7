"""One event, every channel: queue_message fans out to e-mail, the in-app list and chat hooks in the caller's
transaction; the deliverer sends chat rows signed to a real HTTP receiver; rate limits hold per channel and per
hook; people who chose a daily digest have routine mail held for it.

Real database (SQLite, and PostgreSQL where present), real aiosmtpd, a real loopback HTTP receiver that checks
the vendors' signatures (chat_receiver.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pendulum
import pytest
from sqlalchemy import select, update

from notifications.delivery import DeliveryReport, DeliverySettings, deliver_due
from notifications.smtp import SmtpSettings
from store.outbox import queue_message
from store.tables import ChatHookRow, NotificationRow, OutboxRow, PersonRow

from .chat_receiver import ChatReceiver, ReceiverServer, Reply

T0 = pendulum.datetime(2026, 11, 13, 9, tz="Asia/Shanghai")
REMINDER = {"obligation": {"id": 7, "title": "信息系统运行月报", "policy_title": "信息科月报", "period": "2026-10",
                           "due_at": "2026-11-15T23:59:59+08:00", "provisional": False,
                           "owner_department": "财务科"},
            "link": "http://127.0.0.1:8000/obligations/7"}


@pytest.fixture
def receiver(receiver_server: ReceiverServer) -> ChatReceiver:
    return receiver_server.fresh(T0)


def settings_for(smtp_server: Any, **changes: Any) -> DeliverySettings:
    return DeliverySettings(smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout_seconds=5),
                            chat_timeout_seconds=5, **changes)


async def add_hook(runtime, scope: str, owner: str, kind: str, url: str, *, secret: str | None = None,
                   events: list[str] | None = None, active: bool = True) -> int:
    async with runtime.write() as session:
        hook = ChatHookRow(scope=scope, owner=owner, kind=kind, url=url, secret=secret, events=events, active=active,
                           created_at=T0, created_by="admin", label=f"{owner} {kind}")
        session.add(hook)
        await session.flush()
        return hook.id


async def queue(runtime, event: str, people: list[str], *, context: dict[str, Any] = REMINDER,
                key: str | None = None, now=T0) -> None:
    """One occurrence of `event` for each of `people`, in one transaction, as the sweep queues it."""
    key = key or f"test:{uuid4().hex}"
    async with runtime.write() as session:
        for person_id in people:
            await queue_message(session, event_key=key, event=event, recipient=await session.get(PersonRow, person_id),
                                context=context, now=now)


async def outbox(runtime, **where: Any) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        query = select(OutboxRow).order_by(OutboxRow.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxRow, column) == value)
        return list((await session.execute(query)).scalars())


async def in_app(runtime) -> list[NotificationRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(NotificationRow).order_by(NotificationRow.id))).scalars())


async def set_person(runtime, person_id: str, **values: Any) -> None:
    async with runtime.write() as session:
        await session.execute(update(PersonRow).where(PersonRow.id == person_id).values(**values))


async def test_one_event_reaches_email_the_in_app_list_and_each_hook_once(runtime, receiver):
    personal = await add_hook(runtime, "person", "sun.li", "wecom", receiver.url("wecom", "sunli"))
    group = await add_hook(runtime, "department", "finance", "dingtalk", receiver.url("dingtalk", "finance"))
    await add_hook(runtime, "department", "it", "feishu", receiver.url("feishu", "it"))  # not their department

    await queue(runtime, "obligation_reminder", ["sun.li", "ma.chao"], key="threshold:99")

    email = await outbox(runtime, channel="email")
    assert [(r.recipient_id, r.state, r.event_key) for r in email] == [
        ("sun.li", "pending", "threshold:99:sun.li"), ("ma.chao", "pending", "threshold:99:ma.chao")]
    chat = await outbox(runtime, channel="chat")
    assert sorted((r.hook_id, r.event_key) for r in chat) == sorted(
        [(personal, f"threshold:99:hook{personal}"), (group, f"threshold:99:hook{group}")])  # the group once
    assert [(n.person_id, n.event, n.read_at) for n in await in_app(runtime)] == [
        ("sun.li", "obligation_reminder", None), ("ma.chao", "obligation_reminder", None)]


async def test_a_group_hears_the_teams_work_not_one_persons_private_news(runtime, receiver):
    personal = await add_hook(runtime, "person", "sun.li", "wecom", receiver.url("wecom", "sunli"))
    await add_hook(runtime, "department", "finance", "dingtalk", receiver.url("dingtalk", "finance"))
    chosen = await add_hook(runtime, "department", "finance", "wecom", receiver.url("wecom", "finance2"),
                            events=["request_decided"])
    await add_hook(runtime, "person", "sun.li", "feishu", receiver.url("feishu", "off"), active=False)

    await queue(runtime, "request_decided", ["sun.li"])

    assert sorted(r.hook_id for r in await outbox(runtime, channel="chat")) == [personal, chosen]


async def test_summaries_go_by_email_only_and_digest_readers_have_routine_mail_held(runtime, receiver):
    await add_hook(runtime, "person", "ma.chao", "wecom", receiver.url("wecom", "machao"))
    await set_person(runtime, "ma.chao", notify_mode="digest")

    await queue(runtime, "obligation_reminder", ["ma.chao"])  # routine: waits for the digest
    await queue(runtime, "obligation_overdue", ["ma.chao"])  # urgent: at once
    await queue(runtime, "escalation_report", ["ma.chao"], context={})  # a summary: e-mail only, never held

    assert [(r.event, r.state) for r in await outbox(runtime, channel="email")] == [
        ("obligation_reminder", "held"), ("obligation_overdue", "pending"), ("escalation_report", "pending")]
    assert [n.event for n in await in_app(runtime)] == ["obligation_reminder", "obligation_overdue"]
    # the chat hook is the person's own choice of channel, not held by the e-mail preference
    assert [r.event for r in await outbox(runtime, channel="chat")] == ["obligation_reminder", "obligation_overdue"]


async def test_chat_messages_go_out_signed_with_a_link_once_each(runtime, receiver, smtp_server):
    receiver.require_signature("finance", "SECfinance")
    receiver.require_signature("sunli", "SECsunli")
    await add_hook(runtime, "department", "finance", "dingtalk", receiver.url("dingtalk", "finance"),
                   secret="SECfinance")
    await add_hook(runtime, "person", "sun.li", "feishu", receiver.url("feishu", "sunli"), secret="SECsunli")
    await queue(runtime, "obligation_reminder", ["sun.li"])

    report = await deliver_due(runtime, settings_for(smtp_server), now=T0)

    assert report == DeliveryReport(claimed=3, sent=3, retrying=0, dead=0)  # one e-mail, two chat messages
    by_vendor = {r.vendor: r for r in receiver.received}
    assert sorted(by_vendor) == ["dingtalk", "feishu"]
    assert all(r.signature_checked and r.signature_problem == "" for r in receiver.received)
    card = by_vendor["dingtalk"].body["actionCard"]
    assert card["title"].startswith("请在 11月15日 23:59 前报送") and card["singleURL"] == REMINDER["link"]
    feishu = by_vendor["feishu"].body["card"]
    assert feishu["header"]["title"]["content"] == card["title"]
    assert [r.state for r in await outbox(runtime)] == ["sent"] * 3
    assert (await deliver_due(runtime, settings_for(smtp_server), now=T0.add(minutes=5))).claimed == 0
    assert len(receiver.received) == 2 and len(smtp_server.handler.received) == 1


async def test_a_robots_rate_limit_answer_is_retried_and_a_bad_key_is_dead_lettered(runtime, receiver, smtp_server):
    busy = await add_hook(runtime, "person", "sun.li", "wecom", receiver.url("wecom", "busy"))
    await queue(runtime, "obligation_reminder", ["sun.li"])
    receiver.reply(Reply(body={"errcode": 45009, "errmsg": "api freq out of limit"}))

    assert (await deliver_due(runtime, settings_for(smtp_server), now=T0)).retrying == 1
    [row] = await outbox(runtime, hook_id=busy)
    assert row.state == "pending" and "45009" in (row.last_error or "")
    assert (await deliver_due(runtime, settings_for(smtp_server), now=row.next_attempt_at)).sent == 1

    await queue(runtime, "obligation_overdue", ["sun.li"])
    receiver.reply(Reply(body={"errcode": 93000, "errmsg": "invalid webhook url"}))
    later = T0.add(hours=1)
    assert (await deliver_due(runtime, settings_for(smtp_server), now=later)).dead == 1
    dead = [r for r in await outbox(runtime, hook_id=busy) if r.state == "dead"]
    assert len(dead) == 1 and "93000" in (dead[0].last_error or "") and "busy" not in (dead[0].last_error or "")


async def test_each_hook_gets_at_most_its_per_minute_budget_and_no_hook_starves(runtime, receiver, smtp_server):
    chatty = await add_hook(runtime, "person", "sun.li", "wecom", receiver.url("wecom", "chatty"))
    quiet = await add_hook(runtime, "person", "ma.chao", "wecom", receiver.url("wecom", "quiet"))
    for _ in range(5):
        await queue(runtime, "obligation_reminder", ["sun.li"])
    await queue(runtime, "obligation_reminder", ["ma.chao"])
    settings = settings_for(smtp_server, chat_per_hook_per_minute=2)

    async def sent_per_hook() -> dict[int, int]:
        rows = await outbox(runtime, channel="chat", state="sent")
        return {hook: sum(1 for r in rows if r.hook_id == hook) for hook in (chatty, quiet)}

    await deliver_due(runtime, settings, now=T0)
    assert await sent_per_hook() == {chatty: 2, quiet: 1}
    await deliver_due(runtime, settings, now=T0.add(seconds=30))
    assert await sent_per_hook() == {chatty: 2, quiet: 1}  # the minute is not over
    await deliver_due(runtime, settings, now=T0.add(seconds=61))
    assert await sent_per_hook() == {chatty: 4, quiet: 1}
    assert all(r.attempts == 1 for r in await outbox(runtime, channel="chat", state="sent"))  # waiting cost nothing


async def test_email_is_rate_limited_across_runs(runtime, smtp_server):
    await queue(runtime, "obligation_reminder", ["sun.li", "ma.chao", "zhao.weidong", "liu.yang", "li.ming"])
    settings = settings_for(smtp_server, email_per_minute=2)

    assert (await deliver_due(runtime, settings, now=T0)).sent == 2
    assert (await deliver_due(runtime, settings, now=T0.add(seconds=59))).claimed == 0
    assert (await deliver_due(runtime, settings, now=T0.add(seconds=61))).sent == 2
    assert (await deliver_due(runtime, settings, now=T0.add(seconds=122))).sent == 1
    assert len(smtp_server.handler.received) == 5


async def test_a_hook_switched_off_after_queueing_dead_letters_its_rows_with_the_reason(runtime, receiver,
                                                                                         smtp_server):
    hook = await add_hook(runtime, "person", "sun.li", "wecom", receiver.url("wecom", "gone"))
    await queue(runtime, "obligation_reminder", ["sun.li"])
    async with runtime.write() as session:
        await session.execute(update(ChatHookRow).where(ChatHookRow.id == hook).values(active=False))

    assert (await deliver_due(runtime, settings_for(smtp_server), now=T0)).dead == 1
    [row] = await outbox(runtime, hook_id=hook)
    assert row.last_error == f"chat hook #{hook} was switched off or removed"
    assert receiver.received == []


async def test_a_name_with_a_line_break_in_the_directory_cannot_inject_a_header(runtime, smtp_server):
    await set_person(runtime, "sun.li", name="孙丽\r\nBcc: everyone@evil.example")
    await queue(runtime, "obligation_reminder", ["sun.li", "ma.chao"])

    assert await deliver_due(runtime, settings_for(smtp_server), now=T0) == DeliveryReport(2, 1, 0, 1)
    [dead] = await outbox(runtime, state="dead")
    assert dead.recipient_id == "sun.li"
    assert dead.last_error.startswith("cannot build the message: to_name contains a line break or NUL")
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["ma.chao@hospital.example"] and "Bcc" not in received.message


async def test_a_title_with_a_line_break_stays_one_subject_line(runtime, smtp_server):
    context = {**REMINDER, "obligation": {**REMINDER["obligation"], "title": "月报\r\nBcc: everyone@evil.example"}}
    await queue(runtime, "obligation_reminder", ["ma.chao"], context=context)

    assert (await deliver_due(runtime, settings_for(smtp_server), now=T0)).sent == 1
    [received] = smtp_server.handler.received
    assert "Bcc" not in received.message and received.rcpt_tos == ["ma.chao@hospital.example"]
    assert "月报 Bcc: everyone@evil.example" in str(received.message["Subject"])


async def test_a_slow_server_that_answers_after_our_timeout_gets_one_copy_more_with_the_same_message_id(
        runtime, smtp_server):
    smtp_server.handler.data_delay = 1.5
    settings = DeliverySettings(smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout_seconds=0.5))
    await queue(runtime, "obligation_reminder", ["ma.chao"])

    assert (await deliver_due(runtime, settings, now=T0)).retrying == 1
    [row] = await outbox(runtime)
    assert row.state == "pending" and row.next_attempt_at > T0 + timedelta(seconds=20)

    smtp_server.handler.data_delay = 0
    assert (await deliver_due(runtime, settings, now=row.next_attempt_at)).sent == 1
    copies = [r.message["Message-ID"] for r in smtp_server.handler.received]
    assert len(copies) == 2 and len(set(copies)) == 1  # the late acceptance and the retry: one id, two copies
