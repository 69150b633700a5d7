"""The daily digest: one message per person with something pending, once per local working day."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest
from sqlalchemy import func, select, update

from flows.deliver import deliver
from flows.digest import digest
from flows.materialise import materialise_obligations
from flows.sweep import sweep
from notifications.catcher import list_caught
from notifications.email import render
from store.approvals import file_request
from store.delegations import create_delegation
from store.tables import ObligationRow, OutboxRow, PersonRow, StepRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)  # liu.yang's step is due 2026-10-08 16:00
THURSDAY = pendulum.datetime(2026, 11, 12, 8, 30, tz=SHANGHAI)  # October's reports are due Sun 11-15 23:59:59


async def _world(runtime) -> tuple[int, int]:
    """A request waiting on liu.yang since 09-30 (overdue since 10-08, escalated to li.ming on 10-09), and the
    26 monthly reports of October and November for the statistician he.jing (due 11-15 and 12-15)."""
    async with runtime.write() as session:
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "交换机", "amount": "48000"}, requester_id="huang.lei", now=FILED)
    await sweep(now=pendulum.datetime(2026, 10, 9, 9, 0, tz=SHANGHAI))
    await materialise_obligations(now=pendulum.datetime(2026, 11, 1, 10, tz=SHANGHAI), months_ahead=0,
                                  since=date(2026, 10, 1))
    async with runtime.sessions() as session:
        step_id = (await session.execute(select(StepRow.id).where(StepRow.request_id == request.id))).scalar_one()
    return request.id, step_id


def _caught_digests(mail, recipient: str | None = None):
    return [m for m in list_caught(mail.maildir, recipient=recipient) if m.subject.startswith(("今日待办", "Today"))]


async def _digests(runtime) -> dict[str, OutboxRow]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(OutboxRow).where(OutboxRow.event == "digest")
                                      .order_by(OutboxRow.id))).scalars()
        return {r.event_key: r for r in rows}


async def test_each_person_with_something_pending_gets_one_digest_and_nobody_else(runtime, prefect_harness, mail):
    request_id, _ = await _world(runtime)
    totals = await digest(now=THURSDAY)
    assert totals == {"working_day": 1, "people": 3, "queued": 3, "already_queued": 0}
    queued = await _digests(runtime)
    assert sorted(queued) == ["digest:2026-11-12:he.jing", "digest:2026-11-12:li.ming", "digest:2026-11-12:liu.yang"]

    await deliver(now=THURSDAY)
    url = runtime.public_url
    [approver] = _caught_digests(mail, "liu.yang@hospital.example")
    assert approver.subject == "今日待办：1 项审批（1 项已超时）"
    assert f"{url}/requests/{request_id}" in approver.text and f"{url}/inbox" in approver.text
    assert "申请人：黄磊；已等待 42 天；期限 10月8日 16:00，已超时 34 天" in approver.text
    assert f'href="{url}/requests/{request_id}"' in approver.html

    [statistician] = _caught_digests(mail, "he.jing@hospital.example")
    # within 3 working days of Thu 11-12: Fri 11-13, Mon 11-16, Tue 11-17; November's reports (12-15) are not
    assert statistician.subject == "今日待办：13 项报表将到期，最近截止 11月15日 23:59"
    assert statistician.text.count("截止 11月15日 23:59") == 13 and "2026-11）" not in statistician.text
    async with runtime.sessions() as session:
        first = (await session.execute(select(ObligationRow.id).where(
            ObligationRow.obligation_key == "D-001", ObligationRow.period_key == "2026-10"))).scalar_one()
    assert f"{url}/obligations/{first}" in statistician.text

    [leader] = _caught_digests(mail, "li.ming@hospital.example")
    assert leader.subject == "今日待办：1 项督办"
    assert "待 刘洋 审批，期限 10月8日 16:00，已超时 34 天" in leader.text
    everyone = {r for m in _caught_digests(mail) for r in m.recipients}
    assert everyone == {"liu.yang@hospital.example", "he.jing@hospital.example", "li.ming@hospital.example"}


async def test_overdue_reports_and_a_delegate_are_in_the_digest(runtime, prefect_harness):
    await _world(runtime)
    monday = pendulum.datetime(2026, 11, 16, 8, 30, tz=SHANGHAI)
    async with runtime.write() as session:
        await create_delegation(session, runtime, from_id="liu.yang", to_id="wang.xiuying",
                                starts=monday.subtract(days=1), ends=monday.add(days=5), policies=[],
                                known_policies=["it-hardware-purchase"],
                                reason="出差", created_by="liu.yang", now=monday.subtract(days=1))
    await digest(now=monday)
    queued = await _digests(runtime)
    statistician = queued["digest:2026-11-16:he.jing"].context
    assert (len(statistician["obligations"]), statistician["obligations_overdue"]) == (13, 13)
    assert statistician["obligations"][0]["overdue_by"] == {"days": 0, "hours": 8}
    assert render("digest", statistician).subject == "今日待办：13 项报表已逾期"
    delegate = queued["digest:2026-11-16:wang.xiuying"].context
    assert [t["delegated_from"] for t in delegate["tasks"]] == ["刘洋"]
    assert "代 刘洋 审批" in render("digest", delegate).text


async def test_a_rerun_the_same_day_queues_nothing_and_the_next_working_day_queues_again(runtime, prefect_harness):
    await _world(runtime)
    assert (await digest(now=THURSDAY))["queued"] == 3
    again = await digest(now=THURSDAY.add(hours=7))
    assert again == {"working_day": 1, "people": 3, "queued": 0, "already_queued": 3}
    assert len(await _digests(runtime)) == 3
    assert (await digest(now=THURSDAY.add(days=1)))["queued"] == 3  # Friday
    assert len(await _digests(runtime)) == 6


@pytest.mark.parametrize("day", [pendulum.datetime(2026, 10, 1, 8, 30, tz=SHANGHAI),  # 国庆节
                                 pendulum.datetime(2026, 11, 15, 8, 30, tz=SHANGHAI)])  # an ordinary Sunday
async def test_nothing_is_sent_on_a_day_off(runtime, prefect_harness, day):
    await _world(runtime)
    assert (await digest(now=day))["working_day"] == 0
    assert await _digests(runtime) == {}


async def test_a_makeup_working_saturday_has_digests(runtime, prefect_harness):
    await _world(runtime)
    saturday = pendulum.datetime(2026, 10, 10, 8, 30, tz=SHANGHAI)  # 调休上班
    assert (await digest(now=saturday))["queued"] == 2  # liu.yang's task, li.ming's follow-up; no reports due yet


async def test_nobody_is_mailed_when_nothing_is_pending(runtime, prefect_harness):
    assert await digest(now=THURSDAY) == {"working_day": 1, "people": 0, "queued": 0, "already_queued": 0}
    async with runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(OutboxRow))).scalar_one() == 0


async def test_an_english_reader_gets_an_english_digest(runtime, prefect_harness, mail):
    await _world(runtime)
    async with runtime.write() as session:
        await session.execute(update(PersonRow).where(PersonRow.id == "he.jing").values(lang="en"))
    await digest(now=THURSDAY)
    await deliver(now=THURSDAY)
    [message] = _caught_digests(mail, "he.jing@hospital.example")
    assert message.subject == "Today: 13 reports due; next deadline 15 Nov 23:59"
    assert "REPORTS NOT YET SUBMITTED: 13" in message.text and "Due by 15 Nov 23:59" in message.text


async def test_each_person_gets_their_digest_at_their_own_time_with_the_mail_held_for_it(runtime, prefect_harness,
                                                                                         mail):
    """he.jing chose a 10:00 digest instead of immediate mail: the sweep's reminders wait in the outbox, the
    08:30 run passes her by, the 10:00 run folds them into her digest, and the reminders are never mailed alone."""
    async with runtime.write() as session:
        await session.execute(update(PersonRow).where(PersonRow.id == "he.jing")
                              .values(notify_mode="digest", digest_at="10:00"))
    await _world(runtime)
    await sweep(now=THURSDAY.subtract(hours=1))  # reminders of October's reports fire for the statistician
    async with runtime.sessions() as session:
        held = list((await session.execute(select(OutboxRow).where(
            OutboxRow.recipient_id == "he.jing", OutboxRow.channel == "email"))).scalars())
    assert held and {r.state for r in held} == {"held"}

    assert (await digest(now=THURSDAY))["queued"] == 2  # liu.yang and li.ming at the default 08:30
    assert "digest:2026-11-12:he.jing" not in await _digests(runtime)
    ten = THURSDAY.replace(hour=10, minute=0)
    assert await digest(now=ten) == {"working_day": 1, "people": 3, "queued": 1, "already_queued": 2}

    await deliver(now=ten)
    [message] = _caught_digests(mail, "he.jing@hospital.example")
    assert message.subject == f"今日待办：13 项报表将到期、{len(held)} 条通知，最近截止 11月15日 23:59"
    assert f"【其他通知】{len(held)} 条（您选择了每日摘要" in message.text
    assert render(held[0].event, held[0].context).subject in message.text
    async with runtime.sessions() as session:
        states = set((await session.execute(select(OutboxRow.state).where(
            OutboxRow.id.in_([r.id for r in held])))).scalars())
    assert states == {"digested"}
    alone = [m for m in list_caught(mail.maildir, recipient="he.jing@hospital.example") if m not in [message]]
    assert alone == []
