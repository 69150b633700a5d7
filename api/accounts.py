"""Signing in and out (the login page and /api/session), personal API tokens, and password changes.

The login page and POST /api/session create the same server-side session (cookie `duly_session`); OIDC
sign-in (api/oidc.py) ends in it too. Routes that sign someone in have no caller yet, so they cannot take
`write: Write`; POST /api/tokens and PUT /api/me/password do not either, on purpose: an idempotency record
would keep the token's secret, or a digest of the passwords, in the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from api import oidc
from api.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    CurrentPrincipal,
    SignInRefused,
    check_password,
    clear_session_cookie,
    forget_cached_password,
    hash_password,
    refused,
    safe_next,
    session_principal,
    set_session_cookie,
)
from api.errors import error_body
from api.idempotency import Write
from api.schemas import Body, RowId, Text
from api.signin import SessionPublic, login_page, person_public, sign_in
from config import clock
from store.accounts import (
    create_token,
    end_session,
    list_tokens,
    password_problems,
    revoke_token,
    set_password,
)
from store.errors import InvalidInputError
from store.tables import ApiTokenRow, AuthSessionRow, PersonRow

router = APIRouter(tags=["accounts"])
router.include_router(oidc.router)


# --- bodies -------------------------------------------------------------------------------------------

class SessionCreate(Body):
    username: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)


class TokenCreate(Body):
    name: Text = Field(min_length=1, max_length=100, description="what the token is for, e.g. 月报导出脚本")
    expires_in_days: int = Field(default=90, ge=1, le=365)


class TokenPublic(Body):
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown this once; send it as `Authorization: Bearer <token>`")


class TokenList(Body):
    count: int
    items: list[TokenPublic]


class PasswordChange(Body):
    current_password: Text = Field(max_length=1024)
    new_password: Text = Field(max_length=1024)


def _token_public(row: ApiTokenRow) -> dict[str, Any]:
    return {"id": row.id or 0, "name": row.name, "prefix": row.prefix, "created_at": row.created_at,
            "expires_at": row.expires_at, "last_used_at": row.last_used_at, "revoked_at": row.revoked_at}


# --- the login page -----------------------------------------------------------------------------------

def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(http: Request, next: str = "") -> HTMLResponse:
    return login_page(http, next_path=safe_next(next))


@router.post("/login", include_in_schema=False)
async def login_submit(http: Request, username: Annotated[str, Form(max_length=200)] = "",
                       password: Annotated[str, Form(max_length=2000)] = "",
                       next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    target = safe_next(next)
    try:
        person = await check_password(http, username.strip(), password)
    except SignInRefused as exc:
        if exc.retry_after:
            return login_page(http, next_path=target, username=username, status_code=429,
                              error=f"尝试次数过多，请 {_minutes(exc.retry_seconds)} 分钟后再试。",
                              headers={"Retry-After": str(exc.retry_seconds)})
        return login_page(http, next_path=target, username=username, status_code=401, error="账号或密码错误。")
    secret, _ = await sign_in(http, person, method="password")
    answer = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(answer, http, secret)
    return answer


@router.post("/logout", include_in_schema=False)
async def logout(http: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "") -> Response:
    """Sign out of this browser. Needs the session's CSRF token (the pages' 退出登录 button sends it), so
    another site cannot sign people out."""
    principal = await session_principal(http)
    if principal is not None:
        if csrf_token != principal.csrf:
            return JSONResponse(error_body("forbidden", f"sign-out needs the session's {CSRF_FIELD}"), status_code=403)
        async with http.app.state.runtime.write() as session:
            await end_session(session, principal.session_id or "", now=clock.now())
    answer = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session_cookie(answer, http)
    return answer


# --- /api/session ---------------------------------------------------------------------------------------

@router.post("/api/session", status_code=status.HTTP_201_CREATED, response_model=SessionPublic,
             responses={401: {"description": "unknown account or wrong password"},
                        429: {"description": "too many failed sign-ins; see Retry-After"}})
async def create_session(body: SessionCreate, http: Request, response: Response) -> SessionPublic:
    """Sign in with account and password: sets the `duly_session` cookie and returns the CSRF token."""
    try:
        person = await check_password(http, body.username, body.password)
    except SignInRefused as exc:
        raise refused(exc) from None
    secret, answer = await sign_in(http, person, method="password")
    set_session_cookie(response, http, secret)
    return answer


async def _cookie_session(http: Request, principal: CurrentPrincipal) -> PersonRow:
    if principal.via != "session":
        raise InvalidInputError("this call is about a browser session; you signed in by "
                                f"{'API token' if principal.via == 'token' else 'HTTP Basic'}",
                                {SESSION_COOKIE: "missing"})
    return principal.person


@router.get("/api/session", response_model=SessionPublic)
async def read_session(http: Request, principal: CurrentPrincipal) -> SessionPublic:
    """The signed-in browser's person and CSRF token (e.g. after a page reload)."""
    await _cookie_session(http, principal)
    async with http.app.state.runtime.read_sessions() as session:
        row = await session.get(AuthSessionRow, principal.session_id)
    assert row is not None
    return SessionPublic(person=person_public(principal.person), csrf_token=row.csrf, expires_at=row.expires_at)


