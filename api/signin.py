"""Starting a session, and the login page: shared by password sign-in (api/accounts.py) and OIDC (api/oidc.py)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.auth import remote_address, session_lifetime, settings_of
from api.pages import HEADERS, templates
from api.schemas import Body, PersonPublic
from config import clock
from store.accounts import start_session
from store.tables import PersonRow


class SessionPublic(Body):
    person: PersonPublic
    csrf_token: str = Field(description="send it as X-CSRF-Token with every POST/PUT/PATCH/DELETE")
    expires_at: datetime = Field(description="the latest instant this session ends (sooner when left idle)")


def person_public(person: PersonRow) -> PersonPublic:
    return PersonPublic(id=person.id, name=person.name, title=person.title, department=person.department_code,
                        roles=person.roles, email=person.email)


async def sign_in(http: Request, person: PersonRow, *, method: str) -> tuple[str, SessionPublic]:
    """Start a session for `person`; returns the cookie secret and what the caller is told."""
    async with http.app.state.runtime.write() as session:
        secret, row = await start_session(session, person_id=person.id, lifetime=session_lifetime(http),
                                          method=method, remote=remote_address(http), now=clock.now())
    return secret, SessionPublic(person=person_public(person), csrf_token=row.csrf, expires_at=row.expires_at)


def login_page(http: Request, *, next_path: str, error: str = "", username: str = "",
               status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    group = settings_of(http).oidc
    return templates.TemplateResponse(http, "login.html", {
        "next": next_path, "error": error, "username": username,
        "oidc_label": group.button_label if group.enabled else ""},
        status_code=status_code, headers={**HEADERS, **(headers or {})})
