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

from sqlalchemy import event, select
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import AuditEventRow, AuditHeadRow

GENESIS = "0" * 64
_QUEUE = "duly.audit.queue"


def event_hash(prev_hash: str, *, seq: int, at: datetime, actor_id: str | None, action: str,
               subject_type: str, subject_id: str, data: dict[str, Any]) -> str:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = json.dumps({"seq": seq, "at": stamp, "actor": actor_id, "action": action,
                       "subject": [subject_type, subject_id], "data": data},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


async def lock_chain(session: AsyncSession) -> None:
    """Wait for, and hold until commit, the chain's lock (tests use it to hold writers back)."""
    await session.run_sync(_locked_head)


async def append_audit(session: AsyncSession, *, at: datetime, actor_id: str | None, action: str,
                       subject_type: str, subject_id: str | int, data: dict[str, Any]) -> None:
    """Queue one event in the caller's transaction; it is chained and written when that commits."""
    session.sync_session.info.setdefault(_QUEUE, []).append(
        {"at": at, "actor_id": actor_id, "action": action, "subject_type": subject_type,
         "subject_id": str(subject_id), "data": data})


def _locked_head(session: Session) -> AuditHeadRow:
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: was the database migrated (duly db upgrade)?")
    return head


@event.listens_for(Session, "before_commit")
def _write_queued_events(session: Session) -> None:
    """Chain and write the transaction's events last, just before it commits.

    The chain's head is the one lock every writer shares; taken last, it is held only for the
    moment of the commit and never while waiting for another row, so it cannot be part of a deadlock
    (a decision holding a step and a sweep holding thresholds each waited for the other when the
    head was taken at the first event). The events commit with the change or not at all."""
    queued = session.info.pop(_QUEUE, None)
    if not queued:
        return
    head = _locked_head(session)
    for item in queued:
        seq = head.seq + 1
        digest = event_hash(head.hash, seq=seq, **item)
        session.add(AuditEventRow(seq=seq, prev_hash=head.hash, hash=digest, **item))
        head.seq, head.hash = seq, digest
    session.flush()


@event.listens_for(Session, "after_rollback")
def _forget_queued_events(session: Session) -> None:
    session.info.pop(_QUEUE, None)


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
