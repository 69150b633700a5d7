"""Draining the outbox (notifications/delivery.py) against real SMTP servers on loopback and a real database.

Rules under test: a row is sent at most once per claim and never by two deliverers at once; a server that
is down or answers 4xx leaves the row pending with a later `next_attempt_at` (exponential backoff); a 5xx
answer dead-letters it at once; a row claimed by a deliverer that crashed before marking it is sent again
only after its lease, with the same Message-ID, so the receiver can tell the copies apart from new mail.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pendulum
from sqlalchemy import select, update

from notifications.catcher import MailCatcher, free_port, list_caught
from notifications.delivery import LEASE, DeliveryReport, DeliverySettings, claim, deliver_due, message_id_for
from notifications.email import build_email, render
from notifications.smtp import SmtpSettings, send_batch
from store.outbox import queue_message
from store.tables import OutboxRow, PersonRow

T0 = pendulum.datetime(2026, 11, 13, 9, tz="Asia/Shanghai")
PEOPLE = ("liu.yang", "li.ming", "zheng.hao", "chen.jing", "sun.li", "zhou.min")
REMINDER = {"obligation": {"id": 7, "title": "信息系统运行月报", "policy_title": "信息科月报", "period": "2026-10",
                           "due_at": "2026-11-15T23:59:59+08:00", "provisional": False,
                           "owner_department": "信息科"},
            "link": "http://127.0.0.1:8000/obligations/7"}


def smtp_for(server: Any) -> SmtpSettings:
    return SmtpSettings(host=server.host, port=server.port, timeout_seconds=5)


async def queue(runtime, people: tuple[str, ...] | list[str], *, now: datetime) -> list[int]:
    """One obligation reminder per person, queued in one transaction as the sweep does."""
    async with runtime.sessions() as session, session.begin():
        rows = [await queue_message(session, event_key=f"test:{uuid4().hex}", event="obligation_reminder",
                              recipient=await session.get(PersonRow, person_id), context=REMINDER, now=now)
                for person_id in people]
        await session.flush()
    return [row.id for row in rows]


async def outbox(runtime, ids: list[int]) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).where(OutboxRow.id.in_(ids))
                                           .order_by(OutboxRow.id))).scalars())


async def give_address(runtime, person_id: str, email: str) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(PersonRow).where(PersonRow.id == person_id).values(email=email))


async def deliver(runtime, smtp: SmtpSettings, **options: Any) -> DeliveryReport:
    return await deliver_due(runtime, DeliverySettings(smtp=smtp), **options)


def between(value: datetime, low: datetime, high: datetime) -> bool:
    return low <= value <= high


async def test_rows_stay_pending_while_smtp_is_down_and_go_out_once_each_when_it_is_back(runtime, tmp_path: Path):
    port = free_port()  # nothing listens here yet
    smtp = SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)
    ids = await queue(runtime, PEOPLE[:3], now=T0)

    assert await deliver(runtime, smtp, now=T0) == DeliveryReport(claimed=3, sent=0, retrying=3, dead=0)
    down = await outbox(runtime, ids)
    assert [(r.state, r.attempts) for r in down] == [("pending", 1)] * 3
    assert all("connection refused" in (r.last_error or "") for r in down)
    assert all(between(r.next_attempt_at, T0 + timedelta(seconds=24), T0 + timedelta(seconds=36)) for r in down)

    back = T0.add(minutes=1)
    with MailCatcher(tmp_path / "inbox", port=port) as catcher:
        assert await deliver(runtime, smtp, now=back) == DeliveryReport(claimed=3, sent=3, retrying=0, dead=0)
        assert (await deliver(runtime, smtp, now=back.add(hours=1))).claimed == 0
    caught = list_caught(catcher.maildir)
    assert sorted(r for m in caught for r in m.recipients) == sorted(f"{p}@hospital.example" for p in PEOPLE[:3])
    assert sorted(m.message_id for m in caught) == sorted(message_id_for(r) for r in down)
    assert [(r.state, r.attempts, r.sent_at, r.last_error) for r in await outbox(runtime, ids)] == [
        ("sent", 2, back, None)] * 3


async def test_a_550_answer_dead_letters_the_row_at_once(runtime, smtp_server):
    await give_address(runtime, "liu.yang", "refuse550@hospital.example")
    ids = await queue(runtime, ["liu.yang"], now=T0)

    assert await deliver(runtime, smtp_for(smtp_server), now=T0) == DeliveryReport(1, 0, 0, 1)

    [row] = await outbox(runtime, ids)
    assert (row.state, row.attempts) == ("dead", 1)
    assert row.last_error == "550 5.1.1 Mailbox unavailable (recipient refuse550@hospital.example)"
    assert (await deliver(runtime, smtp_for(smtp_server), now=T0.add(days=1))).claimed == 0
    assert smtp_server.handler.received == []


async def test_a_451_answer_retries_with_a_growing_delay(runtime, smtp_server):
    await give_address(runtime, "liu.yang", "later451@hospital.example")
    ids = await queue(runtime, ["liu.yang"], now=T0)
    smtp = smtp_for(smtp_server)

    assert await deliver(runtime, smtp, now=T0) == DeliveryReport(1, 0, 1, 0)
    [first] = await outbox(runtime, ids)
    assert (first.state, first.attempts) == ("pending", 1)
    assert first.last_error == "451 4.3.0 Try again later (recipient later451@hospital.example)"
    assert between(first.next_attempt_at, T0 + timedelta(seconds=24), T0 + timedelta(seconds=36))  # 30 s ± 20 %

    early = first.next_attempt_at - timedelta(seconds=1)
    assert (await deliver(runtime, smtp, now=early)).claimed == 0
    retry = first.next_attempt_at
    assert await deliver(runtime, smtp, now=retry) == DeliveryReport(1, 0, 1, 0)
    [second] = await outbox(runtime, ids)
    assert (second.state, second.attempts) == ("pending", 2)
    assert between(second.next_attempt_at, retry + timedelta(seconds=48), retry + timedelta(seconds=72))  # 60 s
    assert smtp_server.handler.received == []


async def test_a_row_resent_after_a_crash_waits_for_its_lease_and_keeps_its_message_id(runtime, smtp_server):
    smtp = smtp_for(smtp_server)
    [row_id] = await queue(runtime, ["liu.yang"], now=T0)
    # A deliverer claims the row and the server accepts the message; the process dies before marking it sent.
    async with runtime.sessions() as session, session.begin():
        assert await claim(session, runtime, now=T0, limit=10) == [row_id]
    [claimed] = await outbox(runtime, [row_id])
    rendered = render(claimed.event, claimed.context, lang=claimed.lang)
    [outcome] = await send_batch([build_email(rendered, sender=smtp.sender, to_address=claimed.to_address,
                                              to_name="刘洋", message_id=message_id_for(claimed), date=T0)], smtp)
    assert outcome.ok

    assert (await deliver(runtime, smtp, now=T0 + LEASE - timedelta(seconds=1))).claimed == 0
    assert (await deliver(runtime, smtp, now=T0 + LEASE + timedelta(seconds=1))).sent == 1
    assert (await deliver(runtime, smtp, now=T0.add(hours=1))).claimed == 0

    ids = [r.message["Message-ID"] for r in smtp_server.handler.received]
    assert ids == [f"<{message_id_for(claimed)}>"] * 2  # the same Message-ID, and twice at most
    [row] = await outbox(runtime, [row_id])
    assert (row.state, row.attempts) == ("sent", 2)


async def test_two_deliverers_at_the_same_moment_never_send_a_row_twice(runtime, smtp_server):
    smtp = smtp_for(smtp_server)
    ids = await queue(runtime, PEOPLE, now=T0)

    first, second = await asyncio.gather(deliver(runtime, smtp, now=T0, batch_size=4),
                                         deliver(runtime, smtp, now=T0, batch_size=4))
    third = await deliver(runtime, smtp, now=T0, batch_size=4)

    assert first.sent + second.sent + third.sent == len(PEOPLE)
    assert first.claimed + second.claimed + third.claimed == len(PEOPLE)
    received = Counter(r.message["Message-ID"] for r in smtp_server.handler.received)
    assert sorted(received) == sorted(f"<{message_id_for(r)}>" for r in await outbox(runtime, ids))
    assert set(received.values()) == {1}
    assert (await deliver(runtime, smtp, now=T0)).claimed == 0
