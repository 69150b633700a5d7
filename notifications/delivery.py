"""Drain the outbox: claim due rows, send them, record the outcome.

Claiming moves a row's `next_attempt_at` one lease ahead before anything is sent, in its own short
transaction, so two deliverers never send the same row; a crash between the server's 250 and the
"sent" mark re-sends the row once after the lease, with the same Message-ID, so the receiver can
recognise it. Failures back off exponentially (with jitter) until `max_attempts`, then the row is
dead-lettered; a permanent (5xx) answer dead-letters at once.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications.email import build_email, render
from notifications.smtp import SmtpSettings, send_batch
from store.runtime import Runtime
from store.tables import OutboxRow, PersonRow

LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int
    sent: int
    retrying: int
    dead: int


def message_id_for(row: OutboxRow) -> str:
    """Stable per (event, recipient): the same row always carries the same Message-ID."""
    digest = hashlib.sha256(row.event_key.encode()).hexdigest()[:24]
    return f"duly.{row.id}.{digest}@duly.local"


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """30 s, 60 s, 120 s … capped at one hour, with ±20 % jitter so retries do not arrive in step."""
    base = min(30 * 2 ** max(attempts - 1, 0), 3600)
    jitter = (rng or random).uniform(0.8, 1.2)
    return timedelta(seconds=base * jitter)


async def claim(session: AsyncSession, runtime: Runtime, *, now: datetime, limit: int) -> list[int]:
    query = (select(OutboxRow.id).where(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now)
             .order_by(OutboxRow.next_attempt_at, OutboxRow.id).limit(limit))  # type: ignore[arg-type]
    if not runtime.sqlite:
        query = query.with_for_update(skip_locked=True)
    ids = list((await session.execute(query)).scalars())
    if ids:
        await session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
                              .values(next_attempt_at=now + LEASE, attempts=OutboxRow.attempts + 1))
    return ids


async def deliver_due(runtime: Runtime, smtp: SmtpSettings, *, now: datetime, batch_size: int = 100,
                      max_attempts: int = 8) -> DeliveryReport:
    """Send up to `batch_size` due messages over one SMTP connection."""
    async with runtime.write() as session:
        ids = await claim(session, runtime, now=now, limit=batch_size)
    if not ids:
        return DeliveryReport(0, 0, 0, 0)
    async with runtime.sessions() as session:
        rows = list((await session.execute(select(OutboxRow).where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
                                           .order_by(OutboxRow.id))).scalars())
        names = {p.id: p.name for p in (await session.execute(select(PersonRow).where(
            PersonRow.id.in_({r.recipient_id for r in rows})))).scalars()}  # type: ignore[attr-defined]
    messages, sendable, failures = [], [], {}
    for row in rows:
        try:
            rendered = render(row.event, row.context, lang=row.lang)
            messages.append(build_email(rendered, sender=smtp.sender, to_address=row.to_address,
                                        to_name=names.get(row.recipient_id, ""), message_id=message_id_for(row),
                                        date=now))
            sendable.append(row)
        except ValueError as exc:  # a template or address problem will not fix itself: dead-letter
            failures[row.id] = (True, f"cannot build the message: {exc}")
    outcomes = await send_batch(messages, smtp) if messages else []
    for row, outcome in zip(sendable, outcomes, strict=True):
        if not outcome.ok:
            failures[row.id] = (outcome.permanent, outcome.detail)
    sent = retrying = dead = 0
    async with runtime.write() as session:
        for row in rows:
            if row.id not in failures:
                values: dict[str, object] = {"state": "sent", "sent_at": now, "last_error": None}
                sent += 1
            else:
                permanent, detail = failures[row.id]
                if permanent or row.attempts >= max_attempts:  # attempts counts this one
                    values = {"state": "dead", "last_error": detail[:1000]}
                    dead += 1
                else:
                    values = {"next_attempt_at": now + backoff(row.attempts), "last_error": detail[:1000]}
                    retrying += 1
            await session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(**values))  # type: ignore[arg-type]
    return DeliveryReport(claimed=len(ids), sent=sent, retrying=retrying, dead=dead)
