"""Signed-in sessions over HTTP: the cookie, CSRF, sign-out, expiry, the login page and where it leads."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from sqlalchemy import update

from config.settings import Settings
from store.accounts import digest, find_session, start_session, touch_session
from store.tables import AuthSessionRow
from tests.api.auth_helpers import PASSWORD, audit_events, browser, sign_in

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def cookie_header(answer) -> str:  # type: ignore[no-untyped-def]
    (cookie,) = [v for v in answer.headers.get_list("set-cookie") if v.startswith("duly_session=")]
    return cookie


class TestSignIn:
    async def test_sign_in_sets_an_httponly_lax_cookie_and_returns_the_csrf_token(self, live_server, runtime):
        client = browser(live_server)
        answer = client.post("/api/session", json={"username": "huang.lei", "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["person"]["id"] == "huang.lei" and len(body["csrf_token"]) >= 32
        flags = [part.strip().lower() for part in cookie_header(answer).split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        assert "secure" not in flags  # the public URL is http here
        assert client.get("/api/me").json()["id"] == "huang.lei"
        assert client.get("/api/session").json()["csrf_token"] == body["csrf_token"]
        secret = client.cookies["duly_session"]
        async with runtime.sessions() as session:
            row = await session.get(AuthSessionRow, digest(secret))
        assert row is not None and row.person_id == "huang.lei" and row.csrf == body["csrf_token"]
        (event,) = await audit_events(runtime, "auth.signed_in")
        assert event.actor_id == "huang.lei" and event.data["method"] == "password"
        assert secret not in str(event.data) and PASSWORD not in str(event.data)

    def test_wrong_password_and_unknown_account_get_the_same_401(self, live_server):
        client = browser(live_server)
        wrong = client.post("/api/session", json={"username": "huang.lei", "password": "nope-nope-nope"})
        unknown = client.post("/api/session", json={"username": "no.such.person", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert "duly_session" not in client.cookies

    @sqlite_only
    def test_no_credentials_at_all_is_401(self, live_server):
        with browser(live_server) as client:
            assert client.get("/api/me").status_code == 401
            assert client.get("/api/session").status_code == 401


class TestCsrf:
    def test_cookie_caller_is_refused_an_unsafe_call_without_the_token(self, live_server):
        client, body = sign_in(live_server, "huang.lei")
        refused = client.post("/api/tokens", json={"name": "export"})
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
        wrong = client.post("/api/tokens", json={"name": "export"}, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        assert client.get("/api/tokens").json()["count"] == 0  # nothing was made
        made = client.post("/api/tokens", json={"name": "export"}, headers={"X-CSRF-Token": body["csrf_token"]})
        assert made.status_code == 201, made.text

    @sqlite_only
    def test_basic_and_bearer_callers_need_no_csrf_token(self, live_server):
        with live_server.client("huang.lei") as basic:
            made = basic.post("/api/tokens", json={"name": "script"})
        assert made.status_code == 201, made.text
        with browser(live_server) as client:
            bearer = {"Authorization": f"Bearer {made.json()['token']}"}
            assert client.post("/api/tokens", json={"name": "again"}, headers=bearer).status_code == 201

    @sqlite_only
    def test_sign_out_form_needs_the_csrf_field(self, live_server):
        client, body = sign_in(live_server, "huang.lei")
        assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        assert client.get("/api/me").status_code == 200
        answer = client.post("/logout", data={"csrf_token": body["csrf_token"]})
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        assert client.get("/api/me").status_code == 401


class TestSignOut:
    async def test_delete_session_ends_it_on_the_server(self, live_server, runtime):
        client, body = sign_in(live_server, "huang.lei")
        secret = client.cookies["duly_session"]
        answer = client.delete("/api/session", headers={"X-CSRF-Token": body["csrf_token"]})
        assert answer.status_code == 204
        assert 'duly_session=""' in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers["set-cookie"]
        # the old cookie, replayed, signs nobody in
        with browser(live_server) as replay:
            replay.cookies.set("duly_session", secret)
            assert replay.get("/api/me").status_code == 401
        (event,) = await audit_events(runtime, "auth.signed_out")
        assert event.actor_id == "huang.lei"


class TestExpiry:
    async def test_idle_session_ends_after_the_idle_timeout_and_use_restarts_the_clock(self, runtime):
        t0 = pendulum.datetime(2026, 3, 2, 9, 0, tz="UTC")
        idle = timedelta(hours=8)
        async with runtime.sessions() as session, session.begin():
            secret, _ = await start_session(session, person_id="huang.lei", lifetime=timedelta(days=7),
                                            method="password", remote="127.0.0.1", now=t0)
        async with runtime.sessions() as session:
            assert await find_session(session, secret, idle=idle, now=t0.add(hours=7, minutes=59)) is not None
            assert await find_session(session, secret, idle=idle, now=t0.add(hours=8)) is None
        async with runtime.sessions() as session, session.begin():
            await touch_session(session, digest(secret), now=t0.add(hours=7))
        async with runtime.sessions() as session:
            live = await find_session(session, secret, idle=idle, now=t0.add(hours=14))
            assert live is not None and live.person.id == "huang.lei"

    async def test_session_ends_at_its_absolute_lifetime_even_when_used(self, runtime):
        t0 = pendulum.datetime(2026, 3, 2, 9, 0, tz="UTC")
        idle = timedelta(hours=8)
        async with runtime.sessions() as session, session.begin():
            secret, row = await start_session(session, person_id="huang.lei", lifetime=timedelta(days=7),
                                              method="password", remote="127.0.0.1", now=t0)
        assert row.expires_at == t0.add(days=7)
        async with runtime.sessions() as session, session.begin():
            await touch_session(session, digest(secret), now=t0.add(days=6, hours=23))
        async with runtime.sessions() as session:
            assert await find_session(session, secret, idle=idle, now=t0.add(days=6, hours=23, minutes=59)) is not None
            assert await find_session(session, secret, idle=idle, now=t0.add(days=7)) is None

    @sqlite_only
    async def test_a_session_left_idle_over_http_is_refused(self, live_server, runtime):
        client, _ = sign_in(live_server, "huang.lei")
        assert client.get("/api/me").status_code == 200
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(AuthSessionRow).values(
                last_seen_at=pendulum.now("UTC").subtract(hours=8, minutes=1)))
        assert client.get("/api/me").status_code == 401


class TestLoginPage:
    @sqlite_only
    def test_pages_without_a_session_redirect_to_login_with_next(self, live_server):
        with browser(live_server) as client:
            answer = client.get("/calendar?period=2026-10")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Fcalendar%3Fperiod%3D2026-10"

    def test_form_sign_in_lands_on_next_and_refuses_foreign_targets(self, live_server):
        for target, expected in [("/calendar?period=2026-10", "/calendar?period=2026-10"),
                                 ("//evil.example/x", "/inbox"), ("https://evil.example/", "/inbox"),
                                 ("/\\evil.example", "/inbox"), ("javascript:alert(1)", "/inbox")]:
            with browser(live_server) as client:
                answer = client.post("/login", data={"username": "he.jing", "password": PASSWORD, "next": target})
                assert answer.status_code == 303, answer.text
                assert answer.headers["location"] == expected, target
                assert client.get("/calendar").status_code == 200

    @sqlite_only
    def test_login_page_is_in_chinese_and_keeps_a_safe_next(self, live_server):
        with browser(live_server) as client:
            page = client.get("/login?next=//evil.example").text
            assert "账号" in page and "密码" in page and "登录" in page
            assert 'name="next" value="/inbox"' in page
            assert "统一身份认证" not in page  # OIDC is off: no button
            assert client.get("/login/oidc").status_code == 404
            assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404
            wrong = client.post("/login", data={"username": "he.jing", "password": "wrong-password", "next": "/"})
        assert wrong.status_code == 401 and "账号或密码错误" in wrong.text
        assert 'value="he.jing"' in wrong.text  # the account is kept, the password is not


class TestBehindHttps:
    @pytest.fixture
    def settings(self, database_url, tmp_path, mail) -> Settings:  # type: ignore[no-untyped-def]
        return Settings(data_dir=tmp_path / "data", database_url=database_url, demo=True,
                        base_url="https://duly.hospital.example",
                        smtp={"mode": "smtp", "host": mail.host, "port": mail.port, "security": "none"},
                        scheduler={"enabled": False}, prefect={"mode": "external"})

    @sqlite_only
    def test_cookie_is_secure_when_the_public_url_is_https(self, live_server):
        with browser(live_server) as client:
            answer = client.post("/api/session", json={"username": "huang.lei", "password": PASSWORD})
        assert answer.status_code == 201
        assert "secure" in [part.strip().lower() for part in cookie_header(answer).split(";")]
