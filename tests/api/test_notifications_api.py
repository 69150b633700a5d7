"""The in-app notification list and the notification preferences over HTTP.

Rules under test: a person lists and marks only their own notifications (another's answers 404 and stays
unread); subjects are rendered when read, in the reader's current language; a row whose context no longer
renders lists under its event's name instead of failing the list; preferences are checked field by field
with messages that say how to write them, a refused change stores nothing, an accepted one is audited.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pendulum
from sqlalchemy import select

from store.tables import AuditEventRow, NotificationRow, PersonRow

T0 = pendulum.datetime(2026, 11, 13, 9, tz="Asia/Shanghai")
REMINDER = {"obligation": {"id": 7, "title": "信息系统运行月报", "policy_title": "信息科月报", "period": "2026-10",
                           "due_at": "2026-11-15T23:59:59+08:00", "provisional": False,
                           "owner_department": "信息科"},
            "link": "http://127.0.0.1:8000/obligations/7"}


async def notify(runtime: Any, person_id: str, *, context: dict | None = None, event: str = "obligation_reminder",
                 minutes: int = 0, read: bool = False) -> int:
    """One in-app notification row, as the outbox fan-out writes it; returns its id."""
    at = T0.add(minutes=minutes)
    async with runtime.sessions() as session, session.begin():
        row = NotificationRow(event_key=f"test:{uuid4().hex}:{person_id}", event=event, person_id=person_id,
                              context=REMINDER if context is None else context, created_at=at,
                              read_at=at if read else None)
        session.add(row)
        await session.flush()
        return row.id


async def read_at(runtime: Any, notification_id: int):  # type: ignore[no-untyped-def]
    async with runtime.sessions() as session:
        return (await session.get(NotificationRow, notification_id)).read_at


class TestTheList:
    async def test_each_person_lists_their_own_newest_first_with_a_chinese_subject(self, live_server, runtime):
        first = await notify(runtime, "huang.lei", minutes=1)
        second = await notify(runtime, "huang.lei", minutes=2)
        others = await notify(runtime, "liu.yang", minutes=3)
        with live_server.client("huang.lei") as client:
            answer = client.get("/api/notifications")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [i["id"] for i in body["items"]] == [second, first]
        assert others not in [i["id"] for i in body["items"]]
        assert body["unread"] == 2 and body["count"] == 2
        item = body["items"][0]
        assert "信息系统运行月报" in item["subject"] and "11月15日" in item["subject"], item["subject"]
        assert item["link"] == "http://127.0.0.1:8000/obligations/7"
        assert item["read_at"] is None and item["created_at"].endswith("+08:00")

    async def test_a_person_who_switches_to_english_reads_the_list_in_english(self, live_server, runtime):
        await notify(runtime, "sun.li")
        with live_server.client("sun.li") as client:
            chinese = client.get("/api/notifications").json()["items"][0]["subject"]
            assert client.put("/api/me/preferences", json={"lang": "en"}).status_code == 200
            english = client.get("/api/notifications").json()["items"][0]["subject"]
        assert chinese != english
        assert "信息系统运行月报" in english and "15 Nov" in english and "11月" not in english

    async def test_a_row_that_no_longer_renders_lists_under_its_event_name(self, live_server, runtime):
        good = await notify(runtime, "zheng.hao", minutes=1)
        broken = await notify(runtime, "zheng.hao", context={"link": "http://127.0.0.1:8000/x"}, minutes=2)
        unknown = await notify(runtime, "zheng.hao", event="retired_event", context={}, minutes=3)
        with live_server.client("zheng.hao") as client:
            answer = client.get("/api/notifications")
        assert answer.status_code == 200, answer.text
        subjects = {i["id"]: i["subject"] for i in answer.json()["items"]}
        assert subjects[broken] == "obligation_reminder"
        assert subjects[unknown] == "retired_event"
        assert "信息系统运行月报" in subjects[good]

    async def test_unread_only_and_paging_with_before(self, live_server, runtime):
        ids = [await notify(runtime, "chen.jing", minutes=m, read=(m == 2)) for m in range(1, 5)]
        with live_server.client("chen.jing") as client:
            unread = client.get("/api/notifications", params={"unread": "true"}).json()
            page = client.get("/api/notifications", params={"limit": 2, "before": ids[3]}).json()
            bad = client.get("/api/notifications", params={"limit": 0})
        assert [i["id"] for i in unread["items"]] == [ids[3], ids[2], ids[0]]
        assert unread["unread"] == 3
        assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
        assert bad.status_code == 422 and "limit" in str(bad.json()["error"]["problems"])


class TestMarkingRead:
    async def test_marking_one_read_keeps_its_first_read_time(self, live_server, runtime):
        one = await notify(runtime, "li.ming", minutes=1)
        two = await notify(runtime, "li.ming", minutes=2)
        with live_server.client("li.ming") as client:
            assert client.get("/api/notifications/unread-count").json() == {"unread": 2}
            marked = client.post(f"/api/notifications/{one}/read")
            assert marked.status_code == 200, marked.text
            assert marked.json()["read_at"] is not None
            first_time = await read_at(runtime, one)
            again = client.post(f"/api/notifications/{one}/read")
            assert again.status_code == 200
            assert client.get("/api/notifications/unread-count").json() == {"unread": 1}
        assert await read_at(runtime, one) == first_time
        assert await read_at(runtime, two) is None

    async def test_read_all_marks_only_mine_and_says_how_many(self, live_server, runtime):
        mine = [await notify(runtime, "zhou.min", minutes=m) for m in range(3)]
        theirs = await notify(runtime, "lin.fang")
        with live_server.client("zhou.min") as client:
            answer = client.post("/api/notifications/read-all")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"marked": 3, "unread": 0}
            assert client.post("/api/notifications/read-all").json()["marked"] == 0
        assert all([await read_at(runtime, i) is not None for i in mine])
        assert await read_at(runtime, theirs) is None

    async def test_someone_elses_notification_reads_like_a_missing_one_and_stays_unread(self, live_server, runtime):
        theirs = await notify(runtime, "huang.lei")
        with live_server.client("lin.fang") as client:
            answer = client.post(f"/api/notifications/{theirs}/read")
            missing = client.post("/api/notifications/2000000000/read")
            listed = client.get("/api/notifications").json()["items"]
        assert answer.status_code == missing.status_code == 404
        assert answer.json()["error"]["message"].replace(str(theirs), "N") == missing.json()["error"]["message"] \
            .replace("2000000000", "N")
        assert theirs not in [i["id"] for i in listed]
        assert await read_at(runtime, theirs) is None


class TestPreferences:
    async def test_defaults_then_a_change_is_stored_and_audited(self, live_server, runtime):
        with live_server.client("he.jing") as client:
            assert client.get("/api/me/preferences").json() == {"lang": "zh-CN", "notify_mode": "immediate",
                                                                "digest_at": "08:30"}
            answer = client.put("/api/me/preferences", json={"notify_mode": "digest", "digest_at": "17:05"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"lang": "zh-CN", "notify_mode": "digest", "digest_at": "17:05"}
            assert client.get("/api/me/preferences").json()["digest_at"] == "17:05"
        async with runtime.sessions() as session:
            person = await session.get(PersonRow, "he.jing")
            events = list((await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == "person.preferences", AuditEventRow.subject_id == "he.jing"))).scalars())
        assert (person.notify_mode, person.digest_at) == ("digest", "17:05")
        assert [e.data["after"]["digest_at"] for e in events] == ["17:05"]
        assert events[0].data["before"]["notify_mode"] == "immediate" and events[0].actor_id == "he.jing"

    async def test_bad_values_are_refused_field_by_field_and_nothing_changes(self, live_server, runtime):
        cases = [({"digest_at": "8:30"}, "digest_at", "two digits each"),
                 ({"digest_at": "24:00"}, "digest_at", "00:00 to 23:59"),
                 ({"digest_at": "12:60"}, "digest_at", "HH:MM"),
                 ({"digest_at": "0830"}, "digest_at", "e.g. 08:30"),
                 ({"lang": "fr"}, "lang", "zh-CN, en"),
                 ({"lang": None}, "lang", "zh-CN, en"),
                 ({"notify_mode": "weekly"}, "notify_mode", "immediate"),
                 ({}, "body", "at least one"),
                 ({"timezone": "UTC"}, "timezone", "Extra inputs")]
        with live_server.client("liu.yang") as client:
            for body, field, words in cases:
                answer = client.put("/api/me/preferences", json={**body})
                assert answer.status_code == 422, (body, answer.text)
                problems = answer.json()["error"]["problems"]
                assert words in problems[field], (body, problems)
            both = client.put("/api/me/preferences", json={"lang": "de", "digest_at": "25:00", "notify_mode": "digest"})
            assert set(both.json()["error"]["problems"]) == {"lang", "digest_at"}
            assert client.get("/api/me/preferences").json() == {"lang": "zh-CN", "notify_mode": "immediate",
                                                                "digest_at": "08:30"}
        async with runtime.sessions() as session:
            assert (await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == "person.preferences"))).first() is None


class TestThePage:
    async def test_the_page_shows_the_newest_hundred_and_links_to_the_older_ones(self, live_server, runtime):
        ids = [await notify(runtime, "huang.lei", minutes=i) for i in range(101)]
        with live_server.client("huang.lei") as client:
            newest = client.get("/notifications")
            older = client.get(f"/notifications?before={ids[1]}")
        assert newest.status_code == 200 and older.status_code == 200
        assert f'action="/notifications/{ids[-1]}/open"' in newest.text
        assert f'action="/notifications/{ids[0]}/open"' not in newest.text
        assert f'href="/notifications?before={ids[1]}"' in newest.text
        assert f'action="/notifications/{ids[0]}/open"' in older.text and "更早的通知" not in older.text
        assert 'href="/notifications">← 最新通知' in older.text
