"""The pages in a real browser: Debian's Chromium, driven by Playwright, against the app on loopback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

# The browser sees HTML; which database is behind it is the HTTP tests' concern.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


async def test_approver_clicks_from_inbox_to_the_request(live_server, file_purchase, chromium, tmp_path, keep):
    request = file_purchase("48000")
    async with chromium("liu.yang") as page:
        await page.goto(f"{live_server.url}/inbox")
        assert await page.title() == "我的待办 · duly"
        await page.get_by_role("link", name="信息化硬件采购申请").click()
        await page.wait_for_url(f"**/requests/{request['id']}")
        step = page.locator("ol.steps li").first
        assert "综合管理部负责人审批" in await step.inner_text()
        assert "待审批" in await step.inner_text()
        body = await page.locator("main").inner_text()
        assert "黄磊" in body and "¥48,000.00" in body
        shot = tmp_path / "request.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-request.png")
        width, height = png_size(shot)
        assert width == 1280 and height >= 900
        assert shot.stat().st_size > 30_000  # text, badges and a timeline, not a blank page

        # on a phone the page reflows instead of scrolling sideways
        await page.set_viewport_size({"width": 390, "height": 844})
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_statistician_sees_the_calendar_with_late_and_provisional_reports(
        live_server, materialise, periods, chromium, tmp_path, keep):
    await materialise(periods["late"], periods["open"], periods["provisional"])
    async with chromium("he.jing") as page:
        await page.goto(f"{live_server.url}/calendar")
        days = page.locator("h2.day")
        assert await days.count() == 3
        assert await page.locator("li.late").count() == 13
        assert await page.locator(".badge.provisional").count() >= 13  # 2099; next month may be too
        shot = tmp_path / "calendar.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-calendar.png")
        assert png_size(shot)[1] > 2000  # 39 reports in three groups
        await page.locator("li.late a").first.click()
        await page.wait_for_url("**/obligations/*")
        assert "逾期" in await page.locator("main h1").inner_text()


async def test_login_page_refuses_a_wrong_password_then_lands_on_the_page_asked_for(live_server, chromium, tmp_path,
                                                                                   keep):
    async with chromium(None) as page:
        await page.goto(f"{live_server.url}/calendar")
        await page.wait_for_url(f"{live_server.url}/login?next=%2Fcalendar")
        assert await page.title() == "登录 · duly"
        shot = tmp_path / "login.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-login.png")
        Path("/tmp/login.png").write_bytes(shot.read_bytes())
        assert png_size(shot)[0] == 1280

        await page.get_by_label("账号").fill("he.jing")
        await page.get_by_label("密码").fill("not-my-password")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_load_state()
        assert (await page.get_by_role("alert").inner_text()).strip() == "账号或密码错误。"
        assert await page.get_by_label("账号").input_value() == "he.jing"  # kept; the password is not
        assert await page.get_by_label("密码").input_value() == ""

        await page.get_by_label("密码").fill("duly-demo")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_url(f"{live_server.url}/calendar")
        assert "何静" in await page.locator("header").inner_text()

        await page.get_by_role("button", name="退出登录").click()
        await page.wait_for_url(f"{live_server.url}/login")
        await page.goto(f"{live_server.url}/inbox")
        await page.wait_for_url(f"{live_server.url}/login?next=%2Finbox")
