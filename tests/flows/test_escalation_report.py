"""The managers' escalation report: what is overdue in their departments, and the trend on the previous period."""

from __future__ import annotations

import email.policy
import io
import mailbox
import re
from datetime import date
from email.message import EmailMessage
from email.parser import BytesParser

import pendulum
import pytest
from PIL import Image
from sqlalchemy import select

from flows.deliver import deliver
from flows.materialise import materialise_obligations
from flows.report import escalation_report
from flows.sweep import sweep
from notifications.catcher import list_caught
from notifications.charts import escalation_chart
from notifications.email import render
from store.approvals import decide, file_request
from store.escalation_report import overdue_at, report_period
from store.submissions import submit_report
from store.tables import ObligationRow, OutboxRow, PersonRow, StepRow

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)
WEEK_47 = pendulum.datetime(2026, 11, 20, 9, 0, tz=SHANGHAI)  # Friday; a week before (11-13) the reports were not due
WEEK_48 = WEEK_47.add(weeks=1)


async def _world(runtime) -> tuple[int, int]:
    """liu.yang (head of 综合管理部) has sat on a request since 09-30 (due 10-08 16:00, escalated to li.ming on
    10-09); October's 13 reports of 绩效办 were due 11-15 23:59:59 and escalated to chen.jing at 11-16 00:05;
    one of them (D-001) was handed in late on 11-18."""
    async with runtime.write() as session:
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "交换机", "amount": "48000"}, requester_id="huang.lei", now=FILED)
    await sweep(now=pendulum.datetime(2026, 10, 9, 9, 0, tz=SHANGHAI))
    await materialise_obligations(now=pendulum.datetime(2026, 11, 1, 10, tz=SHANGHAI), months_ahead=0,
                                  since=date(2026, 10, 1))
    await sweep(now=pendulum.datetime(2026, 11, 16, 0, 5, tz=SHANGHAI))
    await _submit(runtime, "D-001", pendulum.datetime(2026, 11, 18, 10, tz=SHANGHAI))
    async with runtime.sessions() as session:
        step_id = (await session.execute(select(StepRow.id).where(StepRow.request_id == request.id))).scalar_one()
    return request.id, step_id


async def _submit(runtime, key: str, at) -> None:
    async with runtime.write() as session:
        obligation = (await session.execute(select(ObligationRow).where(
            ObligationRow.obligation_key == key, ObligationRow.period_key == "2026-10"))).scalar_one()
        he_jing = await session.get(PersonRow, "he.jing")
        await submit_report(session, runtime, obligation_id=obligation.id, person=he_jing, attachment_ids=[],
                            note=None, corrects=None, review_form=None, now=at)


async def _reports(runtime, period: str) -> dict[str, dict]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(OutboxRow).where(
            OutboxRow.event == "escalation_report", OutboxRow.event_key.startswith(f"report:{period}:")))).scalars()
        return {r.recipient_id: r.context for r in rows}


def _counts(obligations: int, steps: int, escalated: int) -> dict[str, int]:
    return {"obligations": obligations, "steps": steps, "escalated": escalated, "total": obligations + steps}


async def test_each_manager_gets_their_departments_overdue_items_with_the_trend(runtime, prefect_harness, mail):
    request_id, _ = await _world(runtime)
    totals = await escalation_report(now=WEEK_47)
    assert totals == {"period": "2026-W47", "managers": 4, "queued": 4, "already_queued": 0, "points_queued": 0}
    reports = await _reports(runtime, "2026-W47")
    # 绩效办: head feng.xue, leader in charge chen.jing; 综合管理部: head liu.yang, leader in charge li.ming
    assert sorted(reports) == ["chen.jing", "feng.xue", "li.ming", "liu.yang"]

    leader = reports["chen.jing"]
    assert (leader["totals"], leader["previous"]) == (_counts(12, 0, 12), _counts(0, 0, 0))
    assert leader["change"]["total"] == 12 and leader["previous_period"] == "2026-W46"
    [performance] = leader["departments"]
    assert (performance["name"], performance["relation"]) == ("绩效办", "leader_in_charge")
    assert [o["title"] for o in performance["obligations"]][:1] == ["医院工作报表（医技科室）"]  # D-001 was handed in

    general = reports["li.ming"]
    assert (general["totals"], general["previous"]) == (_counts(0, 1, 1), _counts(0, 1, 1))
    [step] = general["departments"][0]["steps"]
    assert (step["waiting_on"], step["escalated_to"], step["request_id"]) == ("刘洋", "李明", request_id)
    assert step["overdue_by"]["days"] == 42

    await deliver(now=WEEK_47)
    [mailed] = [m for m in list_caught(mail.maildir, recipient="chen.jing@hospital.example")
                if m.subject.startswith("逾期督办")]
    assert mailed.subject == "逾期督办周报（2026-W47）：12 项逾期（报表 12 项、审批 0 项），较上周增加 12 项"
    assert "绩效办 | 12 | 0 | 12 | 12 | 0 | +12" in mailed.text
    assert f"{runtime.public_url}/calendar?state=late" in mailed.text and "已逾期 4 天" in mailed.text
    [mailed] = [m for m in list_caught(mail.maildir, recipient="li.ming@hospital.example")
                if m.subject.startswith("逾期督办")]
    assert mailed.subject == "逾期督办周报（2026-W47）：1 项逾期（报表 0 项、审批 1 项），较上周持平"
    assert f"{runtime.public_url}/requests/{request_id}" in mailed.text and "已督办 李明" in mailed.text
    assert render("escalation_report", general, lang="en").subject == \
        "Overdue report 2026-W47: 1 overdue (0 reports, 1 approval), unchanged on last week"


