"""Accounts: signed-in sessions, personal API tokens, failed sign-ins, password changes.

Secrets (a session cookie, an API token) are random and never stored: the tables hold their SHA-256,
so a copy of the database signs nobody in. Every function takes `now`; the caller owns the transaction.

Rules:
- a session ends at the first of: its absolute `expires_at`, `idle` after `last_seen_at`, revocation,
  or its person becoming inactive;
- a token ends at its `expires_at` or at revocation; `last_used_at` is written at most once a minute;
- sign-in is refused while an account has `per_account` failures within `window`, or an address
  `per_address` failures; a success erases nothing, so a locked account stays locked until the window passes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import InvalidInputError, NotFoundError
from store.tables import ApiTokenRow, AuthSessionRow, LoginFailureRow, PersonRow

TOKEN_PREFIX = "duly_"
TOUCH_EVERY = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 10


def digest(secret: str) -> str:
    """The stored form of a session or token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- sessions -----------------------------------------------------------------------------------------

async def start_session(session: AsyncSession, *, person_id: str, lifetime: timedelta, method: str,
                        remote: str, now: datetime) -> tuple[str, AuthSessionRow]:
    """A new signed-in session; returns the cookie secret (shown only now) and the row."""
    secret = secrets.token_urlsafe(32)
    row = AuthSessionRow(id=digest(secret), person_id=person_id, csrf=secrets.token_urlsafe(32), created_at=now,
                         last_seen_at=now, expires_at=now + lifetime)
    session.add(row)
    await append_audit(session, at=now, actor_id=person_id, action="auth.signed_in", subject_type="person",
                       subject_id=person_id, data={"method": method, "remote": remote,
                                                   "session": row.id[:12], "expires_at": row.expires_at.isoformat()})
    return secret, row


@dataclass(frozen=True)
class LiveSession:
    row: AuthSessionRow
    person: PersonRow
    stale: bool
    """last_seen_at is more than a minute old: the caller should `touch_session`."""


async def find_session(session: AsyncSession, secret: str, *, idle: timedelta, now: datetime) -> LiveSession | None:
    """The live session with this cookie secret, or None (unknown, revoked, expired, idle too long)."""
    found = (await session.execute(
        select(AuthSessionRow, PersonRow).join(PersonRow, PersonRow.id == AuthSessionRow.person_id)
        .where(AuthSessionRow.id == digest(secret)))).one_or_none()
    if found is None:
        return None
    row, person = found
    if row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now or not person.active:
        return None
    return LiveSession(row=row, person=person, stale=now - row.last_seen_at >= TOUCH_EVERY)


async def touch_session(session: AsyncSession, session_id: str, *, now: datetime) -> None:
    """Record use (the idle clock restarts); a no-op if the session ended meanwhile."""
    await session.execute(update(AuthSessionRow).where(
        AuthSessionRow.id == session_id, AuthSessionRow.revoked_at.is_(None),  # type: ignore[union-attr]
        AuthSessionRow.last_seen_at < now).values(last_seen_at=now))


