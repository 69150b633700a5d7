"""The pages 通知 (/notifications) and 投递 (/admin/outbox) in Debian's Chromium, and their forms over HTTP.

What a person sees: their unread notifications first with a Chinese subject, a count on the nav entry that
drops when one is opened (it opens its page) or when all are marked read. What an administrator sees: the
dead letters with their error and a 重新发送 button that puts the row back in the queue (待发送); anyone else
is refused (403) and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pendulum
import pytest
from sqlalchemy import select

from store.tables import NotificationRow, OutboxRow

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

T0 = pendulum.datetime(2026, 11, 13, 9, tz="Asia/Shanghai")
REMINDER = {"obligation": {"id": 7, "title": "信息系统运行月报", "policy_title": "信息科月报", "period": "2026-10",
                           "due_at": "2026-11-15T23:59:59+08:00", "provisional": False,
                           "owner_department": "信息科"},
            "link": "http://127.0.0.1:8000/inbox"}


async def notify(runtime: Any, person_id: str, *, minutes: int = 0, title: str = "信息系统运行月报") -> int:
    context = {**REMINDER, "obligation": {**REMINDER["obligation"], "title": title}}
    async with runtime.sessions() as session, session.begin():
        row = NotificationRow(event_key=f"page:{uuid4().hex}:{person_id}", event="obligation_reminder",
                              person_id=person_id, context=context, created_at=T0.add(minutes=minutes))
        session.add(row)
        await session.flush()
        return row.id


async def dead_letter(runtime: Any, recipient: str = "huang.lei") -> int:
    async with runtime.sessions() as session, session.begin():
        row = OutboxRow(event_key=f"page:{uuid4().hex}:{recipient}", event="step_assigned", recipient_id=recipient,
                        to_address="huang.lei@nowhere.example", context={}, state="dead", attempts=8,
                        last_error="550 5.1.1 <huang.lei@nowhere.example>: mailbox unavailable",
                        next_attempt_at=T0, created_at=T0)
        session.add(row)
        await session.flush()
        return row.id


async def state_of(runtime: Any, outbox_id: int) -> str:
    async with runtime.sessions() as session:
        return (await session.execute(select(OutboxRow.state).where(OutboxRow.id == outbox_id))).scalar_one()


async def test_the_list_shows_chinese_subjects_and_opening_one_lowers_the_badge(live_server, runtime, chromium,
                                                                                tmp_path: Path, keep):
    await notify(runtime, "liu.yang", minutes=1, title="医院工作报表（门诊部分）")
    newest = await notify(runtime, "liu.yang", minutes=2)
    await notify(runtime, "huang.lei")  # someone else's: never on this page
    async with chromium("liu.yang") as page:
        badge = page.locator("#nav-notifications .count")
        assert await badge.inner_text() == "2"  # on every page: here the inbox the sign-in lands on
        await page.goto(f"{live_server.url}/notifications")
        assert await page.title() == "通知 · duly"
        unread = page.locator("#unread li")
        assert await unread.count() == 2
        first = await unread.first.inner_text()
        assert "信息系统运行月报" in first and "11月15日" in first and "未读" in first
        shot = tmp_path / "notifications.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-notifications.png")

        await page.locator(f"form[action='/notifications/{newest}/open'] button").click()
        await page.wait_for_url(f"{live_server.url}/inbox")  # the page the notification is about
        assert await badge.inner_text() == "1"
        await page.goto(f"{live_server.url}/notifications")
        assert await page.locator("#unread li").count() == 1
        assert "信息系统运行月报" in await page.locator("#read li").inner_text()

        await page.get_by_role("button", name="全部标为已读").click()
        await page.wait_for_url("**/notifications?done=all_read")
        assert "已全部标为已读" in await page.locator("main").inner_text()
        assert await badge.count() == 0
        assert await page.locator("#read li").count() == 2


async def test_the_admin_resends_a_dead_letter_and_sees_it_pending(live_server, runtime, chromium,
                                                                   tmp_path: Path, keep):
    dead = await dead_letter(runtime)
    async with chromium("admin") as page:
        await page.goto(f"{live_server.url}/admin/outbox")
        assert await page.title() == "投递 · duly"
        row = page.locator(f"#outbox-{dead}")
        text = await row.inner_text()
        assert "黄磊" in text and "mailbox unavailable" in text and "投递失败" in text and "审批待办" in text
        summary = await page.locator("#summary").inner_text()
        assert "投递失败\t1\t0" in summary or "投递失败 1 0" in " ".join(summary.split())
        shot = tmp_path / "outbox.png"
        await page.screenshot(path=str(shot), full_page=True)
        keep(shot, "duly-outbox.png")

        await row.get_by_role("button", name="重新发送").click()
        await page.wait_for_url("**/admin/outbox?state=pending&done=resent")
        assert "已重新排队发送" in await page.locator("main").inner_text()
        assert "待发送" in await page.locator(f"#outbox-{dead}").inner_text()
    assert await state_of(runtime, dead) == "pending"


async def test_a_non_admin_is_refused_the_outbox_page_and_its_form(live_server, runtime, chromium):
    dead = await dead_letter(runtime)
    async with chromium("huang.lei") as page:
        assert await page.locator("text=投递").count() == 0  # no nav entry for non-administrators
        answer = await page.goto(f"{live_server.url}/admin/outbox")
        assert answer.status == 403
        body = await page.locator("main").inner_text()
        assert "仅管理员" in body and "mailbox" not in body
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        signed_in = browser.post("/api/session", json={"username": "huang.lei", "password": "duly-demo"})
        csrf = signed_in.json()["csrf_token"]
        answer = browser.post(f"/admin/outbox/{dead}/resend", data={"csrf_token": csrf})
        assert answer.status_code == 403 and "仅管理员" in answer.text
        forged = browser.post("/notifications/read-all", data={"csrf_token": "wrong"})
        assert forged.status_code == 403
    assert await state_of(runtime, dead) == "dead"


async def test_someone_elses_notification_cannot_be_opened_from_the_page(live_server, runtime):
    theirs = await notify(runtime, "huang.lei")
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        csrf = browser.post("/api/session", json={"username": "lin.fang", "password": "duly-demo"}).json()["csrf_token"]
        answer = browser.post(f"/notifications/{theirs}/open", data={"csrf_token": csrf})
        assert answer.status_code == 404 and "不是您的通知" in answer.text
        page = browser.get("/notifications")
        assert page.status_code == 200 and "没有未读通知" in page.text
    async with runtime.sessions() as session:
        assert (await session.get(NotificationRow, theirs)).read_at is None
