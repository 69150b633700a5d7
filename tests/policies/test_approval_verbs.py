"""The chain's state machine: every verb, its refusals (as reason codes), and separation of duties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest

from policies.chain import (
    SYSTEM,
    Action,
    Decision,
    DecisionError,
    Delegation,
    RequestState,
    apply_action,
    decide_by_system,
    plan_route,
    reassign_step,
    start_request,
)
from policies.forms import validate_form
from policies.loader import load_policy_text
from policies.models import ApprovalPolicy
from policies.org import Organisation
from store.organisation import read_organisation_file

DATA = Path(__file__).resolve().parent / "data"
NOW = pendulum.datetime(2026, 9, 30, 16, tz="Asia/Shanghai")
SEED = read_organisation_file(DATA / "approval-organisation.yaml")
ORG = Organisation.of(SEED.organisation, SEED.departments, SEED.people)
FORMS: dict[str, dict[str, str]] = {
    "committee-review": {"subject": "新院区信息化方案", "amount": "200000"},
    "permission-change": {"module": "财务模块", "access": "read", "business": "finance"},
    "fine-waiver": {"issuer": "security", "amount": "200", "reason": "初犯"},
}


def policy(name: str, *, change: tuple[str, str] | None = None) -> ApprovalPolicy:
    text = (DATA / "approval-policies" / f"{name}.yaml").read_text(encoding="utf-8")
    if change:
        assert change[0] in text
        text = text.replace(*change)
    loaded = load_policy_text(text).policy
    assert isinstance(loaded, ApprovalPolicy)
    return loaded


def filed(p: ApprovalPolicy, requester: str = "huang.lei", **form: str) -> RequestState:
    values = validate_form(p, form or FORMS[p.id], ORG)
    return start_request(p, plan_route(p, values, requester, ORG), requester)


def act(p: ApprovalPolicy, state: RequestState, verb: str, actor: str, *, delegations: tuple[Delegation, ...] = (),
        **keys: Any) -> Decision:
    return apply_action(p, state, Action(verb=verb, actor=actor, **keys), org=ORG, now=NOW,  # type: ignore[arg-type]
                        delegations=delegations)


def refused(p: ApprovalPolicy, state: RequestState, verb: str, actor: str, **keys: Any) -> str:
    with pytest.raises(DecisionError) as excinfo:
        act(p, state, verb, actor, **keys)
    return excinfo.value.reason


def summary(state: RequestState) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.key, s.state, s.approved_by) for s in state.steps]


COMMITTEE = policy("committee-review")
PERMISSION = policy("permission-change")
WAIVER = policy("fine-waiver")


def at_committee() -> RequestState:
    """A committee review filed by 黄磊 whose first step (his head 郑浩) is approved."""
    return act(COMMITTEE, filed(COMMITTEE), "approve", "zheng.hao").after


class TestQuorumAnyAll:
    def test_first_approval_of_a_quorum_of_two_leaves_the_step_open(self) -> None:
        decision = act(COMMITTEE, at_committee(), "approve", "ma.chao")
        assert (decision.step_state, decision.opened) == ("pending", ())

    def test_quorum_of_two_closes_step_on_second_approval(self) -> None:
        state = act(COMMITTEE, at_committee(), "approve", "ma.chao").after
        decision = act(COMMITTEE, state, "approve", "zhou.min")
        assert decision.step_state == "approved"
        assert decision.opened == (2,)
        assert decision.after.steps[2].assignees == ("chen.jing", "li.ming")

    def test_a_third_member_cannot_decide_a_closed_quorum_step(self) -> None:
        state = act(COMMITTEE, at_committee(), "approve", "ma.chao").after
        state = act(COMMITTEE, state, "approve", "zhou.min").after
        assert refused(COMMITTEE, state, "approve", "sun.li", step=1) == "not_open"

    def test_all_mode_needs_every_leader(self) -> None:
        state = act(COMMITTEE, act(COMMITTEE, at_committee(), "approve", "ma.chao").after, "approve", "sun.li").after
        state = act(COMMITTEE, state, "approve", "li.ming").after
        assert state.state == "pending"
        decision = act(COMMITTEE, state, "approve", "chen.jing")
        assert (decision.finished, decision.after.state) == ("approved", "approved")

    def test_either_business_approver_closes_the_any_step(self) -> None:
        """SC-15: finance approves or co-signs; either closes the step."""
        for cosigner in ("sun.li", "ma.chao"):
            state = act(PERMISSION, filed(PERMISSION, "gao.yan"), "approve", "xu.hui").after
            decision = act(PERMISSION, state, "approve", cosigner)
            assert (decision.step_state, decision.after.steps[2].state) == ("approved", "pending")

    def test_finance_rejection_closes_the_request_with_its_reason(self) -> None:
        """SC-15: finance rejects → no permission change; the request is closed with a reason."""
        state = act(PERMISSION, filed(PERMISSION, "gao.yan"), "approve", "xu.hui").after
        decision = act(PERMISSION, state, "reject", "sun.li", reason="无业务必要")
        assert (decision.finished, decision.reason) == ("rejected", "无业务必要")
        assert summary(decision.after) == [("own-department", "approved", ("xu.hui",)),
                                           ("business-department", "rejected", ()),
                                           ("execute", "cancelled", ())]


class TestSeedScenarios:
    def test_sc11_head_of_general_management_cannot_complete_a_purchase_over_fifty_thousand(self) -> None:
        from policies.loader import load_policy

        p = load_policy(Path(__file__).resolve().parents[2] / "policies/library/hospital/it-hardware-purchase.yaml")
        assert isinstance(p.policy, ApprovalPolicy)
        state = start_request(p.policy, plan_route(p.policy, validate_form(
            p.policy, {"items": "笔记本电脑", "amount": "50000.01"}, ORG), "huang.lei", ORG), "huang.lei")
        assert refused(p.policy, state, "approve", "liu.yang") == "not_assigned"
        assert act(p.policy, state, "approve", "zhao.weidong").finished == "approved"

    def test_sc17_the_employees_own_head_has_no_authority_and_both_approvals_waive_the_fine(self) -> None:
        state = filed(WAIVER, "lin.fang")
        assert refused(WAIVER, state, "approve", "wu.qiang") == "not_assigned"
        state = act(WAIVER, state, "approve", "tang.bao").after
        assert refused(WAIVER, state, "approve", "wu.qiang") == "not_assigned"
        decision = act(WAIVER, state, "approve", "chen.jing")
        assert decision.finished == "approved"

    def test_sc17_second_step_asks_the_superior_of_whoever_actually_approved(self) -> None:
        """The rule `superior_of: approver` is resolved again from the person who approved step 1."""
        state = filed(WAIVER, "lin.fang", issuer="security", amount="200", reason="初犯")
        transferred = act(WAIVER, state, "transfer", "tang.bao", to="zheng.hao").after
        decision = act(WAIVER, transferred, "approve", "zheng.hao")
        assert decision.after.steps[1].assignees == ("li.ming",)  # 郑浩's leader in charge, not 唐宝's


class TestSendBack:
    def test_send_back_to_the_requester_returns_the_request_and_resubmit_starts_again(self) -> None:
        decision = act(COMMITTEE, at_committee(), "send_back", "ma.chao", to="requester", reason="补充报价单")
        assert (decision.after.state, decision.target, decision.closed) == ("returned", "requester", (1,))
        assert decision.after.open_step is None
        resubmitted = act(COMMITTEE, decision.after, "resubmit", "huang.lei")
        assert resubmitted.after.state == "pending"
        # keep_approvals: true — the department's approval stands, the committee decides again
        assert (resubmitted.opened, summary(resubmitted.after)[0]) == ((1,), ("department", "approved",
                                                                             ("zheng.hao",)))

    def test_send_back_to_a_named_earlier_step_keeping_approvals(self) -> None:
        state = act(COMMITTEE, at_committee(), "approve", "ma.chao").after
        decision = act(COMMITTEE, state, "send_back", "zhou.min", to="department", reason="部门意见不明确")
        assert (decision.opened, decision.target) == ((0,), "department")
        assert summary(decision.after)[:2] == [("department", "pending", ()), ("committee", "waiting", ("ma.chao",))]
        again = act(COMMITTEE, decision.after, "approve", "zheng.hao").after
        assert again.open_step == 1 and again.steps[1].approved_by == ("ma.chao",)
        assert act(COMMITTEE, again, "approve", "sun.li").step_state == "approved"

    def test_send_back_without_keeping_approvals_decides_every_later_step_again(self) -> None:
        state = act(PERMISSION, filed(PERMISSION, "gao.yan"), "approve", "xu.hui").after
        decision = act(PERMISSION, state, "send_back", "sun.li", to="own-department", reason="请补充说明")
        assert summary(decision.after) == [("own-department", "pending", ()), ("business-department", "waiting", ()),
                                           ("execute", "waiting", ())]

    def test_send_back_to_a_target_the_step_does_not_list_is_refused(self) -> None:
        assert refused(COMMITTEE, at_committee(), "send_back", "ma.chao", to="previous", reason="x") == "bad_target"

    def test_send_back_needs_a_reason(self) -> None:
        assert refused(COMMITTEE, at_committee(), "send_back", "ma.chao", to="requester") == "reason_required"


class TestWithdraw:
    def test_requester_withdraws_before_the_first_decision(self) -> None:
        decision = act(COMMITTEE, filed(COMMITTEE), "withdraw", "huang.lei")
        assert (decision.finished, decision.closed) == ("withdrawn", (0,))
        assert {s.state for s in decision.after.steps} == {"cancelled"}

    def test_withdraw_after_the_first_decision_is_refused(self) -> None:
        assert refused(COMMITTEE, at_committee(), "withdraw", "huang.lei") == "not_allowed"

    def test_only_the_requester_withdraws(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "withdraw", "zheng.hao") == "not_requester"

    def test_withdraw_never_is_refused_even_before_any_decision(self) -> None:
        never = policy("committee-review", change=("withdraw: until_first_decision", "withdraw: never"))
        assert refused(never, filed(never), "withdraw", "huang.lei") == "not_allowed"

    def test_a_returned_request_can_be_withdrawn(self) -> None:
        returned = act(COMMITTEE, at_committee(), "send_back", "ma.chao", to="requester", reason="x").after
        assert act(COMMITTEE, returned, "withdraw", "huang.lei").finished == "withdrawn"


class TestTransfer:
    def test_transfer_hands_the_place_to_another_person(self) -> None:
        decision = act(COMMITTEE, filed(COMMITTEE), "transfer", "zheng.hao", to="wang.xiuying")
        assert decision.after.steps[0].assignees == ("wang.xiuying",)
        assert refused(COMMITTEE, decision.after, "approve", "zheng.hao") == "not_assigned"
        assert act(COMMITTEE, decision.after, "approve", "wang.xiuying").step_state == "approved"

    def test_transfer_to_requester_is_refused(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "transfer", "zheng.hao", to="huang.lei") == "to_requester"

    @pytest.mark.parametrize("target", ["nobody.here", "zheng.hao"])
    def test_transfer_to_an_unknown_person_or_to_oneself_is_refused(self, target: str) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "transfer", "zheng.hao", to=target) == "bad_target"

    def test_transfer_to_someone_who_decided_another_step_is_refused(self) -> None:
        assert refused(COMMITTEE, at_committee(), "transfer", "ma.chao", to="zheng.hao") == "not_distinct"

    def test_transfer_by_someone_not_on_the_step_is_refused(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "transfer", "li.ming", to="wang.xiuying") == "not_assigned"

    def test_transfer_on_a_step_that_does_not_allow_it_is_refused(self) -> None:
        state = act(PERMISSION, filed(PERMISSION, "gao.yan"), "approve", "xu.hui").after
        state = act(PERMISSION, state, "approve", "sun.li").after
        assert refused(PERMISSION, state, "transfer", "liu.yang", to="wang.xiuying") == "not_allowed"


class TestAddApprover:
    def test_before_opens_a_step_of_the_added_people_first(self) -> None:
        decision = act(COMMITTEE, at_committee(), "add_approver", "ma.chao", people=("wang.xiuying",),
                       position="before")
        assert summary(decision.after)[1:3] == [("committee+before-1", "pending", ()), ("committee", "waiting", ())]
        assert decision.after.steps[1].added_by == "ma.chao"
        back = act(COMMITTEE, decision.after, "approve", "wang.xiuying")
        assert (back.opened, back.after.steps[2].state) == ((2,), "pending")

    def test_after_inserts_a_step_right_after_the_current_one(self) -> None:
        state = act(COMMITTEE, at_committee(), "add_approver", "ma.chao", people=("wang.xiuying",),
                    position="after").after
        assert [s.key for s in state.steps] == ["department", "committee", "committee+after-1", "leaders"]
        state = act(COMMITTEE, act(COMMITTEE, state, "approve", "ma.chao").after, "approve", "sun.li").after
        assert state.open_step == 2 and state.steps[2].assignees == ("wang.xiuying",)

    def test_parallel_adds_a_place_to_an_all_step(self) -> None:
        state = act(COMMITTEE, at_committee(), "approve", "ma.chao").after
        state = act(COMMITTEE, state, "approve", "sun.li").after
        decision = act(COMMITTEE, state, "add_approver", "li.ming", people=("zhang.jianguo",), position="parallel")
        assert decision.after.steps[2].assignees == ("chen.jing", "li.ming", "zhang.jianguo")

    def test_parallel_on_an_any_step_is_refused(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "add_approver", "zheng.hao", people=("wang.xiuying",),
                       position="parallel") == "not_allowed"

    def test_a_position_the_step_does_not_list_is_refused(self) -> None:
        assert refused(COMMITTEE, at_committee(), "add_approver", "ma.chao", people=("wang.xiuying",),
                       position="parallel") == "not_allowed"

    def test_adding_the_requester_is_refused(self) -> None:
        assert refused(COMMITTEE, at_committee(), "add_approver", "ma.chao", people=("huang.lei",),
                       position="before") == "to_requester"


def leave(frm: str, to: str, *, days: int = 7, policies: tuple[str, ...] = ()) -> Delegation:
    return Delegation.model_validate({"from": frm, "to": to, "starts": NOW.subtract(days=1),
                                      "ends": NOW.add(days=days), "policies": policies})


class TestDelegation:
    def test_a_delegate_approves_in_the_assignees_place(self) -> None:
        decision = act(COMMITTEE, filed(COMMITTEE), "approve", "wang.xiuying",
                       delegations=(leave("zheng.hao", "wang.xiuying"),))
        step = decision.after.steps[0]
        assert (step.state, step.approvals[0].place, step.approvals[0].actor) == ("approved", "zheng.hao",
                                                                                  "wang.xiuying")

    def test_an_expired_delegation_does_not_count(self) -> None:
        expired = Delegation.model_validate({"from": "zheng.hao", "to": "wang.xiuying", "starts": NOW.subtract(days=9),
                                             "ends": NOW.subtract(days=1)})
        with pytest.raises(DecisionError) as excinfo:
            act(COMMITTEE, filed(COMMITTEE), "approve", "wang.xiuying", delegations=(expired,))
        assert excinfo.value.reason == "not_assigned"

    def test_a_delegation_for_another_policy_does_not_count(self) -> None:
        with pytest.raises(DecisionError) as excinfo:
            act(COMMITTEE, filed(COMMITTEE), "approve", "wang.xiuying",
                delegations=(leave("zheng.hao", "wang.xiuying", policies=("fine-waiver",)),))
        assert excinfo.value.reason == "not_assigned"

    def test_a_delegate_never_decides_their_own_request(self) -> None:
        with pytest.raises(DecisionError) as excinfo:
            act(COMMITTEE, filed(COMMITTEE), "approve", "huang.lei", delegations=(leave("zheng.hao", "huang.lei"),))
        assert excinfo.value.reason == "own_request"

    def test_naming_someone_who_did_not_delegate_is_refused(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "approve", "wang.xiuying", on_behalf_of="zheng.hao") == \
            "not_delegated"

    def test_a_delegate_of_two_committee_members_must_say_for_whom(self) -> None:
        both = (leave("ma.chao", "wang.xiuying"), leave("sun.li", "wang.xiuying"))
        with pytest.raises(DecisionError) as excinfo:
            act(COMMITTEE, at_committee(), "approve", "wang.xiuying", delegations=both)
        assert excinfo.value.reason == "ambiguous_delegation"
        decision = act(COMMITTEE, at_committee(), "approve", "wang.xiuying", delegations=both, on_behalf_of="sun.li")
        assert decision.after.steps[1].approved_by == ("sun.li",)

    def test_a_step_that_does_not_allow_delegates_refuses_them(self) -> None:
        state = act(PERMISSION, filed(PERMISSION, "gao.yan"), "approve", "xu.hui").after
        state = act(PERMISSION, state, "approve", "sun.li").after
        with pytest.raises(DecisionError) as excinfo:
            act(PERMISSION, state, "approve", "wang.xiuying", delegations=(leave("liu.yang", "wang.xiuying"),))
        assert excinfo.value.reason == "not_allowed"


class TestComment:
    def test_a_comment_changes_nothing(self) -> None:
        state = filed(COMMITTEE)
        decision = act(COMMITTEE, state, "comment", "huang.lei", reason="报价单已补充")
        assert decision.after == state.model_copy(update={"decisions": 0})

    def test_an_empty_comment_is_refused(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "comment", "zheng.hao", reason=" ") == "reason_required"

    def test_someone_not_involved_cannot_comment(self) -> None:
        assert refused(COMMITTEE, filed(COMMITTEE), "comment", "lin.fang", reason="?") == "not_assigned"


TWICE = """\
kind: approval
id: twice
title: 两级评审
form:
  subject: {type: text, label: 事项}
