"""Housekeeping: purge rows nobody needs any more, and check the audit chain (flows/housekeeping.py).

Purges (each deletes in the caller's transaction and returns how many rows went):
- signed-in sessions that ended: expired, revoked, or unused for longer than the idle limit;
- API tokens that expired or were revoked more than TOKEN_RETENTION ago (until then their owner still sees
  them in the token list, to know what happened);
- failed sign-ins older than LOGIN_FAILURE_RETENTION (rate limiting looks back a day at most);
- idempotency keys: store.idempotency.purge_idempotency_keys (seven days).

The audit chain check: a daily run verifies only the events after the last good checkpoint, after checking
that the checkpoint's event still holds (it exists, still has the hash seen then, and its content still hashes
to it); a full verification from the first event runs on demand and when the last full one is older than
`full_every`. Every check is recorded as an AuditCheckpointRow (the head it saw, the events it checked, ok or
the problem); a full check is one whose `events` equals its `seq`. A break is told to the administrators once
(outbox key `audit_broken:<seq>:<kind>`), with an `audit.chain_broken` event, however often it is found again.
An incremental check cannot see an edit of an event before its checkpoint: that is what the periodic full
check is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import ChainBreak, append_audit, event_hash, read_head, verify_chain
from store.notices import local_iso
from store.outbox import queue_once
from store.tables import (
    ApiTokenRow,
    AuditCheckpointRow,
    AuditEventRow,
    AuthSessionRow,
    LoginFailureRow,
    PersonRow,
)

TOKEN_RETENTION = timedelta(days=90)
LOGIN_FAILURE_RETENTION = timedelta(days=30)
FULL_CHECK_EVERY = timedelta(days=7)


async def purge_sessions(session: AsyncSession, *, now: datetime, idle: timedelta | None) -> int:
    """Delete sessions that can no longer sign anybody in (expired, revoked, or idle past `idle`)."""
    ended = [AuthSessionRow.expires_at <= now, AuthSessionRow.revoked_at.is_not(None)]  # type: ignore[union-attr,operator]
    if idle is not None:
        ended.append(AuthSessionRow.last_seen_at <= now - idle)  # type: ignore[operator]
    result = await session.execute(delete(AuthSessionRow).where(or_(*ended)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_api_tokens(session: AsyncSession, *, now: datetime, retention: timedelta = TOKEN_RETENTION) -> int:
    """Delete tokens expired or revoked more than `retention` ago."""
    cutoff = now - retention
    result = await session.execute(delete(ApiTokenRow).where(or_(
        ApiTokenRow.expires_at <= cutoff, ApiTokenRow.revoked_at <= cutoff)))  # type: ignore[operator]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_login_failures(session: AsyncSession, *, now: datetime,
                               retention: timedelta = LOGIN_FAILURE_RETENTION) -> int:
    result = await session.execute(delete(LoginFailureRow).where(LoginFailureRow.at < now - retention))  # type: ignore[operator]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- the audit chain ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainCheck:
    full: bool
    head_seq: int
    head_hash: str
    events: int
    """Events verified (from the first event, or after `start`)."""
    start: AuditCheckpointRow | None
    """The good checkpoint the check started from (None: a full check)."""
    broken: ChainBreak | None

    @property
    def problem(self) -> str | None:
        if self.broken is None:
            return None
        return f"{self.broken.kind} at event {self.broken.seq}: {self.broken.detail}"[:1000]


async def last_checkpoint(session: AsyncSession, *, full_only: bool = False) -> AuditCheckpointRow | None:
    """The latest good checkpoint (with `full_only`, the latest good full check)."""
    query = select(AuditCheckpointRow).where(AuditCheckpointRow.ok)
    if full_only:
        query = query.where(AuditCheckpointRow.events == AuditCheckpointRow.seq)
    return (await session.execute(query.order_by(AuditCheckpointRow.id.desc()).limit(1))).scalar_one_or_none()  # type: ignore[union-attr]


async def check_chain(session: AsyncSession, *, now: datetime, full: bool = False,
                      full_every: timedelta | None = FULL_CHECK_EVERY) -> ChainCheck:
    """Verify the chain (module docstring); reads only. Full when asked, when there is no good checkpoint,
    or when the last good full check is older than `full_every` (None: only when asked)."""
    start = None if full else await last_checkpoint(session)
    if start is not None and full_every is not None:
        last_full = await last_checkpoint(session, full_only=True)
        if last_full is None or last_full.at <= now - full_every:
            start = None
    if start is not None:
        broken = await checkpoint_problem(session, start)
        if broken is not None:
            head = await read_head(session)
            return ChainCheck(False, head.seq, head.hash, 0, start, broken)
        report = await verify_chain(session, after=(start.seq, start.hash))
    else:
        report = await verify_chain(session)
    return ChainCheck(start is None, report.head_seq, report.head_hash, report.events, start, report.broken)


async def checkpoint_problem(session: AsyncSession, checkpoint: AuditCheckpointRow) -> ChainBreak | None:
    """Does the checkpoint's event still stand as it was verified? (None: yes.)"""
    head = await read_head(session)
    when = checkpoint.at.isoformat()
    if head.seq < checkpoint.seq:
        return ChainBreak(seq=head.seq, at=None, action=None, kind="tail_deleted",
                          detail=f"the head names event {head.seq}, but event {checkpoint.seq} was verified at "
                                 f"{when}: the events after {head.seq} were deleted and the head moved back")
    if checkpoint.seq == 0:
        return None
    row = await session.get(AuditEventRow, checkpoint.seq, populate_existing=True)
    if row is None:
        return ChainBreak(seq=checkpoint.seq, at=None, action=None, kind="deleted",
                          detail=f"event {checkpoint.seq}, verified at {when}, is missing: it was deleted")
    if row.hash != checkpoint.hash:
        return ChainBreak(seq=row.seq or 0, at=row.at, action=row.action, kind="rewritten",
                          detail=f"its hash {row.hash[:16]}… is not the {checkpoint.hash[:16]}… verified at {when}: "
                                 "the chain was rewritten up to here")
    digest = event_hash(row.prev_hash, seq=row.seq or 0, at=row.at, actor_id=row.actor_id, action=row.action,
                        subject_type=row.subject_type, subject_id=row.subject_id, data=row.data)
    if digest != row.hash:
        return ChainBreak(seq=row.seq or 0, at=row.at, action=row.action, kind="edited",
                          detail="its content does not match its hash: the event was edited")
    return None


