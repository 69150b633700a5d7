"""Authentication: who is calling. Three ways, tried in this order:

- `Authorization: Bearer duly_…` — a personal API token (scripts, integrations);
- `Authorization: Basic …` — account and password against the argon2 hash (demo accounts, old scripts);
- the `duly_session` cookie — a signed-in browser (the login page, POST /api/session, OIDC).

Cookie callers must send the session's CSRF token with every unsafe method (`X-CSRF-Token` header, or a
`csrf_token` form field); Bearer and Basic callers are exempt, since a browser never adds those by itself.

Passwords (Basic, /api/session, /login) go through `check_password`: refused with 429 while the account
or the client address has too many recent failures (counted in the database, so across API replicas),
each failure recorded in its own short transaction. Verified credentials are cached for a minute by a keyed
digest, so a script's burst of Basic calls does not pay argon2's deliberate cost on every request; a
changed password hash invalidates the entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.concurrency import run_in_threadpool

from config import clock
from config.settings import Settings
from store.accounts import (
    LoginLimits,
    find_session,
    find_token,
    locked_for,
    record_failure,
    token_stale,
    touch_session,
    touch_token,
)
from store.tables import PersonRow

hasher = PasswordHasher()
SESSION_COOKIE = "duly_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CACHE_SECONDS = 60.0
_cache_key = secrets.token_bytes(32)
_cache: dict[str, tuple[float, str]] = {}


def hash_password(password: str) -> str:
    return hasher.hash(password)


_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """The caller, and how they proved it."""

    person: PersonRow
    via: Literal["session", "token", "basic"]
    session_id: str | None = None
    csrf: str | None = None


class SignInRefused(Exception):
    """Wrong account or password, or too many recent failures (`retry_after` is then set)."""

    def __init__(self, message: str, retry_after: timedelta | None = None):
        self.retry_after = retry_after
        super().__init__(message)

    @property
    def retry_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds())) if self.retry_after else 0


# --- settings the shell reads ---------------------------------------------------------------------------

def settings_of(request: Request) -> Settings:
    """The Settings the entry point built (a Runtime made without them gets the defaults)."""
    settings = getattr(request.app.state, "auth_settings", None)
    if settings is None:
        settings = request.app.state.runtime.settings or Settings()
        request.app.state.auth_settings = settings
    return settings


def idle_timeout(request: Request) -> timedelta:
    return timedelta(minutes=settings_of(request).session.idle_minutes)


def session_lifetime(request: Request) -> timedelta:
    return timedelta(hours=settings_of(request).session.lifetime_hours)


def login_limits(request: Request) -> LoginLimits:
    group = settings_of(request).session
    return LoginLimits(per_account=group.failures_per_account, per_address=group.failures_per_address,
                       window=timedelta(minutes=group.failure_window_minutes))


def remote_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure_cookies(request: Request) -> bool:
    """Secure cookies when the public URL is https (behind a TLS-terminating proxy too)."""
    return request.app.state.runtime.public_url.startswith("https://")


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(SESSION_COOKIE, secret, max_age=int(session_lifetime(request).total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=secure_cookies(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request))


def safe_next(value: str | None, default: str = "/inbox") -> str:
    """A path on this site to go to after signing in; anything else (`//evil`, `https://…`) is refused."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return default
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# --- passwords ------------------------------------------------------------------------------------------

def _verifies(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verify(person: PersonRow | None, password: str) -> bool:
    if person is None or not person.password_hash or not person.active:
        # the same argon2 work as a real check, so timing does not tell which accounts exist
        await run_in_threadpool(_verifies, _DUMMY_HASH, password)
        return False
    digest = hmac.new(_cache_key, f"{person.id}\0{password}\0{person.password_hash}".encode(),
                      hashlib.sha256).hexdigest()
    hit = _cache.get(digest)
    now = time.monotonic()
    if hit and hit[0] > now:
        return True
    if not await run_in_threadpool(_verifies, person.password_hash, password):
        return False
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (now + _CACHE_SECONDS, person.id)
    return True


def forget_cached_password(person_id: str) -> None:
    for key in [k for k, (_, owner) in _cache.items() if owner == person_id]:
        _cache.pop(key, None)


async def verify_password(request: Request, person_id: str, password: str) -> bool:
    """Whether `password` is this person's (no rate limit: the caller is signed in already)."""
    async with request.app.state.runtime.read_sessions() as session:
        person = await session.get(PersonRow, person_id)
    return await _verify(person, password)


async def check_password(request: Request, username: str, password: str) -> PersonRow:
    """The active person with this account and password, or SignInRefused. Refused without looking while
    the account or address is locked; a failure is recorded in its own transaction."""
    runtime = request.app.state.runtime
    now, remote = clock.now(), remote_address(request)
    if any(c in username + password for c in "\x00\r\n") or not username or len(username) > 64 \
            or len(password) > 1024:
        raise SignInRefused("unknown account or wrong password")
    async with runtime.read_sessions() as session:
        wait = await locked_for(session, username=username, remote=remote, limits=login_limits(request), now=now)
        person = None if wait else await session.get(PersonRow, username)
    if wait:
        raise SignInRefused("too many failed sign-ins; try again later", retry_after=wait)
    if await _verify(person, password):
        assert person is not None
        return person
    async with runtime.write() as session:
        await record_failure(session, username=username, remote=remote, now=now)
    raise SignInRefused("unknown account or wrong password")


# --- the dependency ------------------------------------------------------------------------------------

def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message,
                         headers={"WWW-Authenticate": 'Basic realm="duly"'})


