"""Changing one's password: checked, rate limited like a sign-in, ends the other sessions, audited."""

from __future__ import annotations

import pytest

from tests.api.auth_helpers import PASSWORD, audit_events, sign_in

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NEW = "绿萝-每周浇水-2026"


async def test_change_ends_other_sessions_keeps_this_one_and_switches_the_password(live_server, runtime):
    client, body = sign_in(live_server, "huang.lei")
    other, _ = sign_in(live_server, "huang.lei")
    csrf = {"X-CSRF-Token": body["csrf_token"]}
    answer = client.put("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=csrf)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"other_sessions_ended": 1}
    assert client.get("/api/me").status_code == 200
    assert other.get("/api/me").status_code == 401
    with live_server.client("huang.lei") as old:
        assert old.get("/api/me").status_code == 401
    with live_server.client("huang.lei", NEW) as new:
        assert new.get("/api/me").status_code == 200
    (event,) = await audit_events(runtime, "auth.password_changed")
    assert event.actor_id == "huang.lei" and NEW not in str(event.data) and PASSWORD not in str(event.data)


@sqlite_only
def test_weak_new_passwords_and_a_wrong_current_one_are_refused(live_server):
    with live_server.client("zhang.jianguo") as client:
        short = client.put("/api/me/password", json={"current_password": PASSWORD, "new_password": "short"})
        same = client.put("/api/me/password", json={"current_password": PASSWORD, "new_password": "Zhang.Jianguo"})
        wrong = client.put("/api/me/password", json={"current_password": "not-it-at-all", "new_password": NEW})
        assert client.get("/api/me").status_code == 200  # nothing changed
    assert short.status_code == 422 and "10 characters" in short.json()["error"]["problems"]["new_password"]
    assert same.status_code == 422 and "account name" in same.json()["error"]["problems"]["new_password"]
    assert wrong.status_code == 422 and "current_password" in wrong.json()["error"]["problems"]


@sqlite_only
def test_cookie_caller_needs_the_csrf_token_to_change_the_password(live_server):
    client, _ = sign_in(live_server, "huang.lei")
    answer = client.put("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert answer.status_code == 403
    with live_server.client("huang.lei") as still:
        assert still.get("/api/me").status_code == 200
