"""The page 通知设置 (/settings) in Debian's Chromium: a person chooses a daily digest at 10:00 and English,
adds their own WeCom robot (listed with its key cut short), is told what to fix for a URL that is not a robot's
(nothing stored), and deletes the robot again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store.tables import ChatHookRow, PersonRow

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


async def hooks_of(runtime: Any, person_id: str) -> list[ChatHookRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(ChatHookRow).where(ChatHookRow.owner == person_id))).scalars())


async def test_a_person_chooses_a_digest_and_adds_and_removes_their_own_robot(live_server, runtime, chromium,
                                                                              tmp_path: Path, keep):
    async with chromium("liu.yang") as page:
        await page.goto(f"{live_server.url}/notifications")
        await page.get_by_role("link", name="通知设置").click()
        await page.wait_for_url(f"{live_server.url}/settings")
        assert await page.title() == "通知设置 · duly"

        await page.locator("select[name=lang]").select_option("en")
        await page.locator("input[name=notify_mode][value=digest]").check()
        await page.locator("input[name=digest_at]").fill("10:00")
        await page.get_by_role("button", name="保存").click()
        await page.wait_for_url("**/settings?done=saved")
        assert "设置已保存" in await page.locator("main").inner_text()
        async with runtime.sessions() as session:
            person = await session.get(PersonRow, "liu.yang")
            assert (person.lang, person.notify_mode, person.digest_at) == ("en", "digest", "10:00")
        assert await page.locator("input[name=notify_mode][value=digest]").is_checked()

        await page.locator("input[name=url]").fill("https://example.com/hook/abc")
        await page.get_by_role("button", name="添加机器人").click()
        problems = await page.locator("#problems").inner_text()
        assert "未保存" in problems and "Webhook 地址" in problems and "qyapi.weixin.qq.com" in problems
        assert await page.locator("input[name=url]").input_value() == "https://example.com/hook/abc"  # kept
        assert await hooks_of(runtime, "liu.yang") == []

        await page.locator("input[name=url]").fill(WECOM)
        await page.locator("input[name=label]").fill("信息科值班群")
        await page.get_by_role("button", name="添加机器人").click()
        await page.wait_for_url("**/settings?done=hook_added")
        listed = await page.locator("#hooks").inner_text()
        assert "信息科值班群" in listed and "企业微信群机器人" in listed and "key=693a…" in listed
        assert "0ec2sifa5aaa" not in await page.content()
        [hook] = await hooks_of(runtime, "liu.yang")
        assert (hook.scope, hook.kind, hook.url) == ("person", "wecom", WECOM)
        shot = tmp_path / "settings.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-settings.png")

        await page.locator(f"form[action='/settings/chat-hooks/{hook.id}/delete'] button").click()
        await page.wait_for_url("**/settings?done=hook_deleted")
        assert await hooks_of(runtime, "liu.yang") == []