async def test_a_rerun_in_the_same_week_queues_nothing(runtime, prefect_harness):
    await _world(runtime)
    await escalation_report(now=WEEK_47)
    again = await escalation_report(now=WEEK_47.add(days=1))
    assert again == {"period": "2026-W47", "managers": 4, "queued": 0, "already_queued": 4, "points_queued": 0}


async def test_the_previous_week_is_recomputed_from_rows_and_a_cleared_department_is_reported_once(
        runtime, prefect_harness):
    request_id, step_id = await _world(runtime)
    await escalation_report(now=WEEK_47)
    async with runtime.write() as session:
        await decide(session, runtime, request_id=request_id, step_id=step_id, actor_id="liu.yang", verb="approve",
                     reason=None, now=pendulum.datetime(2026, 11, 24, 10, tz=SHANGHAI))
    for key in ("D-002", "D-003"):
        await _submit(runtime, key, pendulum.datetime(2026, 11, 25, 10, tz=SHANGHAI))

    await escalation_report(now=WEEK_48)
    week_47, week_48 = await _reports(runtime, "2026-W47"), await _reports(runtime, "2026-W48")
    for manager in ("chen.jing", "li.ming"):  # last week's figures, recomputed a week later, are the ones sent then
        assert week_48[manager]["previous"] == week_47[manager]["totals"]
    assert week_48["chen.jing"]["totals"] == _counts(10, 0, 10)
    assert render("escalation_report", week_48["chen.jing"]).subject.endswith("较上周减少 2 项")
    cleared = week_48["li.ming"]
    assert (cleared["totals"], cleared["change"]["total"]) == (_counts(0, 0, 0), -1)
    assert "目前没有逾期事项" in render("escalation_report", cleared).text

    totals = await escalation_report(now=WEEK_48.add(weeks=1))
    assert sorted(await _reports(runtime, "2026-W49")) == ["chen.jing", "feng.xue"]  # 综合管理部: nothing then or now
    assert totals["managers"] == 2


async def test_overdue_at_counts_an_escalation_only_from_when_it_fired(runtime, prefect_harness):
    await _world(runtime)
    async with runtime.sessions() as session:
        before_sweep = await overdue_at(session, pendulum.datetime(2026, 11, 16, 0, 1, tz=SHANGHAI))
        after_sweep = await overdue_at(session, pendulum.datetime(2026, 11, 16, 0, 6, tz=SHANGHAI))
        before_due = await overdue_at(session, pendulum.datetime(2026, 11, 15, 23, 59, tz=SHANGHAI))
        before_step_due = await overdue_at(session, pendulum.datetime(2026, 10, 8, 15, 0, tz=SHANGHAI))
    assert before_sweep["performance"].counts().as_dict() == _counts(13, 0, 0)
    assert after_sweep["performance"].counts().as_dict() == _counts(13, 0, 13)
    assert "performance" not in before_due
    assert before_due["general"].counts().as_dict() == _counts(0, 1, 1)
    assert before_step_due == {}


async def test_no_report_when_nothing_is_overdue(runtime, prefect_harness):
    assert (await escalation_report(now=WEEK_47))["managers"] == 0
    assert await _reports(runtime, "2026-W47") == {}


WEEK_47_TREND = ["09-28", "10-05", "10-12", "10-19", "10-26", "11-02", "11-09", "11-16"]