steps:
  - {id: first, title: 初审, approvers: {role: committee}, sla: 3 working days}
  - {id: second, title: 复审, approvers: {role: committee}, mode: all, sla: 3 working days}
"""


class TestSeparationOfDuties:
    def test_whoever_approved_the_first_step_is_not_asked_at_the_second(self) -> None:
        p = load_policy_text(TWICE).policy
        assert isinstance(p, ApprovalPolicy)
        decision = act(p, filed(p, subject="x"), "approve", "ma.chao")
        assert decision.after.steps[1].assignees == ("feng.xue", "sun.li", "zhou.min")

    def test_without_distinct_approvers_the_same_person_may_decide_both(self) -> None:
        p = load_policy_text(TWICE + "separation_of_duties: {distinct_approvers: false}\n").policy
        assert isinstance(p, ApprovalPolicy)
        state = act(p, filed(p, subject="x"), "approve", "ma.chao").after
        assert "ma.chao" in state.steps[1].assignees
        assert act(p, state, "approve", "ma.chao").after.steps[1].approved_by == ("ma.chao",)

    def test_a_decider_of_another_step_who_is_still_listed_cannot_decide(self) -> None:
        p = load_policy_text(TWICE).policy
        assert isinstance(p, ApprovalPolicy)
        state = act(p, filed(p, subject="x"), "approve", "ma.chao").after
        steps = list(state.steps)
        steps[1] = steps[1].model_copy(update={"assignees": ("ma.chao", "sun.li")})
        assert refused(p, state.model_copy(update={"steps": tuple(steps)}), "approve", "ma.chao") == "not_distinct"

    def test_approving_would_leave_the_next_step_with_nobody_is_refused(self) -> None:
        p = load_policy_text(TWICE.replace("{role: committee}, mode: all", "{person: ma.chao}")).policy
        assert isinstance(p, ApprovalPolicy)
        state = filed(p, subject="x")
        assert refused(p, state, "approve", "ma.chao") == "no_approver"
        assert act(p, state, "approve", "sun.li").after.steps[1].assignees == ("ma.chao",)


class TestSystemDecisions:
    def test_the_system_approves_a_step_outright(self) -> None:
        decision = decide_by_system(COMMITTEE, at_committee(), 1, "approve", None, org=ORG)
        assert (decision.actor, decision.step_state, decision.opened) == (SYSTEM, "approved", (2,))

    def test_the_system_rejects_with_the_rungs_reason(self) -> None:
        decision = decide_by_system(COMMITTEE, filed(COMMITTEE), 0, "reject", "超时未审批，自动驳回", org=ORG)
        assert (decision.finished, decision.reason) == ("rejected", "超时未审批，自动驳回")

    def test_reassign_replaces_only_the_undecided_places(self) -> None:
        state = act(COMMITTEE, at_committee(), "approve", "ma.chao").after
        decision = reassign_step(COMMITTEE, state, 1, ["wang.xiuying", "huang.lei", "zheng.hao"], org=ORG)
        assert decision.after.steps[1].assignees == ("ma.chao", "wang.xiuying")  # not the requester, not step 1's

    def test_reassign_to_nobody_eligible_is_refused(self) -> None:
        with pytest.raises(DecisionError) as excinfo:
            reassign_step(COMMITTEE, filed(COMMITTEE), 0, ["huang.lei"], org=ORG)
        assert excinfo.value.reason == "no_approver"

    def test_a_decided_step_cannot_be_decided_by_the_system(self) -> None:
        with pytest.raises(DecisionError) as excinfo:
            decide_by_system(COMMITTEE, at_committee(), 0, "approve", None, org=ORG)
        assert excinfo.value.reason == "not_open"
