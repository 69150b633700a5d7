"""Signing in over HTTP for the authentication tests: a browser-like client holding the session cookie."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from store.tables import AuditEventRow

PASSWORD = "duly-demo"


def browser(server: Any) -> httpx.Client:
    """A client without credentials: it keeps cookies, as a browser does."""
    return httpx.Client(base_url=server.url, timeout=30)


def sign_in(server: Any, user: str, password: str = PASSWORD) -> tuple[httpx.Client, dict[str, Any]]:
    """POST /api/session; returns the client (holding the cookie) and the answer (person, csrf_token)."""
    client = browser(server)
    answer = client.post("/api/session", json={"username": user, "password": password})
    assert answer.status_code == 201, answer.text
    return client, answer.json()


async def audit_events(runtime: Any, action: str) -> list[AuditEventRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEventRow).where(AuditEventRow.action == action)
                                           .order_by(AuditEventRow.seq))).scalars())
