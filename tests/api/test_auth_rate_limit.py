"""Failed sign-ins are limited per account and per client address, across replicas (counted in the
database): beyond the limit every way of signing in answers 429 with Retry-After, whether or not the
account exists, until the window has passed."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest

from store.accounts import LoginLimits, locked_for, record_failure
from tests.api.auth_helpers import PASSWORD, browser

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LIMITS = LoginLimits(per_account=5, per_address=30, window=timedelta(minutes=15))


def fail_five_times(server, user: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        with server.client(user, "wrong-password") as client:
            assert client.get("/api/me").status_code == 401


class TestOverHttp:
    def test_sixth_attempt_is_429_everywhere_even_with_the_right_password(self, live_server):
        fail_five_times(live_server, "huang.lei")
        with live_server.client("huang.lei") as client:
            basic = client.get("/api/me")
        assert basic.status_code == 429
        assert 0 < int(basic.headers["retry-after"]) <= 15 * 60
        with browser(live_server) as client:
            api = client.post("/api/session", json={"username": "huang.lei", "password": PASSWORD})
            page = client.post("/login", data={"username": "huang.lei", "password": PASSWORD, "next": "/inbox"})
        assert api.status_code == 429 and "retry-after" in api.headers
        assert page.status_code == 429 and "尝试次数过多，请 15 分钟后再试" in page.text
        # another account from the same address is unaffected
        with live_server.client("liu.yang") as client:
            assert client.get("/api/me").status_code == 200

    @sqlite_only
    def test_an_unknown_account_locks_the_same_way(self, live_server):
        fail_five_times(live_server, "no.such.person")
        with live_server.client("no.such.person") as client:
            answer = client.get("/api/me")
        assert answer.status_code == 429 and "retry-after" in answer.headers

    @sqlite_only
    def test_account_names_are_counted_ignoring_case(self, live_server):
        fail_five_times(live_server, "Huang.Lei")
        with live_server.client("huang.lei") as client:
            assert client.get("/api/me").status_code == 429


class TestWindow:
    async def test_locked_until_the_window_passes_and_a_success_erases_nothing(self, runtime):
        t0 = pendulum.datetime(2026, 5, 6, 8, 0, tz="UTC")
        async with runtime.sessions() as session, session.begin():
            for minute in range(5):
                await record_failure(session, username="huang.lei", remote="10.0.0.7", now=t0.add(minutes=minute))
        async with runtime.sessions() as session:
            wait = await locked_for(session, username="huang.lei", remote="10.0.0.7", limits=LIMITS,
                                    now=t0.add(minutes=5))
            assert wait == timedelta(minutes=10)  # the first failure leaves the window at t0 + 15 min
            assert await locked_for(session, username="liu.yang", remote="10.0.0.8", limits=LIMITS,
                                    now=t0.add(minutes=5)) is None
            assert await locked_for(session, username="huang.lei", remote="10.0.0.7", limits=LIMITS,
                                    now=t0.add(minutes=15)) is None

    async def test_thirty_failures_from_one_address_lock_it_for_every_account(self, runtime):
        t0 = pendulum.datetime(2026, 5, 6, 8, 0, tz="UTC")
        async with runtime.sessions() as session, session.begin():
            for n in range(30):
                await record_failure(session, username=f"guess{n}", remote="10.0.0.9", now=t0)
        async with runtime.sessions() as session:
            assert await locked_for(session, username="huang.lei", remote="10.0.0.9", limits=LIMITS,
                                    now=t0.add(minutes=1)) == timedelta(minutes=14)
            assert await locked_for(session, username="huang.lei", remote="10.0.0.10", limits=LIMITS,
                                    now=t0.add(minutes=1)) is None
