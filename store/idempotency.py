"""Stored answers of state-changing calls under their Idempotency-Key (see api/idempotency.py).

Keys are kept seven days: `purge_idempotency_keys` is for the housekeeping flow. Lookups do not look at a
key's age; a key is answered from storage until it is purged, and may be used afresh after that.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import IdempotencyRow

RETENTION = timedelta(days=7)


async def find_idempotency_key(session: AsyncSession, person_id: str, key: str) -> IdempotencyRow | None:
    """The answer stored under this person's key, if any."""
    return await session.get(IdempotencyRow, (person_id, key), populate_existing=True)


async def purge_idempotency_keys(session: AsyncSession, now: datetime) -> int:
    """Delete keys stored more than RETENTION before `now`; return how many were deleted."""
    result = await session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now - RETENTION))  # type: ignore[arg-type]
    return result.rowcount or 0
