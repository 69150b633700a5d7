"""The audit trail: append-only and hash-chained.

Each event's hash is SHA-256 over the previous hash and the event's canonical JSON. Writers lock the
single `audit_head` row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already
serialises writers), so the chain has one order even with concurrent transactions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select
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


@dataclass(frozen=True)
class ChainBreak:
    """The first event at which the chain does not hold, and what that means."""

    seq: int
    at: datetime | None
    action: str | None
    kind: str  # edited | deleted | reordered | tail_deleted | head_tampered | inserted
    detail: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    """Events checked (up to the first break)."""
    head_seq: int
    head_hash: str
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


async def read_head(session: AsyncSession) -> AuditHeadRow:
    """The chain's head as committed (seq 0 and the genesis hash before the first event)."""
    head = await session.get(AuditHeadRow, 1, populate_existing=True)
    if head is None:
        raise RuntimeError("the audit_head row is missing: was the database migrated (duly db upgrade)?")
    return head


async def export_head(session: AsyncSession) -> dict[str, Any]:
    """The head as {seq, hash, at} (`at` in UTC ISO 8601, null before the first event), to keep elsewhere
    (on paper, in another system) and compare later with `duly audit verify --expect-head`."""
    head = await read_head(session)
    at = (await session.execute(select(AuditEventRow.at).where(AuditEventRow.seq == head.seq))).scalar_one_or_none()
    return {"seq": head.seq, "hash": head.hash, "at": at.astimezone(UTC).isoformat() if at else None}


async def verify_chain(session: AsyncSession, progress: Callable[[int], None] | None = None, *,
                       every: int = 100_000, batch: int = 2_000, after: tuple[int, str] = (0, GENESIS)) -> ChainReport:
    """Recompute the chain from the first event and report the first place where it breaks.

    Each event must follow the previous one without a gap in `seq`, name the previous event's hash as its
    `prev_hash`, and hash to its `hash`; the last event must be the one `audit_head` names. Rows are streamed
    in batches (a million events are never loaded at once) and `progress(n)` is called every `every` events.

    Meaning of a break: a content mismatch is an edited event; a gap is deleted events; a `prev_hash` that is
    not the previous event's hash is a reorder, an insertion, or a deletion with renumbering; a head beyond the
    last event is a deleted tail; a head that disagrees with the last event is a tampered head (or a rewritten
    chain whose head was not rewritten). A rewrite of the whole chain together with its head is found only by
    comparing with a head exported earlier (`duly audit head`, `duly audit verify --expect-head`).

    The head is read first and only events up to it are checked, so events committed meanwhile are not
    mistaken for tampering.

    `after` (seq, hash) starts past an event verified earlier (a checkpoint the caller has checked still
    holds): the next event must name that hash as its prev_hash, and `events` counts only the events checked."""
    head = await read_head(session)
    head_seq, head_hash = head.seq, head.hash
    columns = (AuditEventRow.seq, AuditEventRow.at, AuditEventRow.actor_id, AuditEventRow.action,
               AuditEventRow.subject_type, AuditEventRow.subject_id, AuditEventRow.data, AuditEventRow.prev_hash,
               AuditEventRow.hash)
    start_seq, start_hash = after
    query = (select(*columns).where(AuditEventRow.seq > start_seq, AuditEventRow.seq <= head_seq)  # type: ignore[operator]
             .order_by(AuditEventRow.seq).execution_options(yield_per=batch))  # type: ignore[arg-type]
    prev, expected, checked = start_hash, start_seq + 1, 0
    last: Any = None

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(events=checked, head_seq=head_seq, head_hash=head_hash, broken=broken)

    result = await session.stream(query)
    try:
        async for row in result:
            broken = _check(row, prev, expected)
            if broken is not None:
                return report(broken)
            prev, expected, checked, last = row.hash, expected + 1, checked + 1, row
            if progress is not None and checked % every == 0:
                progress(checked)
    finally:
        await result.close()
    last_seq = last.seq if last is not None else start_seq
    if last_seq < head_seq:
        missing = f"{last_seq + 1}" if last_seq + 1 == head_seq else f"{last_seq + 1}..{head_seq}"
        return report(ChainBreak(
            seq=last_seq, at=last.at if last else None, action=last.action if last else None, kind="tail_deleted",
            detail=f"the head names event {head_seq} but the chain ends at {last_seq}: "
                   f"event(s) {missing} after it were deleted"))
    if prev != head_hash:
        return report(ChainBreak(
            seq=last_seq, at=last.at if last else None, action=last.action if last else None, kind="head_tampered",
            detail=f"the head's hash {head_hash[:16]}… is not the last event's hash {prev[:16]}…: "
                   "the head row was altered"))
    beyond = (await session.execute(select(func.max(AuditEventRow.seq)))).scalar_one_or_none() or 0
    if beyond > head_seq and beyond > (await read_head(session)).seq:
        return report(ChainBreak(
            seq=beyond, at=None, action=None, kind="inserted",
            detail=f"events up to {beyond} exist beyond the head at {head_seq}: they were inserted outside duly"))
    return report(None)


def _check(row: Any, prev: str, expected: int) -> ChainBreak | None:
    def broken(kind: str, detail: str) -> ChainBreak:
        return ChainBreak(seq=row.seq, at=row.at, action=row.action, kind=kind, detail=detail)

    if row.seq > expected:
        missing = f"{expected}" if expected + 1 == row.seq else f"{expected}..{row.seq - 1}"
        return broken("deleted", f"event(s) {missing} before it are missing: they were deleted")
    if row.prev_hash != prev:
        return broken("reordered", f"its prev_hash {row.prev_hash[:16]}… is not the hash of event {expected - 1} "
                                   f"({prev[:16]}…): events were reordered, inserted, or deleted and renumbered")
    digest = event_hash(prev, seq=row.seq, at=row.at, actor_id=row.actor_id, action=row.action,
                        subject_type=row.subject_type, subject_id=row.subject_id, data=row.data)
    if digest != row.hash:
        return broken("edited", "its content does not match its hash: the event was edited")
    return None


async def first_broken_event(session: AsyncSession) -> int | None:
    """The seq of the first event whose hash or link does not match, or None if the chain is whole."""
    broken = (await verify_chain(session)).broken
    return broken.seq if broken is not None else None