class TestTrend:
    """Each report carries the figures at the report instant moved back by 0..7 periods, oldest first."""

    async def test_the_trend_ends_with_this_week_and_last_week_as_reported(self, runtime, prefect_harness):
        await _world(runtime)
        await escalation_report(now=WEEK_47)
        reports = await _reports(runtime, "2026-W47")
        for context in reports.values():
            assert [p["label"] for p in context["trend"]] == WEEK_47_TREND
            *_, before, now = context["trend"]
            assert {k: now[k] for k in context["totals"]} == context["totals"]
            assert {k: before[k] for k in context["previous"]} == context["previous"]
            assert (now["period"], before["period"]) == ("2026-W47", "2026-W46")
        # 绩效办's reports were created on 11-01 and fell due on 11-15: nothing before this week.
        assert [p["total"] for p in reports["chen.jing"]["trend"]] == [0] * 7 + [12]
        # The request fell due on 10-08 16:00 and was escalated by the sweep of 10-09 09:00, the very
        # moment of the 10-05 week's point (Friday 09:00).
        general = reports["li.ming"]
        assert [(p["steps"], p["escalated"]) for p in general["trend"]] == [(0, 0)] + [(1, 1)] * 7
        assert general["trend"][1]["as_of"] == "2026-10-09T09:00:00+08:00"
        assert general["departments"][0]["trend"] == [0] + [1] * 7

    async def test_the_trend_counts_a_week_cleared_long_ago_from_rows(self, runtime, prefect_harness):
        """Three weeks after the step was approved and two reports handed in, the trend still shows them
        overdue in the weeks they were."""
        request_id, step_id = await _world(runtime)
        async with runtime.write() as session:
            await decide(session, runtime, request_id=request_id, step_id=step_id, actor_id="liu.yang",
                         verb="approve", reason=None, now=pendulum.datetime(2026, 11, 24, 10, tz=SHANGHAI))
        for key in ("D-002", "D-003"):
            await _submit(runtime, key, pendulum.datetime(2026, 11, 25, 10, tz=SHANGHAI))
        await escalation_report(now=WEEK_48.add(weeks=2))  # 2026-W50: 综合管理部 has nothing then or a week before
        reports = await _reports(runtime, "2026-W50")
        assert sorted(reports) == ["chen.jing", "feng.xue"]
        trend = reports["chen.jing"]["trend"]
        assert [p["label"] for p in trend][-3:] == ["11-23", "11-30", "12-07"]
        assert [p["obligations"] for p in trend][-5:] == [0, 12, 10, 10, 10]


def test_a_monthly_trend_moves_back_whole_months_from_the_report_instant():
    period = report_period(pendulum.datetime(2026, 3, 31, 9, tz=SHANGHAI), tz=SHANGHAI, kind="month")
    assert [p.label for p in period.trend] == ["08-01", "09-01", "10-01", "11-01", "12-01", "01-01", "02-01",
                                               "03-01"]
    assert [p.key for p in period.trend][-2:] == ["2026-02", "2026-03"] == [period.previous_key, period.key]
    # Each point moves back from 03-31 itself: February has no 31st, the others keep it.
    assert [pendulum.instance(p.at).in_timezone(SHANGHAI).day for p in period.trend] == [31, 30, 31, 30, 31, 31,
                                                                                        28, 31]
    assert (period.trend[-1].at, period.trend[-2].at) == (period.at, period.previous_at)


def test_a_trend_needs_this_period_and_the_one_before():
    with pytest.raises(ValueError) as raised:
        report_period(WEEK_47, tz=SHANGHAI, periods=1)
    assert "at least 2 periods" in str(raised.value)


def _caught_raw(maildir, recipient: str) -> list[EmailMessage]:
    box = mailbox.Maildir(maildir, create=False)
    found = [BytesParser(policy=email.policy.default).parsebytes(box.get_bytes(key)) for key in box.keys()]
    return [m for m in found if recipient in str(m["To"]) and str(m["Subject"]).startswith("逾期督办")]


async def test_the_mailed_report_carries_the_trend_chart_inline(runtime, prefect_harness, mail):
    await _world(runtime)
    await escalation_report(now=WEEK_47)
    context = (await _reports(runtime, "2026-W47"))["chen.jing"]
    await deliver(now=WEEK_47)

    [message] = _caught_raw(mail.maildir, "chen.jing@hospital.example")
    alternative = message.get_payload()
    assert message.get_content_type() == "multipart/alternative"
    related = alternative[1]
    assert related.get_content_type() == "multipart/related"
    html_part, image_part = related.get_payload()
    [cid] = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
    assert image_part.get_content_type() == "image/png" and image_part["Content-ID"] == f"<{cid}>"
    png = image_part.get_payload(decode=True)
    assert png == escalation_chart(context, "zh").png  # intact, and drawn from the queued context
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (640, 300)
    assert "11-16 | 12 | 0 | 12 | 12" in alternative[0].get_content()
