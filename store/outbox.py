"""Queue notifications in the caller's transaction; `deliver` sends them later.

`event_key` is unique: one row per (event, recipient), so a retried transaction or a re-fired
threshold cannot queue the same message twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import OutboxRow, PersonRow


async def queue_message(session: AsyncSession, *, event_key: str, event: str, recipient: PersonRow,
                  context: dict[str, Any], now: datetime) -> OutboxRow:
    row = OutboxRow(event_key=f"{event_key}:{recipient.id}", event=event, recipient_id=recipient.id,
                    to_address=recipient.email, lang=recipient.lang, context=context,
                    next_attempt_at=now, created_at=now)
    session.add(row)
    return row


async def queue_once(session: AsyncSession, *, event_key: str, event: str, recipient: PersonRow,
                     context: dict[str, Any], now: datetime) -> bool:
    """Queue the message unless one with this key is already queued or sent to the recipient (a digest or a
    report re-run the same day); returns whether it was queued."""
    key = f"{event_key}:{recipient.id}"
    if (await session.execute(select(OutboxRow.id).where(OutboxRow.event_key == key))).first() is not None:
        return False
    await queue_message(session, event_key=event_key, event=event, recipient=recipient, context=context, now=now)
    return True
