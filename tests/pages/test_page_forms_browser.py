"""People acting through the pages in a real browser (Debian's Chromium via Playwright), with no scripts on
the pages: an approver approves in bulk from the inbox and rejects from the request page, a requester
withdraws, a report is handed in with a file. Screenshots go to /tmp/page-*.png to be looked at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages.test_page_forms import PDF, PROFILE, finance  # noqa: F401  (the fixture, used below)
from tests.pages.test_pages_browser import png_size

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def shoot(path: str) -> Path:
    return Path(path)


async def test_approver_approves_one_in_bulk_and_rejects_another_with_a_reason(live_server, file_purchase,
                                                                                chromium, keep):
    first, second = file_purchase("1200"), file_purchase("3000", items="激光打印机 2台")
    async with chromium("liu.yang") as page:
        await page.goto(f"{live_server.url}/inbox")
        assert "待办2" in (await page.locator(".stats").inner_text()).replace("\n", "").replace(" ", "")
        await page.get_by_label(f"选中 信息化硬件采购申请 #{first['id']}").check()
        await page.get_by_role("button", name="批量批准").click()
        await page.wait_for_url(f"**/inbox?approved={first['id']}")
        result = await page.get_by_role("status").inner_text()
        assert f"#{first['id']}" in result and "已批准" in result and "未批准" not in result
        shot = shoot("/tmp/page-inbox.png")
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-page-inbox.png")
        assert png_size(shot)[0] == 1280

        await page.locator(f'ul.items a[href="/requests/{second["id"]}"]').click()
        await page.wait_for_url(f"**/requests/{second['id']}")
        await page.locator("summary", has_text="驳回").click()
        await page.get_by_label("驳回理由（必填）").fill("打印机已有库存，暂不采购")
        shot = shoot("/tmp/page-request.png")
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-page-request.png")
        await page.locator("details[open] button", has_text="驳回").click()
        await page.wait_for_url(f"**/requests/{second['id']}?done=reject")
        assert "已驳回" in await page.locator("main h1").inner_text()
        timeline = await page.locator("ol.timeline").inner_text()
        assert "驳回「综合管理部负责人审批」（理由：打印机已有库存，暂不采购）" in timeline
        assert await page.get_by_role("button", name="批准", exact=True).count() == 0  # decided: only 评论 left
        assert await page.locator("section.act summary").all_inner_texts() == ["评论"]
        await page.screenshot(path="/tmp/page-request-rejected.png", full_page=True)

        # on a phone the forms reflow instead of scrolling sideways
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{live_server.url}/requests/{first['id']}")
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_requester_withdraws_from_the_request_page(live_server, file_purchase, chromium):
    request = file_purchase("1200")
    async with chromium("huang.lei") as page:
        await page.goto(f"{live_server.url}/requests/{request['id']}")
        await page.locator("summary", has_text="撤回申请").click()
        await page.get_by_label("撤回原因（选填）").fill("预算调整，改下月申请")
        await page.locator("details[open] button", has_text="撤回").click()
        await page.wait_for_url(f"**/requests/{request['id']}?done=withdraw")
        assert (await page.get_by_role("status").inner_text()).strip() == "申请已撤回。"
        assert "已撤回" in await page.locator("main h1").inner_text()
        assert "撤回申请（理由：预算调整，改下月申请）" in await page.locator("ol.timeline").inner_text()


class TestReport:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"policy_paths": PROFILE})

    async def test_report_is_handed_in_with_its_files_from_the_obligation_page(self, live_server, finance,  # noqa: F811
                                                                               chromium, keep, tmp_path):
        ids = await finance()
        sealed, sheet = tmp_path / "盖章件.pdf", tmp_path / "收支数据.pdf"
        sealed.write_bytes(PDF)
        sheet.write_bytes(PDF)
        async with chromium("ma.chao") as page:
            await page.goto(f"{live_server.url}/obligations/{ids['F-SEALED']}")
            await page.get_by_label("盖章纸质报表（必需）").set_input_files(str(sealed))
            await page.get_by_label("数据表（必需）").set_input_files(str(sheet))
            await page.get_by_label("说明（选填）").fill("2026年11月数据，已核对")
            await page.get_by_role("button", name="提交报送").click()
            await page.wait_for_url(f"**/obligations/{ids['F-SEALED']}?done=submitted")
            assert "已报送" in await page.locator("main h1").inner_text()
            table = await page.locator("table.list").inner_text()
            assert "原报" in table and "已接收" in table and "马超" in table
            assert "盖章件.pdf" in table and "收支数据.pdf" in table
            shot = tmp_path / "obligation.png"
            await page.screenshot(path=str(shot), full_page=True)
            Path("/tmp/page-obligation.png").write_bytes(shot.read_bytes())
            keep(shot, "duly-page-obligation.png")
            async with page.expect_download() as download:
                await page.get_by_role("link", name="盖章件.pdf").click()
            assert (await download.value).suggested_filename == "盖章件.pdf"
