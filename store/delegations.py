"""Delegations (代理审批): `from_id` lets `to_id` decide in their place for a while, optionally only for some
policies. Stored rows, read by the core as `policies.chain.Delegation`.

Rules checked when one is created (each a precise InvalidInputError naming the field):
- `ends` is after `starts`, and at most a year after it; `ends` is in the future;
- nobody delegates to themselves, or to a person who is not active (or does not exist);
- the policies named exist (as approval policies);
- no overlapping duplicate: an unrevoked delegation between the same two people whose period overlaps and
  whose policies overlap (an empty list means every policy) is refused.
A delegation is revoked, never deleted (the delegator or an administrator); each change is audited.
A delegation never lets anyone decide their own request: the core refuses that whatever is stored here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import Delegation
from store.audit import append_audit
from store.errors import ForbiddenError, InvalidInputError, NotFoundError
from store.notices import local_iso, to_local
from store.outbox import queue_message
from store.runtime import Runtime
from store.tables import DelegationRow, DepartmentRow, PersonRow

MAX_LENGTH = timedelta(days=366)


def to_core(row: DelegationRow) -> Delegation:
    return Delegation.model_validate({"from": row.from_id, "to": row.to_id, "starts": row.starts, "ends": row.ends,
                                      "policies": tuple(row.policies)})


async def active_delegations(session: AsyncSession, *, to_id: str, now: datetime) -> list[Delegation]:
    """Delegations to `to_id` in force at `now` (not revoked), as the core reads them."""
    rows = (await session.execute(select(DelegationRow).where(
        DelegationRow.to_id == to_id, DelegationRow.revoked_at.is_(None),  # type: ignore[union-attr]
        DelegationRow.starts <= now, DelegationRow.ends > now))).scalars()  # type: ignore[arg-type]
    return [to_core(r) for r in rows]


def delegators(delegations: Iterable[Delegation], *, policy: str, now: datetime) -> set[str]:
    """The people whose place the holder of these delegations may take on a request of `policy`."""
    return {d.from_ for d in delegations if d.covers(policy=policy, at=now)}


async def create_delegation(session: AsyncSession, runtime: Runtime, *, from_id: str, to_id: str, starts: datetime,
                            ends: datetime, policies: Sequence[str], known_policies: Iterable[str],
                            reason: str | None, created_by: str, now: datetime) -> DelegationRow:
    """Store a delegation (the rules in the module docstring), audit it and tell the delegate (`delegated`,
    event key `delegation:<id>:created`), all in the caller's transaction."""
    problems: dict[str, str] = {}
    if ends <= starts:
        problems["ends"] = "must be after starts"
    elif ends - starts > MAX_LENGTH:
        problems["ends"] = "a delegation lasts at most a year (366 days) from starts"
    elif ends <= now:
        problems["ends"] = "must be in the future"
    if from_id == to_id:
        problems["to"] = "nobody delegates to themselves"
    found = {p.id: p for p in (await session.execute(select(PersonRow).where(
        PersonRow.id.in_({from_id, to_id})))).scalars()}  # type: ignore[attr-defined]
    if from_id not in found:
        problems["from"] = f"no person {from_id!r}"
    if "to" not in problems and (to_id not in found or not found[to_id].active):
        problems["to"] = f"{to_id!r} is not an active person of the organisation"
    known = set(known_policies)
    unknown = [p for p in policies if p not in known]
    if unknown:
        problems["policies"] = f"no approval policy {', '.join(map(repr, unknown))}"
    if len(set(policies)) != len(policies):
        problems["policies"] = "a policy is listed twice"
    if problems:
        raise InvalidInputError("the delegation is not valid", problems)
    clash = await _overlapping(session, from_id=from_id, to_id=to_id, starts=starts, ends=ends, policies=policies)
    if clash is not None:
        raise InvalidInputError("an overlapping delegation between the same people exists",
                                {"starts": f"overlaps delegation {clash.id} ({clash.starts.isoformat()} – "
                                           f"{clash.ends.isoformat()}); revoke it first"})
    row = DelegationRow(from_id=from_id, to_id=to_id, starts=starts, ends=ends, policies=list(policies),
                        reason=reason, created_by=created_by, created_at=now)
    session.add(row)
    await session.flush()
    await append_audit(session, at=now, actor_id=created_by, action="delegation.created", subject_type="delegation",
                       subject_id=row.id or 0,
                       data={"from": from_id, "to": to_id, "starts": starts.isoformat(), "ends": ends.isoformat(),
                             "policies": list(policies), "reason": reason})
    await _notify_delegate(session, runtime, row, found[from_id], found[to_id], now=now)
    return row


