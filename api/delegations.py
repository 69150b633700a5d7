"""Delegations (代理审批): I let someone decide in my place for a while, for every policy or some.

`POST /api/delegations` creates one from me (an administrator may name `from`); `GET /api/delegations` lists
those I gave and received (an administrator: `direction=all` lists everyone's); `DELETE
/api/delegations/{id}` revokes one (the delegator or an administrator). A delegation never lets the delegate
decide their own request, and never routes a decision to the requester: the core refuses both.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import DelegationCreate, DelegationList, DelegationPublic, RowId
from config import clock
from store.delegations import create_delegation, list_delegations, revoke_delegation
from store.errors import ForbiddenError
from store.notices import to_local
from store.tables import DelegationRow

router = APIRouter(prefix="/api", tags=["delegations"])


def _public(row: DelegationRow, tz: str) -> DelegationPublic:
    now = clock.now()
    return DelegationPublic(id=row.id or 0, from_=row.from_id, to=row.to_id, starts=to_local(row.starts, tz),  # type: ignore[arg-type]
                            ends=to_local(row.ends, tz), policies=row.policies, reason=row.reason,  # type: ignore[arg-type]
                            created_by=row.created_by, created_at=to_local(row.created_at, tz),  # type: ignore[arg-type]
                            revoked_at=to_local(row.revoked_at, tz),
                            active=row.revoked_at is None and row.starts <= now < row.ends)


@router.post("/delegations", status_code=status.HTTP_201_CREATED, response_model=DelegationPublic)
async def create(body: DelegationCreate, person: CurrentPerson, write: Write, http: Request) -> DelegationPublic:
    """Let `to` decide in my place from `starts` (included) to `ends` (excluded, at most a year later) for
    the listed approval `policies` (empty: all). 422 for a delegation to oneself or to an inactive person,
    bad dates, or one overlapping an unrevoked delegation between the same people. Only an administrator
    may set `from` to someone else (anyone else: 403)."""
    from_id = body.from_ or person.id
    if from_id != person.id and "admin" not in person.roles:
        raise ForbiddenError("only an administrator may create a delegation for someone else (`from`)")
    runtime = http.app.state.runtime
    known = [loaded.policy.id for _, loaded in runtime.registry.approvals()]
    async with write() as session:
        row = await create_delegation(session, runtime, from_id=from_id, to_id=body.to, starts=body.starts,
                                      ends=body.ends, policies=body.policies, known_policies=known,
                                      reason=body.reason, created_by=person.id, now=clock.now())
        answer = write.respond(_public(row, runtime.timezone), status_code=201)
    return answer


@router.get("/delegations", response_model=DelegationList)
async def list_(person: CurrentPerson, session: SessionDep, http: Request,
                direction: Literal["both", "given", "received", "all"] = "both", include_revoked: bool = False,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> DelegationList:
    """Delegations I gave (`given`), received (`received`) or both; `all` (administrators) lists everyone's.
    Revoked ones only with `include_revoked=true`. Newest start first."""
    total, rows = await list_delegations(session, person=person, direction=direction,
                                         include_revoked=include_revoked, limit=limit, offset=offset)
    tz = http.app.state.runtime.timezone
    return DelegationList(count=total, items=[_public(r, tz) for r in rows])


@router.delete("/delegations/{delegation_id}", response_model=DelegationPublic)
async def revoke(delegation_id: RowId, person: CurrentPerson, write: Write, http: Request) -> DelegationPublic:
    """Revoke a delegation (the delegator or an administrator): from now on it lets nobody decide. Revoking
    twice answers the same. A delegation the caller neither gave nor received is a 404."""
    runtime = http.app.state.runtime
    async with write() as session:
        row = await revoke_delegation(session, delegation_id=delegation_id, person=person, now=clock.now())
        answer = write.respond(_public(row, runtime.timezone))
    return answer