@router.delete("/api/session", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(http: Request, principal: CurrentPrincipal, write: Write) -> Response:
    """Sign out: the session ends on the server and the cookie is cleared."""
    await _cookie_session(http, principal)
    async with write() as session:
        await end_session(session, principal.session_id or "", now=clock.now())
        write.respond(None, status_code=204)
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(answer, http)
    return answer


# --- API tokens -----------------------------------------------------------------------------------------

@router.post("/api/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
async def create_api_token(body: TokenCreate, principal: CurrentPrincipal, http: Request) -> TokenCreated:
    """A personal API token for scripts. The answer holds the secret, once; only its SHA-256 is kept."""
    async with http.app.state.runtime.write() as session:
        secret, row = await create_token(session, person_id=principal.person.id, name=body.name,
                                         expires_in_days=body.expires_in_days, now=clock.now())
        answer = TokenCreated(token=secret, **_token_public(row))
    return answer


@router.get("/api/tokens", response_model=TokenList)
async def my_tokens(principal: CurrentPrincipal, http: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    offset: Annotated[int, Query(ge=0)] = 0) -> TokenList:
    """My tokens, newest first, without their secrets."""
    async with http.app.state.runtime.read_sessions() as session:
        total, rows = await list_tokens(session, principal.person.id, limit=limit, offset=offset)
    return TokenList(count=total, items=[TokenPublic(**_token_public(r)) for r in rows])


@router.delete("/api/tokens/{token_id}", response_model=TokenPublic)
async def delete_api_token(token_id: RowId, principal: CurrentPrincipal, write: Write) -> TokenPublic:
    """Revoke one of my tokens (an administrator: anyone's). Someone else's token answers 404."""
    async with write() as session:
        row = await revoke_token(session, token_id, actor=principal.person, now=clock.now())
        answer = write.respond(TokenPublic(**_token_public(row)))
    return answer


# --- password -------------------------------------------------------------------------------------------

@router.put("/api/me/password", tags=["people"])
async def change_password(body: PasswordChange, principal: CurrentPrincipal, http: Request) -> dict[str, int]:
    """Change my password (at least 10 characters, not the account name). My other sessions end; this one
    stays signed in. A wrong current password counts as a failed sign-in."""
    person = principal.person
    problems = password_problems(person.id, body.new_password)
    if problems:
        raise InvalidInputError("the new password is not acceptable", problems)
    try:
        await check_password(http, person.id, body.current_password)
    except SignInRefused as exc:
        if exc.retry_after:
            raise refused(exc) from None
        raise InvalidInputError("the current password is wrong", {"current_password": "wrong password"}) from None
    new_hash = await run_in_threadpool(hash_password, body.new_password)
    async with http.app.state.runtime.write() as session:
        ended = await set_password(session, person.id, password_hash=new_hash, keep_session=principal.session_id,
                                   now=clock.now())
    forget_cached_password(person.id)
    return {"other_sessions_ended": ended}
