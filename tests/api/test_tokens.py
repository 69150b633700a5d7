"""Personal API tokens: shown once, stored as a digest, listed without secrets, revoked, expired."""

from __future__ import annotations

import pendulum
import pytest
from sqlalchemy import select, update

from store.accounts import digest
from store.tables import ApiTokenRow
from tests.api.auth_helpers import audit_events, browser

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def make_token(server, user: str, **body) -> dict:  # type: ignore[no-untyped-def]
    with server.client(user) as client:
        answer = client.post("/api/tokens", json={"name": "月报导出脚本", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def as_bearer(server, token: str):  # type: ignore[no-untyped-def]
    client = browser(server)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


class TestCreateAndUse:
    async def test_token_is_shown_once_stored_as_a_digest_and_signs_its_owner_in(self, live_server, runtime):
        made = make_token(live_server, "huang.lei")
        assert made["token"].startswith("duly_") and len(made["token"]) > 40
        assert made["token"].startswith(made["prefix"]) and made["prefix"] != made["token"]
        expires = pendulum.parse(made["expires_at"]) - pendulum.parse(made["created_at"])
        assert expires.in_days() == 90
        with as_bearer(live_server, made["token"]) as client:
            assert client.get("/api/me").json()["id"] == "huang.lei"
        async with runtime.sessions() as session:
            row = (await session.execute(select(ApiTokenRow))).scalar_one()
        assert row.token_hash == digest(made["token"]) and row.last_used_at is not None
        with live_server.client("huang.lei") as client:
            listed = client.get("/api/tokens").json()
        assert listed["count"] == 1 and listed["items"][0]["prefix"] == made["prefix"]
        assert made["token"] not in str(listed) and listed["items"][0]["last_used_at"] is not None
        (event,) = await audit_events(runtime, "token.created")
        assert event.actor_id == "huang.lei" and made["token"] not in str(event.data)

    @sqlite_only
    def test_expiry_outside_1_to_365_days_is_refused(self, live_server):
        with live_server.client("huang.lei") as client:
            for days in (0, 366):
                answer = client.post("/api/tokens", json={"name": "x", "expires_in_days": days})
                assert answer.status_code == 422 and "expires_in_days" in answer.json()["error"]["problems"]
            assert client.post("/api/tokens", json={"name": "x", "expires_in_days": 365}).status_code == 201
            assert client.get("/api/tokens").json()["count"] == 1

    async def test_an_expired_token_is_401(self, live_server, runtime):
        made = make_token(live_server, "huang.lei", expires_in_days=1)
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(ApiTokenRow).values(expires_at=pendulum.now("UTC").subtract(seconds=1)))
        with as_bearer(live_server, made["token"]) as client:
            answer = client.get("/api/me")
        assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]

    @sqlite_only
    def test_an_unknown_token_is_401(self, live_server):
        with as_bearer(live_server, "duly_" + "A" * 43) as client:
            assert client.get("/api/me").status_code == 401

    @sqlite_only
    async def test_last_used_is_written_at_most_once_a_minute(self, live_server, runtime):
        made = make_token(live_server, "huang.lei")
        with as_bearer(live_server, made["token"]) as client:
            client.get("/api/me")
            async with runtime.sessions() as session:
                first = (await session.execute(select(ApiTokenRow.last_used_at))).scalar_one()
            client.get("/api/me")
            async with runtime.sessions() as session:
                assert (await session.execute(select(ApiTokenRow.last_used_at))).scalar_one() == first


class TestRevoke:
    async def test_owner_revokes_and_the_token_stops_working(self, live_server, runtime):
        made = make_token(live_server, "huang.lei")
        with live_server.client("huang.lei") as client:
            answer = client.delete(f"/api/tokens/{made['id']}")
            assert answer.status_code == 200 and answer.json()["revoked_at"] is not None
            assert client.get("/api/tokens").json()["items"][0]["revoked_at"] is not None
        with as_bearer(live_server, made["token"]) as client:
            assert client.get("/api/me").status_code == 401
        (event,) = await audit_events(runtime, "token.revoked")
        assert event.actor_id == "huang.lei" and event.data["token"] == made["id"]

    def test_someone_elses_token_is_404_and_keeps_working(self, live_server):
        made = make_token(live_server, "huang.lei")
        with live_server.client("liu.yang") as client:
            assert client.delete(f"/api/tokens/{made['id']}").status_code == 404
            assert client.get("/api/tokens").json() == {"count": 0, "items": []}
        with as_bearer(live_server, made["token"]) as client:
            assert client.get("/api/me").status_code == 200

    async def test_an_administrator_may_revoke_anyones_token(self, live_server, runtime):
        made = make_token(live_server, "huang.lei")
        with live_server.client("admin") as client:
            assert client.delete(f"/api/tokens/{made['id']}").status_code == 200
        with as_bearer(live_server, made["token"]) as client:
            assert client.get("/api/me").status_code == 401
        (event,) = await audit_events(runtime, "token.revoked")
        assert event.actor_id == "admin" and event.subject_id == "huang.lei"