async def end_session(session: AsyncSession, session_id: str, *, now: datetime) -> bool:
    """Sign out: revoke the session. False if it was not live."""
    row = await session.get(AuthSessionRow, session_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    await append_audit(session, at=now, actor_id=row.person_id, action="auth.signed_out", subject_type="person",
                       subject_id=row.person_id, data={"session": session_id[:12]})
    return True


async def end_other_sessions(session: AsyncSession, person_id: str, *, keep: str | None, now: datetime) -> int:
    """Revoke every live session of `person_id` except `keep`; returns how many."""
    query = update(AuthSessionRow).where(AuthSessionRow.person_id == person_id,
                                         AuthSessionRow.revoked_at.is_(None),  # type: ignore[union-attr]
                                         AuthSessionRow.expires_at > now)
    if keep is not None:
        query = query.where(AuthSessionRow.id != keep)
    result = await session.execute(query.values(revoked_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- API tokens ---------------------------------------------------------------------------------------

async def create_token(session: AsyncSession, *, person_id: str, name: str, expires_in_days: int,
                       now: datetime) -> tuple[str, ApiTokenRow]:
    """A personal API token; returns the secret (shown only now) and the row."""
    if not name.strip():
        raise InvalidInputError("the token needs a name", {"name": "must not be blank"})
    if not 1 <= expires_in_days <= 365:
        raise InvalidInputError("bad expiry", {"expires_in_days": f"expected 1..365, got {expires_in_days}"})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(person_id=person_id, name=name.strip(), token_hash=digest(secret),
                      prefix=secret[:len(TOKEN_PREFIX) + 6], created_at=now,
                      expires_at=now + timedelta(days=expires_in_days))
    session.add(row)
    await session.flush()
    await append_audit(session, at=now, actor_id=person_id, action="token.created", subject_type="person",
                       subject_id=person_id, data={"token": row.id, "name": row.name, "prefix": row.prefix,
                                                   "expires_at": row.expires_at.isoformat()})
    return secret, row


async def list_tokens(session: AsyncSession, person_id: str, *, limit: int,
                      offset: int) -> tuple[int, list[ApiTokenRow]]:
    """A person's tokens, newest first (revoked and expired ones too, so they can see what happened)."""
    mine = ApiTokenRow.person_id == person_id
    total = (await session.execute(select(func.count()).select_from(ApiTokenRow).where(mine))).scalar_one()
    rows = (await session.execute(select(ApiTokenRow).where(mine).order_by(
        ApiTokenRow.id.desc()).limit(limit).offset(offset))).scalars()  # type: ignore[union-attr]
    return total, list(rows)


async def revoke_token(session: AsyncSession, token_id: int, *, actor: PersonRow, now: datetime) -> ApiTokenRow:
    """Revoke a token: one's own, or anyone's for an administrator. Others' tokens are not found.
    Revoking an already revoked token changes nothing."""
    row = await session.get(ApiTokenRow, token_id)
    if row is None or (row.person_id != actor.id and "admin" not in actor.roles):
        raise NotFoundError(f"no API token {token_id} of yours")
    if row.revoked_at is None:
        row.revoked_at = now
        await append_audit(session, at=now, actor_id=actor.id, action="token.revoked", subject_type="person",
                           subject_id=row.person_id, data={"token": row.id, "name": row.name, "prefix": row.prefix})
    return row


async def find_token(session: AsyncSession, secret: str, *, now: datetime) -> tuple[ApiTokenRow, PersonRow] | None:
    """The live token with this secret and its (active) person, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    found = (await session.execute(
        select(ApiTokenRow, PersonRow).join(PersonRow, PersonRow.id == ApiTokenRow.person_id)
        .where(ApiTokenRow.token_hash == digest(secret)))).one_or_none()
    if found is None:
        return None
    row, person = found
    if row.revoked_at is not None or row.expires_at <= now or not person.active:
        return None
    return row, person


def token_stale(row: ApiTokenRow, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY


async def touch_token(session: AsyncSession, token_id: int, *, now: datetime) -> None:
    await session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))


# --- failed sign-ins ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginLimits:
    per_account: int
    per_address: int
    window: timedelta


def account_key(username: str) -> str:
    """Failures count per typed account name, existing or not (so a lock says nothing about existence)."""
    return username.strip().lower()[:64]


async def record_failure(session: AsyncSession, *, username: str, remote: str, now: datetime) -> None:
    session.add(LoginFailureRow(account=account_key(username), remote=remote[:64], at=now))


async def locked_for(session: AsyncSession, *, username: str, remote: str, limits: LoginLimits,
                     now: datetime) -> timedelta | None:
    """How long sign-in stays refused for this account or address, or None if it is allowed now."""
    since = now - limits.window
    waits = []
    for column, value, limit in ((LoginFailureRow.account, account_key(username), limits.per_account),
                                 (LoginFailureRow.remote, remote[:64], limits.per_address)):
        # the limit-th most recent failure: once it leaves the window, fewer than `limit` remain
        oldest_that_counts = (await session.execute(
            select(LoginFailureRow.at).where(column == value, LoginFailureRow.at > since)
            .order_by(LoginFailureRow.at.desc()).offset(limit - 1).limit(1))).scalar_one_or_none()  # type: ignore[attr-defined]
        if oldest_that_counts is not None:
            waits.append(oldest_that_counts + limits.window - now)
    return max(waits) if waits else None


# --- people -------------------------------------------------------------------------------------------

async def person_by_claim(session: AsyncSession, claim: str, value: str) -> PersonRow | None:
    """The active person an identity provider's claim names: `email` matches person.email ignoring case,
    any other claim matches person.id. None if nobody, or more than one person, matches."""
    column = PersonRow.email if claim == "email" else PersonRow.id
    rows = list((await session.execute(select(PersonRow).where(
        func.lower(column) == value.strip().lower(), PersonRow.active).limit(2))).scalars())
    return rows[0] if len(rows) == 1 else None


def password_problems(person_id: str, new_password: str) -> dict[str, str]:
    problems = {}
    if len(new_password) < MIN_PASSWORD_LENGTH:
        problems["new_password"] = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    elif new_password.strip().lower() == person_id.lower():
        problems["new_password"] = "must not be the account name"
    return problems


async def set_password(session: AsyncSession, person_id: str, *, password_hash: str, keep_session: str | None,
                       now: datetime) -> int:
    """Store a new password hash and sign out the person's other sessions; returns how many ended."""
    person = await session.get(PersonRow, person_id, with_for_update=True)
    if person is None:
        raise NotFoundError(f"no person {person_id}")
    person.password_hash = password_hash
    ended = await end_other_sessions(session, person_id, keep=keep_session, now=now)
    await append_audit(session, at=now, actor_id=person_id, action="auth.password_changed", subject_type="person",
                       subject_id=person_id, data={"other_sessions_ended": ended})
    return ended