def refused(exc: SignInRefused) -> HTTPException:
    if exc.retry_after:
        return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=str(exc),
                             headers={"Retry-After": str(exc.retry_seconds)})
    return _unauthorised(str(exc))


async def _by_token(request: Request, secret: str) -> Principal:
    runtime = request.app.state.runtime
    now = clock.now()
    async with runtime.read_sessions() as session:
        found = await find_token(session, secret, now=now)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="unknown, expired or revoked API token",
                            headers={"WWW-Authenticate": 'Bearer realm="duly"'})
    token, person = found
    if token_stale(token, now):
        async with runtime.write() as session:
            await touch_token(session, token.id or 0, now=now)
    return Principal(person=person, via="token")


async def _by_basic(request: Request, credentials: HTTPBasicCredentials) -> Principal:
    try:
        person = await check_password(request, credentials.username, credentials.password)
    except SignInRefused as exc:
        raise refused(exc) from None
    return Principal(person=person, via="basic")


async def session_principal(request: Request) -> Principal | None:
    """The signed-in browser's person, or None without a live session cookie."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or len(secret) > 200:
        return None
    runtime = request.app.state.runtime
    now = clock.now()
    async with runtime.read_sessions() as session:
        live = await find_session(session, secret, idle=idle_timeout(request), now=now)
    if live is None:
        return None
    if live.stale:
        async with runtime.write() as session:
            await touch_session(session, live.row.id, now=now)
    return Principal(person=live.person, via="session", session_id=live.row.id, csrf=live.row.csrf)


async def _check_csrf(request: Request, principal: Principal) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), (principal.csrf or "").encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"signed in by cookie: send the session's CSRF token in the {CSRF_HEADER} header")


class _Utf8Basic(HTTPBasic):
    """HTTP Basic with UTF-8 credentials (RFC 7617; FastAPI's own decodes ASCII only, refusing 密码)."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, _, param = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, separator, password = base64.b64decode(param.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise _unauthorised("malformed HTTP Basic credentials") from None
        if not separator:
            raise _unauthorised("malformed HTTP Basic credentials")
        return HTTPBasicCredentials(username=username, password=password)


_basic = _Utf8Basic(auto_error=False, realm="duly", description="account and password (scripts, demo)")
_bearer = HTTPBearer(auto_error=False, description="a personal API token: POST /api/tokens")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="a signed-in browser (POST /api/session); unsafe methods need X-CSRF-Token")


async def current_principal(request: Request,
                            basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
                            bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                            cookie: Annotated[str | None, Depends(_cookie)]) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if bearer is not None:
        principal = await _by_token(request, bearer.credentials)
    elif basic is not None:
        principal = await _by_basic(request, basic)
    else:
        found = await session_principal(request) if cookie else None
        if found is None:
            raise _unauthorised("sign in: a session cookie (POST /api/session), an API token (Bearer), "
                                "or HTTP Basic")
        await _check_csrf(request, found)
        principal = found
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_person(principal: CurrentPrincipal) -> PersonRow:
    return principal.person


CurrentPerson = Annotated[PersonRow, Depends(current_person)]


async def page_principal(request: Request) -> Principal:
    """Pages need a signed-in browser; without one, the login page, which comes back here afterwards.
    A caller that sends an Authorization header (a script with a token or HTTP Basic) is answered as
    the API would."""
    if request.headers.get("Authorization"):
        return await current_principal(request, await _basic(request), await _bearer(request), None)
    principal = await session_principal(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(status.HTTP_303_SEE_OTHER, detail="sign in first",
                            headers={"Location": f"/login?next={quote(target, safe='')}"})
    request.state.principal = principal
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


async def page_person(principal: PagePrincipal) -> PersonRow:
    return principal.person


PagePerson = Annotated[PersonRow, Depends(page_person)]
"""The person a page is for: a signed-in browser, else a redirect to /login?next=<this page>."""


async def _read_session(request: Request):  # type: ignore[no-untyped-def]
    async with request.app.state.runtime.read_sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_read_session)]
"""A session for reading. Routes that change state open `runtime.sessions()` for their transaction."""
