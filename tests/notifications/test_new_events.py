"""The notifications queued where things happen: a request filed, a step's deadline near, a delegation created, an
event-triggered report opened, and the weekly points. Each is an outbox row written by the real store function in
its own transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select, update

from flows.report import escalation_report
from notifications.email import render
from store.approvals import file_request
from store.delegations import create_delegation
from store.errors import InvalidInputError
from store.event_obligations import report_event
from store.obligations import materialise_policy
from store.points import half_year, points
from store.sweep import claim_due, fire_thresholds
from store.tables import DelegationRow, ObligationRow, OutboxRow, PersonRow, RequestRow
from store.weekly_points import ranks, weeks_reported
from tests.profiles import profile_settings

SHANGHAI = "Asia/Shanghai"
FILED = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)  # Wednesday before the National Day block


class Abort(Exception):
    """Raised inside a transaction to roll it back."""


async def _outbox(runtime, event: str) -> list[OutboxRow]:
    async with runtime.read_sessions() as session:
        return list((await session.execute(select(OutboxRow).where(OutboxRow.event == event)
                                           .order_by(OutboxRow.id))).scalars())


@pytest.fixture
async def profile(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[object]:
    """The runtime of the library profile named by `@pytest.mark.parametrize("profile", [...], indirect=True)`."""
    from duly.bootstrap import prepare
    from flows import runtime as flow_runtime

    settings = profile_settings(request.param, database_url, tmp_path / "data")
    runtime = await prepare(settings, now=FILED)
    flow_runtime.use(runtime, flow_runtime.delivery_settings(settings))
    yield runtime
    flow_runtime.clear()
    await runtime.close()


class TestRequestFiled:
    async def test_the_requester_is_told_which_step_waits_on_whom_and_until_when(self, runtime):
        async with runtime.write() as session:
            request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                         form={"items": "交换机", "amount": "48000"}, requester_id="huang.lei",
                                         now=FILED)

        [row] = await _outbox(runtime, "request_filed")
        assert (row.recipient_id, row.event_key) == ("huang.lei", f"request:{request.id}:filed:huang.lei")
        context = row.context
        assert context["step"] == {"title": "综合管理部负责人审批", "due_at": "2026-10-08T16:00:00+08:00",
                                   "provisional": False}
        assert (context["waiting_on"], context["link"]) == ("刘洋", f"{runtime.public_url}/requests/{request.id}")
        assert context["request"]["requester_name"] == "黄磊"
        assert {"label": "单笔合同金额（元）", "value": "¥48,000.00", "money": True} in context["request"]["fields"]
        assert render("request_filed", context).subject == \
            f"已提交：信息化硬件采购申请 #{request.id}，等待综合管理部负责人审批（10月8日 16:00 前）"
        assert [m.recipient_id for m in await _outbox(runtime, "step_assigned")] == ["liu.yang"]

    async def test_a_filing_rolled_back_leaves_no_message(self, runtime):
        with pytest.raises(Abort):
            async with runtime.write() as session:
                await file_request(session, runtime, policy_id="it-hardware-purchase",
                                   form={"items": "交换机", "amount": "48000"}, requester_id="huang.lei", now=FILED)
                assert len((await session.execute(select(OutboxRow))).scalars().all()) == 2  # queued, uncommitted
                raise Abort

        async with runtime.read_sessions() as session:
            assert (await session.execute(select(RequestRow))).first() is None
        assert await _outbox(runtime, "request_filed") == []


REMINDED_REVIEW = """\
kind: approval
id: reminded-review
title: 机房改造评审
form:
  subject: {type: text, label: 事项}
steps:
  - id: head
    title: 部门负责人审批
    approvers: {head_of: requester}
    sla: 24 hours on working days
    remind: [4 hours]
    escalate:
      - {after: 1 working day, reassign: {person: wang.xiuying}}
