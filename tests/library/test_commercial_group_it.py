"""The commercial-group-it profile (seed 000 P9): who is asked at each step, with the SLA of D-074 (SC-13),
and the yearly IT budgets (D-075)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pendulum
import pytest

from duly.checking import check_paths
from policies.chain import Action, DecisionError, apply_action, start_request
from policies.durations import add_duration
from policies.models import ApprovalPolicy
from policies.recurrence import period_containing
from policies.routing import Context, resolve_people

PROFILE = "commercial-group-it"
SHANGHAI = "Asia/Shanghai"
PROCUREMENT = {"category": "网络设备", "items": "核心交换机 2台", "amount": "180000", "reason": "江北项目网络改造"}


def local(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def sla_deadline(policy: ApprovalPolicy, step_id: str, opened: pendulum.DateTime, calendar) -> str:
    return add_duration(opened, policy.step(step_id).sla, calendar, tz=policy.timezone).at.isoformat()


def test_the_profile_checks_without_errors_or_warnings(profile) -> None:
    report = check_paths([profile.folder])
    assert report.problems == []
    assert sorted(p.id for p in report.policies) == [
        "account-provisioning", "confidential-data-copy", "equipment-scrapping", "internet-access",
        "it-budget-calendar", "it-budget-review", "it-centralised-procurement"]


@pytest.mark.parametrize("policy_id", ["account-provisioning", "confidential-data-copy", "equipment-scrapping",
                                       "internet-access", "it-budget-review", "it-centralised-procurement"])
def test_sc13_every_approval_step_is_due_24_hours_later_on_working_days(profile, work_calendar,
                                                                        policy_id: str) -> None:
    """D-074 (000 L803) 「在正常工作日內務必在24小時內完成審批」: Friday 17:00 → Monday 17:00."""
    policy = profile.approval(policy_id)
    assert {sla_deadline(policy, step.id, local(2026, 6, 5, 17), work_calendar) for step in policy.steps} == {
        "2026-06-08T17:00:00+08:00"}


class TestCentralisedProcurement:
    """AC-11 (000 L769): 信息部 assessment → 信息部 and 财务部 heads 会签 → the leader in charge of 信息部."""

    def test_a_leasing_request_is_assessed_then_cosigned_then_approved_by_the_it_leader_in_charge(
            self, profile) -> None:
        planned = profile.plan("it-centralised-procurement", "hu.bin", **PROCUREMENT)
        assert [(p.step_id, p.assignees, p.mode) for p in planned] == [
            ("it-assessment", ("he.zhiqiang", "ran.xiaoyu"), "any"),
            ("it-finance-review", ("deng.kai", "zhong.hui"), "all"),
            ("leader-in-charge", ("luo.wenbin",), "any")]

    def test_an_assessor_who_files_leaves_the_assessment_to_the_other(self, profile) -> None:
        assert profile.asked("it-centralised-procurement", "he.zhiqiang", **PROCUREMENT)[0] == (
            "it-assessment", ("ran.xiaoyu",))

    def test_the_it_head_who_files_leaves_the_finance_head_alone_on_the_cosign(self, profile) -> None:
        assert profile.asked("it-centralised-procurement", "deng.kai", **PROCUREMENT)[1] == (
            "it-finance-review", ("zhong.hui",))

    def test_the_cosign_is_not_closed_by_the_finance_head_alone(self, profile) -> None:
        policy = profile.approval("it-centralised-procurement")
        state = start_request(policy, profile.plan(policy.id, "hu.bin", **PROCUREMENT), "hu.bin")
        now = local(2026, 6, 8, 10)
        for actor in ("he.zhiqiang", "zhong.hui"):
            state = apply_action(policy, state, Action(verb="approve", actor=actor), org=profile.org, now=now).after
        assert state.open_step == 1 and state.steps[1].undecided == ("deng.kai",)
        state = apply_action(policy, state, Action(verb="approve", actor="deng.kai"), org=profile.org, now=now).after
        assert state.open_step == 2

    def test_a_refusal_needs_its_reason_written_and_ends_the_request(self, profile) -> None:
        """「未被批準的采購申請,在采購需求表上寫明原因,并將其返回給需求部門」."""
        policy = profile.approval("it-centralised-procurement")
        state = start_request(policy, profile.plan(policy.id, "hu.bin", **PROCUREMENT), "hu.bin")
        now = local(2026, 6, 8, 10)
        with pytest.raises(DecisionError) as excinfo:
            apply_action(policy, state, Action(verb="reject", actor="ran.xiaoyu"), org=profile.org, now=now)
        assert excinfo.value.reason == "reason_required"
        decision = apply_action(policy, state, Action(verb="reject", actor="ran.xiaoyu", reason="可利旧设备"),
                                org=profile.org, now=now)
        assert (decision.finished, decision.reason) == ("rejected", "可利旧设备")
        assert policy.outcomes.rejected is not None and "退回需求部门" in policy.outcomes.rejected.record


class TestAccountProvisioning:
    """AC-17 (000 L799–803) with the SLA of D-074 and the scenario SC-13."""

    OA = {"system": "OA办公系统", "user": "吴倩 0231", "access": "普通用户", "reason": "新入职"}

    def test_an_oa_account_goes_to_hr_admin_then_an_it_permission_administrator(self, profile) -> None:
        routes = profile.route("account-provisioning", "wu.qian", **self.OA)
        assert [(r.step.id, r.applies, r.assignees) for r in routes] == [
            ("hr-admin", True, ("xie.ting",)), ("it-open", True, ("qin.yue", "zhou.jian")),
            ("finance", False, ()), ("finance-open", False, ())]

    def test_a_kingdee_account_goes_to_finance_then_a_finance_permission_administrator(self, profile) -> None:
        assert profile.asked("account-provisioning", "wu.qian", **{**self.OA, "system": "金蝶财务系统"}) == [
            ("finance", ("zhong.hui",)), ("finance-open", ("liu.chang", "zhang.lu"))]

    def test_sc13_a_request_filed_friday_17_00_is_due_monday_17_00(self, profile, work_calendar) -> None:
        policy = profile.approval("account-provisioning")
        assert sla_deadline(policy, "hr-admin", local(2026, 6, 5, 17), work_calendar) == "2026-06-08T17:00:00+08:00"

    def test_the_national_day_block_does_not_count(self, profile, work_calendar) -> None:
        policy = profile.approval("account-provisioning")
        assert sla_deadline(policy, "hr-admin", local(2026, 9, 30, 17), work_calendar) == "2026-10-08T17:00:00+08:00"

    def test_the_make_up_saturday_counts(self, profile, work_calendar) -> None:
        """Saturday 2026-10-10 is a 调休 working day: 7 hours on Friday, 17 on Saturday."""
        policy = profile.approval("account-provisioning")
        assert sla_deadline(policy, "it-open", local(2026, 10, 9, 17), work_calendar) == "2026-10-10T17:00:00+08:00"


class TestBudgets:
    """AC-15 (b), (c): the 会签 review; D-075: the three yearly budgets."""

    def test_a_budget_is_reviewed_by_the_it_and_finance_heads_together(self, profile) -> None:
        planned = profile.plan("it-budget-review", "tan.jing", budget="IT设备年度采购预算", year="2027",
                               amount="360000", summary="各部门电脑更新", sheet="f-budget-2027")
        assert [(p.step_id, p.assignees, p.mode) for p in planned] == [
            ("it-finance-review", ("deng.kai", "zhong.hui"), "all")]

    def test_the_budgets_for_2027_are_due_on_31_december_2026(self, profile, work_calendar) -> None:
        found = {(o.obligation.id, o.owner): o.due.at.isoformat() for o in profile.calendar(
            "it-budget-calendar").occurrences(work_calendar, date(2026, 1, 1), date(2026, 12, 31))}
        due = "2026-12-31T23:59:59+08:00"
        assert found == {("D-075a", "project_jb"): due, ("D-075a", "project_na"): due,
                         ("D-075b", "it"): due, ("D-075c", "it"): due}

    def test_the_budgets_for_2028_are_provisional_until_the_2027_holidays_are_published(
            self, profile, work_calendar) -> None:
        due = profile.calendar("it-budget-calendar").due_for(
            "D-075b", period_containing(date(2027, 6, 1), "yearly"), work_calendar)
        assert (due.at.isoformat(), due.provisional) == ("2027-12-31T23:59:59+08:00", True)

    def test_the_o_and_m_and_equipment_budgets_go_through_the_profiles_review(self, profile) -> None:
        policy = profile.calendar("it-budget-calendar")
        reviews = {o.id: policy.rules_for(o).review for o in policy.obligations}
        assert reviews == {"D-075a": None, "D-075b": "it-budget-review", "D-075c": "it-budget-review"}
        assert isinstance(profile.policies["it-budget-review"], ApprovalPolicy)

    def test_a_project_is_escalated_to_its_own_leader_in_charge(self, profile) -> None:
        [rung] = profile.calendar("it-budget-calendar").rules_for("D-075a").escalate
        told = Counter(c.person_id for code in ("project_jb", "project_na")
                       for c in resolve_people(rung.notify, profile.org, Context(owner_department=code)))
        assert told == {"luo.wenbin": 1, "jiang.lihua": 1}


class TestOtherApprovals:
    def test_scrapping_is_arranged_by_finance_or_administration_then_booked_by_finance(self, profile) -> None:
        planned = profile.plan("equipment-scrapping", "he.zhiqiang", asset="IT-2019-0042", item="联想 M720 台式机",
                               mode="被动报废（损坏无法简单修复）", reason="主板损坏")
        assert [(p.step_id, p.assignees, p.mode) for p in planned] == [
            ("arrange", ("xiang.xiaodong", "yang.fan"), "any"), ("book", ("chen.si", "li.na"), "any")]

    def test_internet_access_for_a_new_office_goes_to_the_head_of_hq_it(self, profile) -> None:
        assert profile.asked("internet-access", "tan.jing", site="江北项目", address="江北区示例路1号",
                             bandwidth="200M专线", carrier="中国电信", contact="谭静 13800000000",
                             opens_on="2026-12-01") == [("hq-it", ("deng.kai",))]

    @pytest.mark.parametrize(("requester", "leader"), [("hu.bin", "zeng.lin"), ("zeng.lin", "luo.wenbin")])
    def test_copying_confidential_data_needs_the_requesters_leader(self, profile, requester: str,
                                                                   leader: str) -> None:
        assert profile.asked("confidential-data-copy", requester, data="商户租金明细", recipient="审计事务所",
                             purpose="年度审计", medium="电子邮件") == [("leader", (leader,))]
