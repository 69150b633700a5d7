"""上报事件 in a real browser: a supervisor reports a case; its 5-working-day report opens and is shown; the
same case number again shows the report opened before; a date in the future is refused in Chinese with
what was typed kept. (The health-supervision profile: its case reports are opened by events.)"""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from config.settings import Settings
from notifications.catcher import MailCatcher
from tests.profiles import profile_settings

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mail: MailCatcher) -> Settings:
    return profile_settings("health-supervision", database_url, tmp_path / "data",
                            smtp={"mode": "smtp", "host": mail.host, "port": mail.port, "security": "none"})


@sqlite_only
async def test_a_supervisor_reports_a_case_and_sees_its_report_due(live_server, chromium, tmp_path, keep):
    yesterday = pendulum.now("Asia/Shanghai").subtract(days=1).replace(hour=16, minute=0)
    async with chromium("xiao.ming") as page:
        await page.goto(f"{live_server.url}/events")
        assert "卫生监督个案信息报送" in await page.content()
        await page.get_by_label("事件").select_option("case_created")
        await page.get_by_label("编号或摘要").fill("案-2026-1121-07")
        await page.get_by_label("发生时间").fill(yesterday.format("YYYY-MM-DDTHH:mm"))
        await page.get_by_role("button", name="上报").click()
        await page.wait_for_url("**/obligations/*")
        body = await page.inner_text("body")
        assert "事件已上报，报送事项已生成。" in body
        assert "卫生监督个案信息报送" in body and "事件 案-2026-1121-07" in body
        shot = tmp_path / "event-reported.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "event-reported.png")
        first = page.url

        await page.goto(f"{live_server.url}/events")
        await page.get_by_label("事件").select_option("case_created")
        await page.get_by_label("编号或摘要").fill("案-2026-1121-07")
        await page.get_by_label("发生时间").fill(yesterday.format("YYYY-MM-DDTHH:mm"))
        await page.get_by_role("button", name="上报").click()
        await page.wait_for_url("**/obligations/*")
        assert page.url.split("?")[0] == first.split("?")[0]
        assert "此前已上报" in await page.inner_text("body")

        await page.goto(f"{live_server.url}/events")
        await page.get_by_label("编号或摘要").fill("案-2026-1121-08")
        await page.get_by_label("发生时间").fill(yesterday.add(days=3).format("YYYY-MM-DDTHH:mm"))
        await page.get_by_role("button", name="上报").click()
        await page.wait_for_selector("#error")
        assert "发生时间晚于现在" in await page.inner_text("#error")
        assert await page.get_by_label("编号或摘要").input_value() == "案-2026-1121-08"
