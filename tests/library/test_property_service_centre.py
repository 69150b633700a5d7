"""The property-service-centre profile (seed 003 S3): fine waivers routed to the issuing department (SC-17),
the permission form after a resignation or transfer (AC-19, N illegible), the equipment handover before
leaving (AC-20), issued OA documents (AC-33), computer purchases (AC-14) and a colleague's computer (AC-28)."""

from __future__ import annotations

import pendulum
import pytest

from duly.checking import check_paths
from policies.chain import Action, DecisionError, apply_action, start_request
from policies.events import due_after_event

PROFILE = "property-service-centre"
SHANGHAI = "Asia/Shanghai"
FINE = {"issuer": "security", "ticket": "AB-2026-0615", "amount": "200", "waive": "全部减免",
        "reason": "车辆临停已补办手续"}


def local(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def test_the_profile_checks_without_errors_or_warnings(profile) -> None:
    report = check_paths([profile.folder])
    assert report.problems == []
    assert sorted(p.id for p in report.policies) == [
        "colleague-computer-use", "computer-purchase", "equipment-handover", "fine-waiver", "issued-document-change",
        "offboarding-calendar"]


class TestFineWaiver:
    """AC-04 / SC-17 (003 L362): 「向開具罰單的部門負責人及上級領導進行審批,不得發往其他無審批權限的領導處」."""

    def test_sc17_a_fine_from_security_goes_to_its_head_then_his_superior_never_the_employees_head(
            self, profile) -> None:
        asked = profile.asked("fine-waiver", "deng.lin", **FINE)
        assert asked == [("issuer-head", ("xiong.wei",)), ("issuer-superior", ("peng.zhiyuan",))]
        assert "jin.li" not in {who for _, people in asked for who in people}

    def test_a_fine_from_the_employees_own_department_goes_to_its_head(self, profile) -> None:
        assert profile.asked("fine-waiver", "deng.lin", **{**FINE, "issuer": "customer"}) == [
            ("issuer-head", ("jin.li",)), ("issuer-superior", ("peng.zhiyuan",))]

    @pytest.mark.parametrize(("verb", "extra"), [("transfer", {"to": "jin.li"}),
                                                 ("add_approver", {"people": ("jin.li",), "position": "after"})])
    def test_sc17_the_waiver_cannot_be_sent_to_a_leader_without_authority(self, profile, verb: str,
                                                                          extra: dict) -> None:
        policy = profile.approval("fine-waiver")
        state = start_request(policy, profile.plan(policy.id, "deng.lin", **FINE), "deng.lin")
        with pytest.raises(DecisionError) as excinfo:
            apply_action(policy, state, Action(verb=verb, actor="xiong.wei", **extra), org=profile.org,
                         now=local(2026, 6, 15, 10))
        assert excinfo.value.reason == "not_allowed"

    def test_sc17_both_approvals_apply_the_waiver(self, profile) -> None:
        policy = profile.approval("fine-waiver")
        state = start_request(policy, profile.plan(policy.id, "deng.lin", **FINE), "deng.lin")
        now = local(2026, 6, 15, 10)
        state = apply_action(policy, state, Action(verb="approve", actor="xiong.wei"), org=profile.org, now=now).after
        decision = apply_action(policy, state, Action(verb="approve", actor="peng.zhiyuan"), org=profile.org, now=now)
        assert decision.finished == "approved"
        assert policy.outcomes.approved is not None and policy.outcomes.approved.allows == "罚款按审批结果减免"


class TestPermissionFormAfterLeaving:
    """AC-19 / D-116 (003 L374): N is illegible; the default is 3 days from the confirmation."""

    @pytest.mark.parametrize(("confirmed", "due"), [
        ((2026, 6, 2, 11), "2026-06-05T23:59:59+08:00"),
        ((2026, 9, 24, 11), "2026-09-27T23:59:59+08:00"),   # a Sunday inside 中秋: kept, the seed has no rule
    ])
    def test_the_permission_form_is_due_3_days_after_the_confirmation(self, profile, work_calendar,
                                                                       confirmed: tuple[int, ...], due: str) -> None:
        policy = profile.calendar("offboarding-calendar")
        rules = policy.rules_for("D-116")
        found = due_after_event(local(*confirmed), rules, work_calendar, policy.timezone)
        assert found.at.isoformat() == due
        assert rules.owner.codes == ("property_it",)


class TestEquipmentHandover:
    """AC-20, S3 part (003 L296): 「由本部門負責人、置業信息管理部把關」."""

    FORM = {"reason": "离职", "leaves_on": "2026-06-30", "equipment": "台式机 WY-2022-031", "new_user": "bai.lu"}

    def test_an_employee_leaving_is_checked_by_her_head_then_property_it(self, profile) -> None:
        assert profile.asked("equipment-handover", "deng.lin", **self.FORM) == [
            ("own-head", ("jin.li",)), ("property-it", ("cai.wen", "tang.lei"))]

    def test_a_head_leaving_is_checked_by_his_leader_in_charge(self, profile) -> None:
        assert profile.asked("equipment-handover", "jin.li", **self.FORM)[0] == ("own-head", ("peng.zhiyuan",))

    def test_an_it_administrator_moving_is_checked_by_the_other(self, profile) -> None:
        assert profile.asked("equipment-handover", "tang.lei", **{**self.FORM, "reason": "岗位调动"}) == [
            ("own-head", ("kong.deming",)), ("property-it", ("cai.wen",))]


def test_an_issued_document_is_changed_only_with_the_president_office_directors_approval(profile) -> None:
    assert profile.asked("issued-document-change", "hou.jie", document="工程〔2026〕12号", action="删除",
                         reason="文件重复下发", report="f-20260615-0002") == [("president-office", ("wen.jing",))]


def test_a_computer_purchase_is_taken_to_the_company_by_an_admin_hr_specialist(profile) -> None:
    assert profile.asked("computer-purchase", "hou.jie", items="笔记本电脑 1台", reason="新增岗位") == [
        ("admin-hr-specialist", ("liao.kai", "wen.xin"))]
    assert not profile.approval("computer-purchase").step("admin-hr-specialist").allows("reject")


class TestColleagueComputer:
    """AC-28, S3 part (003 L314): the colleague consents, or for work the department leader does."""

    def test_with_the_colleagues_consent_only_the_colleague_is_asked(self, profile) -> None:
        routes = profile.route("colleague-computer-use", "deng.lin", colleague="bai.lu", basis="经本人同意",
                               purpose="打印客户资料")
        assert [(r.step.id, r.applies, r.assignees) for r in routes] == [
            ("colleague", True, ("bai.lu",)), ("department-leader", False, ())]

    def test_for_work_the_department_leader_is_asked(self, profile) -> None:
        assert profile.asked("colleague-computer-use", "deng.lin", colleague="bai.lu", basis="工作需要",
                             purpose="同事休假，处理其工单") == [("department-leader", ("jin.li",))]
