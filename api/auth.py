"""Authentication: HTTP Basic against argon2 password hashes (demo accounts, scripts).

Verified credentials are cached for a minute by a keyed digest, so a script's burst of calls does not
pay argon2's deliberate cost on every request; a changed password hash invalidates the entry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.concurrency import run_in_threadpool

from store.tables import PersonRow

hasher = PasswordHasher()
basic = HTTPBasic(auto_error=False, realm="duly")
_CACHE_SECONDS = 60.0
_cache_key = secrets.token_bytes(32)
_cache: dict[str, tuple[float, str]] = {}


def hash_password(password: str) -> str:
    return hasher.hash(password)


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message,
                         headers={"WWW-Authenticate": 'Basic realm="duly"'})


_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


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


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def current_person(request: Request,
                         credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> PersonRow:
    if credentials is None:
        raise _unauthorised("sign in with your duly account (HTTP Basic)")
    if any(c in credentials.username + credentials.password for c in "\x00\r\n") \
            or len(credentials.username) > 64 or len(credentials.password) > 1024:
        raise _unauthorised("unknown account or wrong password")
    async with request.app.state.runtime.read_sessions() as session:
        person = await session.get(PersonRow, credentials.username)
    if not await _verify(person, credentials.password):
        raise _unauthorised("unknown account or wrong password")
    assert person is not None
    return person


CurrentPerson = Annotated[PersonRow, Depends(current_person)]


async def _read_session(request: Request):  # type: ignore[no-untyped-def]
    async with request.app.state.runtime.read_sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_read_session)]
"""A session for reading. Routes that change state open `runtime.sessions()` for their transaction."""
