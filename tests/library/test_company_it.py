"""The company-it profile (seed 000 P13): purchases by amount (SC-11), permission changes (SC-15), the
leaver's equipment return, and 综合管理部's monthly and yearly duties (D-081, D-082)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pendulum
import pytest

from duly.checking import check_paths
from policies.chain import Action, DecisionError, RouteError, apply_action, start_request
from policies.durations import add_duration
from policies.recurrence import period_containing

PROFILE = "company-it"
SHANGHAI = "Asia/Shanghai"
PERMISSION = {"system": "财务系统/总账模块", "access": "只读", "business": "finance", "reason": "核对回款"}


def local(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def test_the_profile_checks_without_errors_or_warnings(profile) -> None:
    report = check_paths([profile.folder])
    assert report.problems == []
    assert sorted(p.id for p in report.policies) == [
        "it-hardware-purchase", "it-operations-calendar", "leaver-equipment-return", "permission-change",
        "self-purchase-filing"]


@pytest.mark.parametrize("policy_id", ["it-hardware-purchase", "leaver-equipment-return", "permission-change",
                                       "self-purchase-filing"])
def test_every_step_is_due_at_the_end_of_the_next_working_day(profile, work_calendar, policy_id: str) -> None:
    """[default] 1 working day (000 L1203 「及時辦理」): Wednesday 2026-09-30 16:00 → Thursday 2026-10-08, after
    the National Day block."""
    policy = profile.approval(policy_id)
    assert {add_duration(local(2026, 9, 30, 16), step.sla, work_calendar).at.isoformat()
            for step in policy.steps} == {"2026-10-08T23:59:59+08:00"}


class TestHardwarePurchase:
    """AC-12 / SC-11 (000 L1151–1153): 5万元（含）以下 → 综合管理部; 5万元以上 → 财务总监."""

    def route(self, profile, amount: str, requester: str = "fang.ming") -> list[tuple[str, bool, tuple[str, ...]]]:
        routes = profile.route("it-hardware-purchase", requester, items="笔记本电脑 10台", amount=amount)
        return [(r.step.id, r.applies, r.assignees) for r in routes]

    def test_sc11_fifty_thousand_exactly_goes_to_the_head_of_general_management_only(self, profile) -> None:
        assert self.route(profile, "50000.00") == [("general-management", True, ("lin.hai",)), ("cfo", False, ())]

    def test_sc11_one_fen_more_goes_to_the_cfo_only(self, profile) -> None:
        assert self.route(profile, "50000.01") == [("general-management", False, ()), ("cfo", True, ("meng.fanhua",))]

    def test_sc11_above_the_threshold_the_head_of_general_management_cannot_approve(self, profile) -> None:
        policy = profile.approval("it-hardware-purchase")
        state = start_request(policy, profile.plan(policy.id, "fang.ming", items="服务器 2台", amount="50000.01"),
                              "fang.ming")
        now = local(2026, 6, 8, 9)
        with pytest.raises(DecisionError) as excinfo:
            apply_action(policy, state, Action(verb="approve", actor="lin.hai"), org=profile.org, now=now)
        assert excinfo.value.reason == "not_assigned"
        decision = apply_action(policy, state, Action(verb="approve", actor="meng.fanhua"), org=profile.org, now=now)
        assert decision.finished == "approved"

    def test_the_head_of_general_management_buying_for_his_department_is_refused_a_route(self, profile) -> None:
        """He alone approves up to ¥50,000 and may not approve his own request (see the policy's comment)."""
        with pytest.raises(RouteError, match="only the requester"):
            profile.plan("it-hardware-purchase", "lin.hai", items="打印机", amount="3000")

    def test_sc11_a_departments_own_purchase_is_filed_with_general_management(self, profile) -> None:
        assert profile.asked("self-purchase-filing", "tian.yu", items="移动硬盘", amount="8000",
                             bought_on="2026-06-03", invoice="f-20260603-0007") == [
            ("register", ("song.jia", "xu.fang"))]
        assert not profile.approval("self-purchase-filing").step("register").allows("reject")


class TestPermissionChange:
    """AC-18 / SC-15 (000 L1205): own department → business department approves or co-signs → 综合管理部."""

    def test_sc15_a_sales_user_asks_for_read_access_to_finance(self, profile) -> None:
        planned = profile.plan("permission-change", "fang.ming", **PERMISSION)
        assert [(p.step_id, p.assignees, p.mode) for p in planned] == [
            ("own-department", ("wei.qiang",), "any"),
            ("business-department", ("cao.lei", "han.xue"), "any"),   # approve or co-sign: either closes it
            ("execute", ("gao.xiang", "song.jia"), "any")]

    def test_sc15_either_finance_approver_closes_the_business_step(self, profile) -> None:
        policy = profile.approval("permission-change")
        state = start_request(policy, profile.plan(policy.id, "fang.ming", **PERMISSION), "fang.ming")
        now = local(2026, 6, 8, 9)
        for actor in ("wei.qiang", "cao.lei"):
            state = apply_action(policy, state, Action(verb="approve", actor=actor), org=profile.org, now=now).after
        assert state.open_step == 2

    def test_sc15_a_finance_refusal_closes_the_request_with_its_reason(self, profile) -> None:
        policy = profile.approval("permission-change")
        state = start_request(policy, profile.plan(policy.id, "fang.ming", **PERMISSION), "fang.ming")
        now = local(2026, 6, 8, 9)
        state = apply_action(policy, state, Action(verb="approve", actor="wei.qiang"), org=profile.org, now=now).after
        decision = apply_action(policy, state, Action(verb="reject", actor="han.xue", reason="非本岗位所需"),
                                org=profile.org, now=now)
        assert (decision.finished, decision.reason) == ("rejected", "非本岗位所需")

    def test_sc15_the_sales_head_asking_for_himself_goes_to_his_leader_in_charge(self, profile) -> None:
        assert profile.asked("permission-change", "wei.qiang", **PERMISSION)[0] == ("own-department", ("lu.gang",))

    def test_a_finance_user_asking_for_finance_access_is_not_approved_twice_by_one_person(self, profile) -> None:
        assert profile.asked("permission-change", "peng.dan", **PERMISSION)[:2] == [
            ("own-department", ("han.xue",)), ("business-department", ("cao.lei",))]


class TestLeaverEquipmentReturn:
    """AC-20, P13 part (000 L1159): everything issued goes back to 综合管理部 before the leaver leaves."""

    def test_the_leaver_hands_the_equipment_back_to_the_asset_administrators(self, profile) -> None:
        assert profile.asked("leaver-equipment-return", "he.jia", last_day="2026-06-30",
                             items="笔记本电脑 ZC-2024-118 及电源适配器") == [
            ("general-check", ("song.jia", "xu.fang"))]

    def test_an_asset_administrator_who_leaves_is_checked_by_the_other(self, profile) -> None:
        assert profile.asked("leaver-equipment-return", "xu.fang", last_day="2026-06-30",
                             items="台式机 ZC-2023-020") == [("general-check", ("song.jia",))]


class TestOperationsCalendar:
    """D-082 monthly backup, D-081 monthly consumables and yearly objectives (000 L1285, L1161, L1139–1141)."""

    def test_a_year_has_twelve_backups_twelve_purchases_and_one_set_of_objectives(self, profile, work_calendar) -> None:
        found = Counter((o.obligation.id, o.owner) for o in profile.calendar("it-operations-calendar").occurrences(
            work_calendar, date(2026, 1, 1), date(2026, 12, 31)))
        assert found == {("D-082", "general"): 12, ("D-081-consumables", "general"): 12,
                         ("D-081-objectives", "general"): 1}

    @pytest.mark.parametrize(("month", "due"), [(2, "2026-02-28T23:59:59+08:00"),    # the make-up Saturday
                                                (5, "2026-05-31T23:59:59+08:00"),    # a Sunday, kept
                                                (12, "2026-12-31T23:59:59+08:00")])
    def test_the_monthly_backup_is_due_on_the_last_day_of_its_month(self, profile, work_calendar, month: int,
                                                                    due: str) -> None:
        found = profile.calendar("it-operations-calendar").due_for(
            "D-082", period_containing(date(2026, month, 1), "monthly"), work_calendar)
        assert (found.at.isoformat(), found.shift) == (due, "none")

    def test_the_backup_reminds_the_it_administrators_and_the_objectives_the_head(self, profile) -> None:
        policy = profile.calendar("it-operations-calendar")
        roles = {o.id: policy.rules_for(o).owner.role for o in policy.obligations}
        assert roles == {"D-082": "it_admin", "D-081-consumables": "asset_admin", "D-081-objectives": None}