async def record_check(session: AsyncSession, check: ChainCheck, *, now: datetime, public_url: str,
                       tz: str) -> tuple[AuditCheckpointRow, int]:
    """Store the check as a checkpoint; for a break, tell every active administrator once (module docstring).
    Returns the checkpoint and how many administrators were newly told."""
    checkpoint = AuditCheckpointRow(at=now, seq=check.head_seq, hash=check.head_hash, events=check.events,
                                    ok=check.broken is None, problem=check.problem)
    session.add(checkpoint)
    if check.broken is None:
        return checkpoint, 0
    broken = check.broken
    admins = [p for p in (await session.execute(select(PersonRow).where(PersonRow.active))).scalars()
              if "admin" in p.roles]
    context = {"problem": check.problem, "kind": broken.kind, "seq": broken.seq, "event_action": broken.action,
               "event_at": local_iso(broken.at, tz), "head_seq": check.head_seq, "full": check.full,
               "found_at": local_iso(now, tz),
               "checkpoint_seq": check.start.seq if check.start else None,
               "checkpoint_at": local_iso(check.start.at, tz) if check.start else None,
               "link": f"{public_url}/api/audit/head"}
    told = 0
    for admin in sorted(admins, key=lambda p: p.id):
        told += await queue_once(session, event_key=f"audit_broken:{broken.seq}:{broken.kind}", event="audit_broken",
                                 recipient=admin, context=context, now=now)
    if told:
        await append_audit(session, at=now, actor_id=None, action="audit.chain_broken", subject_type="audit",
                           subject_id=broken.seq, data={"kind": broken.kind, "detail": broken.detail,
                                                        "head_seq": check.head_seq, "full": check.full,
                                                        "told": sorted(a.id for a in admins)})
    return checkpoint, told
