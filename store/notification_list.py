"""The in-app notification list (通知): a person reads their own rows, newest first, and marks them read.

Rows are written by the fan-out of `store.outbox.queue_message`; here they are only read and marked. Every
function takes the reader's id and touches that person's rows only: another person's notification reads
like one that does not exist (NotFoundError). Marking read is the reader's own bookkeeping, not a change to
the institution's records, so it is not audited (the audit trail would otherwise grow with every click).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.errors import NotFoundError
from store.tables import NotificationRow


def _unread(person_id: str):  # type: ignore[no-untyped-def]
    return (NotificationRow.person_id == person_id) & NotificationRow.read_at.is_(None)  # type: ignore[union-attr]


async def unread_count(session: AsyncSession, person_id: str) -> int:
    query = select(func.count()).select_from(NotificationRow).where(_unread(person_id))
    return (await session.execute(query)).scalar_one()


async def list_notifications(session: AsyncSession, *, person_id: str, unread_only: bool = False, limit: int = 50,
                             before: int | None = None) -> list[NotificationRow]:
    """The person's notifications, newest first; `before` (an id) pages on from the last one seen."""
    query = select(NotificationRow).where(NotificationRow.person_id == person_id)
    if unread_only:
        query = query.where(NotificationRow.read_at.is_(None))  # type: ignore[union-attr]
    if before is not None:
        query = query.where(NotificationRow.id < before)  # type: ignore[operator]
    query = query.order_by(NotificationRow.id.desc()).limit(limit)  # type: ignore[union-attr]
    return list((await session.execute(query)).scalars())


async def mark_read(session: AsyncSession, *, notification_id: int, person_id: str,
                    now: datetime) -> NotificationRow:
    """Mark one of the person's notifications read; one read already keeps its first `read_at`."""
    row = await session.get(NotificationRow, notification_id)
    if row is None or row.person_id != person_id:
        raise NotFoundError(f"no notification {notification_id}")
    if row.read_at is None:
        row.read_at = now
        session.add(row)
    return row


async def mark_all_read(session: AsyncSession, *, person_id: str, now: datetime) -> int:
    """Mark every unread notification of the person read; returns how many were unread."""
    result = await session.execute(update(NotificationRow).where(_unread(person_id)).values(read_at=now))
    return result.rowcount or 0  # type: ignore[attr-defined]
