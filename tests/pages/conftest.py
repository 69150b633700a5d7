"""Fixtures for the pages: requests filed through the API or, when a test needs a deadline in the past,
through the store at a chosen instant; obligations materialised for chosen periods; a real Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
from sqlalchemy import select

from config import clock
from policies.due import Period, next_period, period_containing, previous_period
from store.approvals import file_request
from store.obligations import materialise_policy
from store.sweep import claim_due, fire_thresholds
from store.tables import ObligationRow

SHANGHAI = "Asia/Shanghai"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def file_purchase(live_server) -> Callable[..., dict[str, Any]]:
    """File an IT purchase through the REST API, as a person would; returns the API's answer."""

    def file(amount: str = "48000", items: str = "笔记本电脑 10台", user: str = "huang.lei") -> dict[str, Any]:
        with live_server.client(user) as client:
            answer = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                        "form": {"items": items, "amount": amount}})
        assert answer.status_code == 201, answer.text
        return answer.json()

    return file


@pytest.fixture
def file_purchase_at(runtime) -> Callable[[datetime], Awaitable[int]]:
    """File an IT purchase at a chosen instant through the store (the API always files "now"), then run the
    sweep's threshold firing at the deadline plus a day, as the scheduler would have. Returns the request id."""

    async def file(at: datetime, *, sweep: bool = True) -> int:
        async with runtime.sessions() as session, session.begin():
            request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                         form={"items": "交换机 2台", "amount": "16000"},
                                         requester_id="huang.lei", now=at)
        if sweep:
            later = min(pendulum.instance(at).add(days=14), clock.now())
            async with runtime.sessions() as session, session.begin():
                await fire_thresholds(session, runtime, await claim_due(session, runtime, now=later, limit=50),
                                      now=later)
        return request.id

    return file


def _period_of(day: date) -> Period:
    return period_containing(day, "monthly")


@pytest.fixture
def materialise(runtime) -> Callable[..., Awaitable[dict[str, list[int]]]]:
    """Create the municipal monthly reports (13 per period) for the given periods; returns their ids by period."""

    async def run(*periods: Period) -> dict[str, list[int]]:
        (version_id, loaded), = [c for c in runtime.registry.calendars() if c[1].id == "municipal-monthly-reports"]
        async with runtime.sessions() as session, session.begin():
            await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, periods=list(periods),
                                     now=clock.now())
        async with runtime.sessions() as session:
            rows = (await session.execute(select(ObligationRow).order_by(ObligationRow.obligation_key))).scalars()
            found: dict[str, list[int]] = {}
            for row in rows:
                found.setdefault(row.period_key, []).append(row.id)
        return found

    return run


@pytest.fixture
def periods() -> dict[str, Period]:
    """Periods chosen against today's clock so the states hold on any day: `late` was due last month or
    earlier, `open` is due after next month begins, `provisional` falls in a year without a published
    holiday arrangement."""
    today = pendulum.instance(clock.now()).in_timezone(SHANGHAI).date()
    this = _period_of(today)
    return {"late": previous_period(previous_period(this)), "open": next_period(this),
            "provisional": _period_of(date(2099, 1, 1))}


# --- the browser --------------------------------------------------------------------------------------

def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


async def sign_in_with_the_form(page: Any, url: str, user: str, password: str = "duly-demo") -> None:
    """What a person does: open the login page, type the account and password, press 登录."""
    await page.goto(f"{url}/login")
    await page.get_by_label("账号").fill(user)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(f"{url}/inbox")


@pytest.fixture
def chromium(tmp_path: Path, live_server) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright, with a fresh profile, signed in as `user` through the login
    form (None: not signed in). Skips when Chromium or Playwright is missing, unless DULY_REQUIRE_BROWSER=1
    (CI), which fails instead."""
    problem = _browser_problem()
    if problem:
        if os.environ.get("DULY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DULY_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    from playwright.async_api import async_playwright

    @asynccontextmanager
    async def open_as(user: str | None, *, width: int = 1280, height: int = 900) -> AsyncIterator[Any]:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                tmp_path / f"profile-{user}", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
                locale="zh-CN", timezone_id=SHANGHAI, viewport={"width": width, "height": height})
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                if user is not None:
                    await sign_in_with_the_form(page, live_server.url, user)
                yield page
            finally:
                await context.close()

    return open_as


def keep_screenshot(path: Path, name: str) -> None:
    """Copy a screenshot to $DULY_SCREENSHOT_DIR when set, to look at after the run."""
    target = os.environ.get("DULY_SCREENSHOT_DIR")
    if target:
        Path(target, name).write_bytes(path.read_bytes())


@pytest.fixture
def keep() -> Callable[[Path, str], None]:
    return keep_screenshot
