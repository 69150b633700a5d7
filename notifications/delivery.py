"""Drain the outbox: claim due rows, send them (e-mail over SMTP, chat-bot webhooks), record the outcome.

Claiming moves a row's `next_attempt_at` one lease ahead before anything is sent, in its own short
transaction, so two deliverers never send the same row; a crash between the server's 250 and the
"sent" mark re-sends the row once after the lease, with the same Message-ID, so the receiver can
recognise it. Failures back off exponentially (with jitter) until `max_attempts`, then the row is
dead-lettered; a permanent (5xx) answer dead-letters at once. Rows `held` for a person's digest are not
sent here (store.digests folds them into the digest).

Rate limits count what was sent in the last minute, in the database, so they hold across deliverers: at most
`email_per_minute` e-mails (a hospital relay is not flooded), and at most `chat_per_hook_per_minute` messages
per chat hook (WeCom and DingTalk robots refuse more than 20 a minute). A row over the limit simply stays
pending, costing no attempt, until the next run.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications.chat import ChatHook, ChatMessage, send_chat_batch
from notifications.email import build_email, render
from notifications.smtp import SendOutcome, SmtpSettings, send_batch
from store.runtime import Runtime
from store.tables import ChatHookRow, OutboxRow, PersonRow

LEASE = timedelta(minutes=5)
MINUTE = timedelta(minutes=1)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliverySettings:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    email_per_minute: int = 0  # 0: no limit
    chat_per_hook_per_minute: int = 20
    chat_timeout_seconds: float = 10.0
    max_attempts: int = 8


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int
    sent: int
    retrying: int
    dead: int

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.claimed + other.claimed, self.sent + other.sent, self.retrying + other.retrying,
                              self.dead + other.dead)


NOTHING = DeliveryReport(0, 0, 0, 0)


def message_id_for(row: OutboxRow) -> str:
    """Stable per (event, recipient): the same row always carries the same Message-ID."""
    digest = hashlib.sha256(row.event_key.encode()).hexdigest()[:24]
    return f"duly.{row.id}.{digest}@duly.local"


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """30 s, 60 s, 120 s … capped at one hour, with ±20 % jitter so retries do not arrive in step."""
    base = min(30 * 2 ** max(attempts - 1, 0), 3600)
    jitter = (rng or random).uniform(0.8, 1.2)
    return timedelta(seconds=base * jitter)


async def claim(session: AsyncSession, runtime: Runtime, *, now: datetime, limit: int, channel: str = "email",
                hook_id: int | None = None) -> list[int]:
    """Lease up to `limit` due rows of `channel` (and of one chat hook) to this deliverer."""
    query = (select(OutboxRow.id).where(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now,
                                        OutboxRow.channel == channel)
             .order_by(OutboxRow.next_attempt_at, OutboxRow.id).limit(limit))  # type: ignore[arg-type]
    if hook_id is not None:
        query = query.where(OutboxRow.hook_id == hook_id)
    if not runtime.sqlite:
        query = query.with_for_update(skip_locked=True)
    ids = list((await session.execute(query)).scalars())
    if ids:
        await session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
                              .values(next_attempt_at=now + LEASE, attempts=OutboxRow.attempts + 1))
    return ids


async def deliver_due(runtime: Runtime, settings: DeliverySettings, *, now: datetime,
                      batch_size: int = 100) -> DeliveryReport:
    """Send up to `batch_size` due e-mails over one SMTP connection, and up to `batch_size` due chat messages."""
    return (await _deliver_email(runtime, settings, now=now, limit=batch_size)
            + await _deliver_chat(runtime, settings, now=now, limit=batch_size))


async def _deliver_email(runtime: Runtime, settings: DeliverySettings, *, now: datetime, limit: int
                         ) -> DeliveryReport:
    async with runtime.write() as session:
        if settings.email_per_minute:
            limit = min(limit, settings.email_per_minute - await _sent_since(session, now - MINUTE, "email"))
        ids = await claim(session, runtime, now=now, limit=limit) if limit > 0 else []
    if not ids:
        return NOTHING
    async with runtime.sessions() as session:
        rows = await _rows(session, ids)
        names = {p.id: p.name for p in (await session.execute(select(PersonRow).where(
            PersonRow.id.in_({r.recipient_id for r in rows})))).scalars()}  # type: ignore[attr-defined]
    smtp = settings.smtp
    messages, sendable, failures = [], [], {}
    for row in rows:
        try:
            rendered = render(row.event, row.context, lang=row.lang)
            messages.append(build_email(rendered, sender=smtp.sender, to_address=row.to_address,
                                        to_name=names.get(row.recipient_id, ""), message_id=message_id_for(row),
                                        date=now))
            sendable.append(row)
        except ValueError as exc:  # a template or address problem will not fix itself: dead-letter
            failures[row.id] = SendOutcome(ok=False, permanent=True, detail=f"cannot build the message: {exc}")
    outcomes = await send_batch(messages, smtp) if messages else []
    failures.update({row.id: outcome for row, outcome in zip(sendable, outcomes, strict=True) if not outcome.ok})
    return await _record(runtime, rows, failures, settings, now=now)


async def _deliver_chat(runtime: Runtime, settings: DeliverySettings, *, now: datetime, limit: int
                        ) -> DeliveryReport:
    """Chat rows hook by hook, each hook within its per-minute budget, all over one HTTP client."""
    async with runtime.write() as session:
        due_hooks = list((await session.execute(select(OutboxRow.hook_id).distinct().where(
            OutboxRow.state == "pending", OutboxRow.channel == "chat", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.hook_id))).scalars())  # type: ignore[arg-type]
        if not due_hooks:
            return NOTHING
        sent = dict((await session.execute(select(OutboxRow.hook_id, func.count()).where(
            OutboxRow.channel == "chat", OutboxRow.sent_at > now - MINUTE,  # type: ignore[operator]
            OutboxRow.hook_id.in_(due_hooks)).group_by(OutboxRow.hook_id))).all())  # type: ignore[union-attr]
        ids: list[int] = []
        for hook_id in due_hooks:
            budget = min(settings.chat_per_hook_per_minute - sent.get(hook_id, 0), limit - len(ids))
            if budget > 0:
                ids += await claim(session, runtime, now=now, limit=budget, channel="chat", hook_id=hook_id)
    if not ids:
        return NOTHING
    async with runtime.sessions() as session:
        rows = await _rows(session, ids)
        hooks = {h.id: h for h in (await session.execute(select(ChatHookRow).where(
            ChatHookRow.id.in_({r.hook_id for r in rows})))).scalars()}  # type: ignore[union-attr]
    items, sendable, failures = [], [], {}
    for row in rows:
        hook = hooks.get(row.hook_id)
        if hook is None or not hook.active:
            failures[row.id] = SendOutcome(ok=False, permanent=True,
                                           detail=f"chat hook #{row.hook_id} was switched off or removed")
            continue
        try:
            rendered = render(row.event, row.context, lang=row.lang)
            items.append((ChatHook(kind=hook.kind, url=hook.url, secret=hook.secret),  # type: ignore[arg-type]
                          ChatMessage(title=rendered.subject, markdown=rendered.markdown,
                                      link=str(row.context.get("link", "")))))
            sendable.append(row)
        except ValueError as exc:
            failures[row.id] = SendOutcome(ok=False, permanent=True, detail=f"cannot build the message: {exc}")
    outcomes = (await send_chat_batch(items, now=now, timeout_seconds=settings.chat_timeout_seconds)
                if items else [])
    failures.update({row.id: outcome for row, outcome in zip(sendable, outcomes, strict=True) if not outcome.ok})
    return await _record(runtime, rows, failures, settings, now=now)


async def _rows(session: AsyncSession, ids: list[int]) -> list[OutboxRow]:
    return list((await session.execute(select(OutboxRow).where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
                                       .order_by(OutboxRow.id))).scalars())


async def _sent_since(session: AsyncSession, since: datetime, channel: str) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxRow).where(
        OutboxRow.channel == channel, OutboxRow.sent_at > since))).scalar_one()  # type: ignore[operator]


async def _record(runtime: Runtime, rows: list[OutboxRow], failures: dict[int | None, SendOutcome],
                  settings: DeliverySettings, *, now: datetime) -> DeliveryReport:
    sent = retrying = dead = 0
    async with runtime.write() as session:
        for row in rows:
            failure = failures.get(row.id)
            if failure is None:
                values: dict[str, object] = {"state": "sent", "sent_at": now, "last_error": None}
                sent += 1
            elif failure.permanent or row.attempts >= settings.max_attempts:  # attempts counts this one
                values = {"state": "dead", "last_error": failure.detail[:1000]}
                dead += 1
                _log.warning("outbox #%s (%s, %s) dead-lettered after %d attempt(s): %s", row.id, row.event,
                             row.channel, row.attempts, failure.detail)
            else:
                values = {"next_attempt_at": now + backoff(row.attempts), "last_error": failure.detail[:1000]}
                retrying += 1
            await session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(**values))  # type: ignore[arg-type]
    return DeliveryReport(claimed=len(rows), sent=sent, retrying=retrying, dead=dead)