"""


async def _sweep(runtime, at) -> dict[str, int]:
    async with runtime.write() as session:
        due = await claim_due(session, runtime, now=at, limit=100)
        return await fire_thresholds(session, runtime, due, now=at)


class TestStepReminder:
    """SLA due 2026-10-08 16:00; `remind: [4 hours]` fires at 12:00; the reassignment a working day after."""

    async def _file(self, runtime) -> RequestRow:
        from policies.loader import load_policy_text

        async with runtime.write() as session:
            await runtime.registry.sync(session, [load_policy_text(REMINDED_REVIEW, file="reminded-review.yaml")],
                                        now=FILED)
        async with runtime.write() as session:
            return await file_request(session, runtime, policy_id="reminded-review", form={"subject": "机房改造"},
                                      requester_id="huang.lei", now=FILED)

    async def test_a_remind_threshold_queues_a_step_reminder_not_an_assignment(self, runtime):
        request = await self._file(runtime)
        assigned_before = await _outbox(runtime, "step_assigned")

        assert (await _sweep(runtime, pendulum.datetime(2026, 10, 8, 12, 30, tz=SHANGHAI)))["fired"] == 1

        [reminder] = await _outbox(runtime, "step_reminder")
        assert reminder.recipient_id == "zheng.hao" and reminder.event_key.endswith(":remind-1:zheng.hao")
        assert reminder.context["step"]["due_at"] == "2026-10-08T16:00:00+08:00"
        assert reminder.context["link"] == f"{runtime.public_url}/requests/{request.id}"
        assert await _outbox(runtime, "step_assigned") == assigned_before  # no second "please approve"
        assert render("step_reminder", reminder.context).subject == \
            f"提醒：请在 10月8日 16:00 前审批：机房改造评审 #{request.id}"

    async def test_a_reassignment_is_still_an_assignment(self, runtime):
        await self._file(runtime)

        await _sweep(runtime, pendulum.datetime(2026, 10, 10, 12, 0, tz=SHANGHAI))  # reminder skipped: SLA passed

        assert await _outbox(runtime, "step_reminder") == []
        assert [m.recipient_id for m in await _outbox(runtime, "step_assigned")] == ["zheng.hao", "wang.xiuying"]


class TestDelegated:
    STARTS = pendulum.datetime(2026, 11, 16, tz=SHANGHAI)

    async def _create(self, runtime, **changes):
        arguments = {"from_id": "liu.yang", "to_id": "wang.xiuying", "starts": self.STARTS,
                     "ends": self.STARTS.add(days=5), "policies": ["it-hardware-purchase"],
                     "known_policies": ["it-hardware-purchase"], "reason": "外出培训", "created_by": "liu.yang",
                     "now": self.STARTS.subtract(days=1)}
        async with runtime.write() as session:
            return await create_delegation(session, runtime, **{**arguments, **changes})

    async def test_the_delegate_is_told_who_for_when_and_which_policies(self, runtime):
        row = await self._create(runtime)

        [mail] = await _outbox(runtime, "delegated")
        assert (mail.recipient_id, mail.event_key) == ("wang.xiuying", f"delegation:{row.id}:created:wang.xiuying")
        assert mail.context == {
            "delegation_id": row.id, "from_name": "刘洋", "from_department": "综合管理部",
            "starts_at": "2026-11-16T00:00:00+08:00", "ends_at": "2026-11-21T00:00:00+08:00",
            "last_day": "2026-11-20", "policies": ["信息化硬件采购申请"], "reason": "外出培训",
            "link": f"{runtime.public_url}/inbox"}
        assert render("delegated", mail.context).subject == \
            "刘洋 委托您代为审批（11月16日 – 11月20日）：信息化硬件采购申请"

    async def test_a_refused_delegation_tells_nobody(self, runtime):
        await self._create(runtime)

        with pytest.raises(InvalidInputError):
            await self._create(runtime, starts=self.STARTS.add(days=1))  # overlaps the first

        assert len(await _outbox(runtime, "delegated")) == 1
        async with runtime.read_sessions() as session:
            assert len((await session.execute(select(DelegationRow))).scalars().all()) == 1


CASE_AT = pendulum.datetime(2026, 6, 10, 16, 0, tz=SHANGHAI)  # a Wednesday


async def _report_event(runtime, reporter: str, event: str, reference: str):
    async with runtime.write() as session:
        person = await session.get(PersonRow, reporter)
        return await report_event(session, runtime, event=event, reference=reference, occurred_at=CASE_AT,
                                  reporter=person, now=CASE_AT.add(hours=1))


async def _deactivate(runtime, person_id: str) -> None:
    async with runtime.write() as session:
        await session.execute(update(PersonRow).where(PersonRow.id == person_id).values(active=False))


class TestObligationOpened:
    @pytest.mark.parametrize("profile", ["health-supervision"], indirect=True)
    async def test_the_role_holders_of_the_department_are_told_once_per_reference(self, profile):
        report = await _report_event(profile, "xiao.ming", "case_created", "案-2026-0610-01")
        [row] = report.opened

        mails = await _outbox(profile, "obligation_opened")
        assert sorted((m.recipient_id, m.event_key) for m in mails) == [
            ("xiao.ming", f"obligation:{row.id}:opened:xiao.ming"), ("yu.hai", f"obligation:{row.id}:opened:yu.hai")]
        context = mails[0].context
        assert context["event"] == {"name": "case_created", "reference": "案-2026-0610-01",
                                    "occurred_at": "2026-06-10T16:00:00+08:00", "reporter_name": "肖明"}
        assert (context["obligation"]["due_at"], context["obligation"]["owner_department"]) == (
            "2026-06-17T23:59:59+08:00", "公共卫生监督科")
        assert context["obligation"]["period"] == "案-2026-0610-01"  # the event's reference, not the internal key
        assert context["link"] == f"{profile.public_url}/obligations/{row.id}"
        assert render("obligation_opened", context).subject.startswith("新报送任务：请在 6月17日 23:59 前报送：")

        again = await _report_event(profile, "yu.hai", "case_created", "案-2026-0610-01")
        assert not again.opened and len(await _outbox(profile, "obligation_opened")) == 2

    @pytest.mark.parametrize("profile", ["health-supervision"], indirect=True)
    async def test_a_role_holder_who_has_left_is_not_told(self, profile):
        await _deactivate(profile, "yu.hai")

        await _report_event(profile, "xiao.ming", "case_created", "案-2026-0610-02")

        assert [m.recipient_id for m in await _outbox(profile, "obligation_opened")] == ["xiao.ming"]

    @pytest.mark.parametrize("profile", ["property-service-centre"], indirect=True)
    async def test_without_an_owner_role_the_department_head_is_told_while_active(self, profile):
        await _report_event(profile, "tang.lei", "departure_confirmed", "离职-2026-031")
        assert [m.recipient_id for m in await _outbox(profile, "obligation_opened")] == ["kong.deming"]

        await _deactivate(profile, "kong.deming")
        await _report_event(profile, "tang.lei", "departure_confirmed", "离职-2026-032")
        assert len(await _outbox(profile, "obligation_opened")) == 1


# --- weekly points: the health bureau's weekly information items (D-066 Fri 23:59:59, D-069 Fri 12:00) and the
# office's bulletin (D-068 Mon 12:00); +1 on time, 0 late, -1 missing -------------------------------------------

MONDAY = pendulum.datetime(2026, 11, 23, 9, 0, tz=SHANGHAI)  # W48 begins: W47 (16–22 Nov) is reported
BUREAU_HEADS = ["chai.yong", "gong.xue", "lei.zhenhua", "ma.zhigang", "mu.qing", "wang.xiaodong", "yang.fan",
                "zhang.wei", "zhou.ping"]


async def _bureau_world(runtime) -> None:
    """November's obligations; 医政科 handed in W47's two items on time and one of W46's late (the other is
    missing); every other department handed in nothing."""
    async with runtime.write() as session:
        for version_id, loaded in runtime.registry.calendars():
            await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=MONDAY,
                                     first=date(2026, 11, 1), last=date(2026, 11, 30))
    async with runtime.write() as session:
        rows = (await session.execute(select(ObligationRow).where(
            ObligationRow.owner_department == "medical_section", ObligationRow.policy_id == "information-items")
            .order_by(ObligationRow.due_at, ObligationRow.obligation_key))).scalars().all()
        by_day = {(pendulum.instance(r.due_at).in_timezone(SHANGHAI).date(), r.obligation_key): r for r in rows}
        for key in ("D-066", "D-069"):
            by_day[(date(2026, 11, 20), key)].state = "submitted"
        by_day[(date(2026, 11, 13), "D-066")].state, by_day[(date(2026, 11, 13), "D-066")].late = "submitted", True
        session.add_all(rows)


async def _points_mails(runtime) -> dict[str, dict]:
    return {m.recipient_id: m.context for m in await _outbox(runtime, "weekly_points")}


class TestWeeklyPoints:
    def test_the_week_reported_is_the_last_complete_iso_week(self):
        week, previous = weeks_reported(MONDAY, tz=SHANGHAI)
        assert (week.key, week.start, week.end) == ("2026-W47", date(2026, 11, 16), date(2026, 11, 22))
        assert previous.key == "2026-W46"
        assert weeks_reported(pendulum.datetime(2026, 11, 22, 23, 59, tz=SHANGHAI), tz=SHANGHAI)[0].key == "2026-W46"
        assert weeks_reported(pendulum.datetime(2027, 1, 4, 9, tz=SHANGHAI), tz=SHANGHAI)[0].key == "2026-W53"

    def test_equal_totals_share_a_rank_and_the_next_rank_skips(self):
        assert ranks({"a": 2, "b": -1, "c": -1, "d": -2}) == {"a": 1, "b": 2, "c": 2, "d": 4}

    @pytest.mark.parametrize("profile", ["health-bureau"], indirect=True)
    async def test_each_head_gets_the_week_the_week_before_and_the_rank(self, profile, prefect_harness):
        await _bureau_world(profile)

        totals = await escalation_report(now=MONDAY)

        assert totals["points_queued"] == 9
        mails = await _points_mails(profile)
        assert sorted(mails) == BUREAU_HEADS
        medical = mails["zhang.wei"]
        assert (medical["week"], medical["previous_week"], medical["half_year"]) == ("2026-W47", "2026-W46", "2026-H2")
        [section] = medical["departments"]
        assert (section["name"], section["total"], section["previous_total"], section["change"]) == ("医政科", 2, -1, 3)
        assert (section["rank"], section["ranked"]) == (1, 9)
        [items] = section["policies"]
        assert (items["id"], items["points"], items["previous"]) == ("information-items", 2, -1)
        assert items["counts"] == {"on_time": 2, "late": 0, "missing": 0}
        async with profile.read_sessions() as session:
            [tally] = [p.tally for p in await points(session, profile, half=half_year("2026-H2"), now=MONDAY,
                                                     departments={"medical_section"})
                       if p.policy_id == "information-items"]
        assert items["half_year_total"] == tally.total  # as GET /api/points shows it
        assert medical["link"] == f"{profile.public_url}/calendar"
        assert render("weekly_points", medical).subject == "积分周报（2026-W47）：医政科 本周 +2 分，排名 1/9"

        office = mails["wang.xiaodong"]["departments"][0]
        assert {p["id"]: p["points"] for p in office["policies"]} == {"information-bulletin": -1,
                                                                      "information-items": -1}
        # ahead: 医政科 (+2) and five with -1 (局领导: D-069 only; the four units: D-066 only); 疾控科 and 规划财务科
        # share the rank with -2
        assert (office["total"], office["rank"]) == (-2, 7)
        assert [mails[h]["departments"][0]["rank"] for h in ("yang.fan", "zhou.ping", "ma.zhigang")] == [7, 7, 2]

    @pytest.mark.parametrize("profile", ["health-bureau"], indirect=True)
    async def test_a_rerun_in_the_same_week_queues_nothing_and_a_head_who_left_gets_nothing(self, profile,
                                                                                            prefect_harness):
        await _bureau_world(profile)
        await _deactivate(profile, "chai.yong")

        first = await escalation_report(now=MONDAY)
        again = await escalation_report(now=MONDAY.add(days=2))

        assert (first["points_queued"], again["points_queued"]) == (8, 0)
        assert "chai.yong" not in await _points_mails(profile)

    @pytest.mark.parametrize("profile", ["health-bureau"], indirect=True)
    async def test_a_monthly_run_sends_no_weekly_points(self, profile, prefect_harness):
        await _bureau_world(profile)

        assert (await escalation_report(now=MONDAY, period="month"))["points_queued"] == 0
        assert await _points_mails(profile) == {}

    async def test_an_organisation_without_scored_policies_gets_no_points_mail(self, runtime, prefect_harness):
        assert (await escalation_report(now=MONDAY))["points_queued"] == 0
