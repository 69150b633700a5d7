"""The audit trail: append-only and hash-chained.

Each event's hash is SHA-256 over the previous hash and the event's canonical JSON. Writers lock the
single `audit_head` row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
serialises writers), so the chain has one order even with concurrent transactions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import AuditEventRow, AuditHeadRow

GENESIS = "0" * 64


def event_hash(prev_hash: str, *, seq: int, at: datetime, actor_id: str | None, action: str,
               subject_type: str, subject_id: str, data: dict[str, Any]) -> str:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = json.dumps({"seq": seq, "at": stamp, "actor": actor_id, "action": action,
                       "subject": [subject_type, subject_id], "data": data},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


async def append_audit(session: AsyncSession, *, at: datetime, actor_id: str | None, action: str,
                       subject_type: str, subject_id: str | int, data: dict[str, Any]) -> AuditEventRow:
    """Append one event in the caller's transaction."""
    head = (await session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update())).scalar_one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: was the database migrated (duly db upgrade)?")
    seq = head.seq + 1
    digest = event_hash(head.hash, seq=seq, at=at, actor_id=actor_id, action=action,
                        subject_type=subject_type, subject_id=str(subject_id), data=data)
    event = AuditEventRow(seq=seq, at=at, actor_id=actor_id, action=action, subject_type=subject_type,
                          subject_id=str(subject_id), data=data, prev_hash=head.hash, hash=digest)
    session.add(event)
    head.seq, head.hash = seq, digest
    return event


async def first_broken_event(session: AsyncSession) -> int | None:
    """The seq of the first event whose hash or link does not match, or None if the chain is whole."""
    prev, expected_seq = GENESIS, 1
    rows = await session.stream_scalars(select(AuditEventRow).order_by(AuditEventRow.seq))
    async for row in rows:
        digest = event_hash(prev, seq=row.seq, at=row.at, actor_id=row.actor_id, action=row.action,
                            subject_type=row.subject_type, subject_id=row.subject_id, data=row.data)
        if row.seq != expected_seq or row.prev_hash != prev or row.hash != digest:
            return row.seq or expected_seq
        prev, expected_seq = row.hash, expected_seq + 1
    return None