async def _notify_delegate(session: AsyncSession, runtime: Runtime, row: DelegationRow, giver: PersonRow,
                           delegate: PersonRow, *, now: datetime) -> None:
    department = await session.get(DepartmentRow, giver.department_code)
    tz = runtime.timezone
    ends = to_local(row.ends, tz)
    assert ends is not None
    titles = []
    for policy_id in row.policies:
        try:
            titles.append(runtime.registry.current_approval(policy_id)[1].title)
        except LookupError:  # checked above against the known policies; a title is only for reading
            titles.append(policy_id)
    await queue_message(session, event_key=f"delegation:{row.id}:created", event="delegated", recipient=delegate,
                        now=now,
                        context={"delegation_id": row.id, "from_name": giver.name,
                                 "from_department": department.name if department else "",
                                 "starts_at": local_iso(row.starts, tz), "ends_at": ends.isoformat(),
                                 # `ends` is excluded: a delegation ending at 00:00 covers the day before
                                 "last_day": ends.subtract(microseconds=1).date().isoformat(),
                                 "policies": titles, "reason": row.reason,
                                 "link": f"{runtime.public_url}/inbox"})


async def revoke_delegation(session: AsyncSession, *, delegation_id: int, person: PersonRow,
                            now: datetime) -> DelegationRow:
    """Revoke by the delegator or an administrator; the delegate (who sees it) gets 403, anyone else 404."""
    row = await session.get(DelegationRow, delegation_id, with_for_update=True)
    admin = "admin" in person.roles
    if row is None or not (admin or row.from_id == person.id or row.to_id == person.id):
        raise NotFoundError(f"no delegation {delegation_id}")
    if not admin and row.from_id != person.id:
        raise ForbiddenError("only the delegator or an administrator may revoke a delegation")
    if row.revoked_at is not None:
        return row
    row.revoked_at = now
    session.add(row)
    await append_audit(session, at=now, actor_id=person.id, action="delegation.revoked", subject_type="delegation",
                       subject_id=row.id or 0, data={"from": row.from_id, "to": row.to_id})
    return row


async def list_delegations(session: AsyncSession, *, person: PersonRow, direction: str, include_revoked: bool,
                           limit: int, offset: int) -> tuple[int, list[DelegationRow]]:
    """Delegations given (`from`) or received (`to`) by the person, or both; an administrator with
    direction `all` sees every delegation."""
    query = select(DelegationRow)
    if direction == "given":
        query = query.where(DelegationRow.from_id == person.id)
    elif direction == "received":
        query = query.where(DelegationRow.to_id == person.id)
    elif not (direction == "all" and "admin" in person.roles):
        query = query.where(or_(DelegationRow.from_id == person.id, DelegationRow.to_id == person.id))
    if not include_revoked:
        query = query.where(DelegationRow.revoked_at.is_(None))  # type: ignore[union-attr]
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(DelegationRow.starts.desc(), DelegationRow.id.desc())  # type: ignore[attr-defined]
                                  .limit(limit).offset(offset))).scalars()
    return total, list(rows)


async def _overlapping(session: AsyncSession, *, from_id: str, to_id: str, starts: datetime, ends: datetime,
                       policies: Sequence[str]) -> DelegationRow | None:
    rows = (await session.execute(select(DelegationRow).where(
        DelegationRow.from_id == from_id, DelegationRow.to_id == to_id,
        DelegationRow.revoked_at.is_(None),  # type: ignore[union-attr]
        DelegationRow.starts < ends, DelegationRow.ends > starts))).scalars()  # type: ignore[arg-type]
    for row in rows:
        if not row.policies or not policies or set(row.policies) & set(policies):
            return row
    return None
