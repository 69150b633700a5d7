"""The audit chain's head for administrators, to export and compare later (DESIGN invariant 6)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import CurrentPerson, SessionDep
from store.audit import export_head
from store.errors import ForbiddenError

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditHeadPublic(BaseModel):
    seq: int
    hash: str
    at: str | None


@router.get("/head", response_model=AuditHeadPublic)
async def audit_head(person: CurrentPerson, session: SessionDep) -> AuditHeadPublic:
    """The last event's seq, hash and time. Keep it outside duly: `duly audit verify --expect-head` then
    proves the chain up to it was not rewritten. Administrators only."""
    if "admin" not in person.roles:
        raise ForbiddenError("only administrators may read the audit head")
    return AuditHeadPublic(**await export_head(session))
