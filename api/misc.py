"""Who am I, which policies are loaded, health, and the built-in mail catcher's messages."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from api.auth import CurrentPerson, SessionDep
from api.schemas import PersonPublic, PolicyPublic
from notifications.catcher import get_caught, list_caught
from store.errors import NotFoundError
from store.tables import PolicyVersionRow

router = APIRouter(tags=["misc"])
log = logging.getLogger("duly.api")


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(http: Request) -> JSONResponse:
    try:
        async with http.app.state.runtime.read_sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # report, don't raise: this is what a load balancer polls (details go to the log only)
        log.exception("readiness check failed")
        return JSONResponse({"status": "unavailable", "database": "not reachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/api/me", response_model=PersonPublic, tags=["people"])
async def me(person: CurrentPerson) -> PersonPublic:
    return PersonPublic(id=person.id, name=person.name, title=person.title, department=person.department_code,
                        roles=person.roles, email=person.email)


@router.get("/api/policies", response_model=list[PolicyPublic], tags=["policies"])
async def policies(person: CurrentPerson, session: SessionDep) -> list[PolicyPublic]:
    rows = (await session.execute(select(PolicyVersionRow).where(PolicyVersionRow.current)
                                  .order_by(PolicyVersionRow.policy_id))).scalars()
    return [PolicyPublic(id=r.policy_id, kind=r.kind, title=r.title, version=r.id or 0,
                         content_hash=r.content_hash) for r in rows]


def _maildir(http: Request) -> Any:
    maildir = http.app.state.maildir
    if maildir is None:
        raise NotFoundError("the built-in mail catcher is off (DULY_SMTP__MODE=smtp)")
    return maildir


@router.get("/api/mail", tags=["mail catcher"])
async def caught_mail(person: CurrentPerson, http: Request, limit: int = 100) -> list[dict[str, Any]]:
    """Messages the built-in mail catcher received: your own, or all of them for administrators."""
    recipient = None if "admin" in person.roles else person.email
    return [asdict(m) for m in list_caught(_maildir(http), recipient=recipient, limit=min(max(limit, 1), 500))]


@router.get("/api/mail/{key}", tags=["mail catcher"])
async def caught_message(key: str, person: CurrentPerson, http: Request) -> dict[str, Any]:
    message = get_caught(_maildir(http), key)
    if message is None or ("admin" not in person.roles
                           and person.email.lower() not in [r.lower() for r in message.recipients]):
        raise NotFoundError(f"no message {key}")
    return asdict(message)
