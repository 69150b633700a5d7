"""The outbox as administrators see it: dead letters (and rows in any other state) with their recipient and
error, counts per state and channel, and sending a dead letter again.

A resend keeps the row: same `event_key`, hence the same Message-ID, so a receiver that did get the first
copy can recognise the second. It moves the row from `dead` to `pending` with its attempts reset and its
last error kept (the next failure replaces it), and is audited as `outbox.resent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import ConflictError, NotFoundError
from store.tables import ChatHookRow, OutboxRow, PersonRow

STATES = ("pending", "sent", "dead", "held", "digested")
CHANNELS = ("email", "chat")


@dataclass(frozen=True)
class OutboxEntry:
    row: OutboxRow
    recipient_name: str
    hook: ChatHookRow | None


async def list_outbox(session: AsyncSession, *, state: str = "dead", channel: str | None = None, limit: int = 50,
                      before: int | None = None) -> list[OutboxEntry]:
    """Rows in `state` (and `channel`), newest first; `before` (an id) pages on."""
    query = _entries().where(OutboxRow.state == state)
    if channel is not None:
        query = query.where(OutboxRow.channel == channel)
    if before is not None:
        query = query.where(OutboxRow.id < before)  # type: ignore[operator]
    rows = await session.execute(query.order_by(OutboxRow.id.desc()).limit(limit))  # type: ignore[union-attr]
    return [OutboxEntry(row=row, recipient_name=name or row.recipient_id, hook=hook) for row, name, hook in rows]


async def get_entry(session: AsyncSession, outbox_id: int) -> OutboxEntry:
    found = (await session.execute(_entries().where(OutboxRow.id == outbox_id))).first()
    if found is None:
        raise NotFoundError(f"no outbox message {outbox_id}")
    row, name, hook = found
    return OutboxEntry(row=row, recipient_name=name or row.recipient_id, hook=hook)


def _entries():  # type: ignore[no-untyped-def]
    return (select(OutboxRow, PersonRow.name, ChatHookRow)
            .join(PersonRow, PersonRow.id == OutboxRow.recipient_id, isouter=True)  # type: ignore[arg-type]
            .join(ChatHookRow, ChatHookRow.id == OutboxRow.hook_id, isouter=True))  # type: ignore[arg-type]


async def outbox_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(state, channel) → how many rows."""
    rows = await session.execute(select(OutboxRow.state, OutboxRow.channel, func.count())
                                 .group_by(OutboxRow.state, OutboxRow.channel))
    return {(state, channel): count for state, channel, count in rows}


async def resend(session: AsyncSession, *, outbox_id: int, actor_id: str, now: datetime) -> OutboxRow:
    """Send a dead letter again: 404 for no such row, 409 naming the state for a row that is not dead (or a
    chat message whose hook was deleted: there is nowhere to send it)."""
    row = await session.get(OutboxRow, outbox_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no outbox message {outbox_id}")
    if row.state != "dead":
        raise ConflictError(f"outbox message {outbox_id} is {row.state}, not dead: only dead letters are resent")
    if row.channel == "chat" and row.hook_id is None:
        raise ConflictError(f"outbox message {outbox_id} went to a chat hook that was deleted: nowhere to resend it")
    was = {"event": row.event, "channel": row.channel, "recipient": row.recipient_id, "attempts": row.attempts,
           "last_error": row.last_error}
    # compare-and-set: a concurrent resend (or anything else moving the row) wins once
    moved = await session.execute(update(OutboxRow).where(OutboxRow.id == outbox_id, OutboxRow.state == "dead")
                                  .values(state="pending", attempts=0, next_attempt_at=now))
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise ConflictError(f"outbox message {outbox_id} changed meanwhile; reload and try again")
    await append_audit(session, at=now, actor_id=actor_id, action="outbox.resent", subject_type="outbox",
                       subject_id=outbox_id, data=was)
    await session.refresh(row)
    return row
