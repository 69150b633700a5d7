"""The approval chain on the demo hospital: routing by amount, separation of duties, 会签/或签
decisions, and validation of the request form."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest

from policies.chain import (
    Action,
    Approval,
    DecisionError,
    RequestState,
    RouteError,
    StepState,
    apply_action,
    plan_route,
)
from policies.forms import FormError, validate_form
from policies.loader import load_policy
from policies.models import ApprovalPolicy
from policies.org import Department, Organisation, Person
from store.organisation import read_organisation_file

ROOT = Path(__file__).resolve().parents[2]


def demo_organisation() -> Organisation:
    seed = read_organisation_file(ROOT / "config" / "demo-organisation.yaml")
    return Organisation.of(seed.organisation, seed.departments, seed.people)


def it_hardware_purchase() -> ApprovalPolicy:
    policy = load_policy(ROOT / "policies" / "library" / "hospital" / "it-hardware-purchase.yaml").policy
    assert isinstance(policy, ApprovalPolicy)
    return policy


ORG = demo_organisation()
POLICY = it_hardware_purchase()
REQUESTER = "huang.lei"  # 信息科 network engineer: neither approver of this policy


def form(amount: str, **extra: Any) -> dict[str, Any]:
    return validate_form(POLICY, {"items": "20 台笔记本电脑", "amount": amount, **extra}, ORG)


def form_problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FormError) as excinfo:
        validate_form(POLICY, raw, ORG)
    return excinfo.value.problems


def amount_problem(amount: object) -> str:
    """The one problem of a form whose only fault is its amount, without the field's label."""
    problems = form_problems({"items": "x", "amount": amount})
    assert list(problems) == ["amount"], problems
    label, _, message = problems["amount"].partition(": ")
    assert label == "单笔合同金额（元）"
    return message


class TestRouting:
    def test_fifty_thousand_goes_to_the_head_of_general_management(self) -> None:
        [step] = plan_route(POLICY, form("50000.00"), REQUESTER, ORG)
        assert (step.step_id, step.assignees, step.why) == ("general-management", ("liu.yang",),
                                                             ("head of 综合管理部 (general)",))

    def test_one_fen_more_goes_to_the_cfo(self) -> None:
        [step] = plan_route(POLICY, form("50000.01"), REQUESTER, ORG)
        assert (step.step_id, step.assignees, step.why) == ("cfo", ("zhao.weidong",), ("has role cfo",))

    def test_head_of_general_management_cannot_approve_their_own_purchase(self) -> None:
        with pytest.raises(RouteError) as excinfo:
            plan_route(POLICY, form("50000.00"), "liu.yang", ORG)
        assert "resolves to only the requester" in str(excinfo.value)
        assert "general-management" in str(excinfo.value)

    def test_cfo_as_requester_of_a_small_purchase_still_gets_the_head(self) -> None:
        [step] = plan_route(POLICY, form("100.00"), "zhao.weidong", ORG)
        assert step.assignees == ("liu.yang",)

    def test_requester_is_removed_while_other_holders_of_the_role_remain(self) -> None:
        second_cfo = Person(id="qian.yu", name="钱宇", department="finance", roles=("cfo",))
        org = Organisation.of(ORG.name, ORG.departments.values(), [*ORG.people.values(), second_cfo])
        [step] = plan_route(POLICY, form("90000.00"), "zhao.weidong", org)
        assert step.assignees == ("qian.yu",)

    def test_inactive_head_leaves_the_step_with_nobody(self) -> None:
        people = [p.model_copy(update={"active": False}) if p.id == "liu.yang" else p
                  for p in ORG.people.values()]
        org = Organisation.of(ORG.name, ORG.departments.values(), people)
        with pytest.raises(RouteError) as excinfo:
            plan_route(POLICY, form("10.00"), REQUESTER, org)
        assert "resolves to nobody" in str(excinfo.value)

    def test_small_organisation_built_directly_routes_by_role(self) -> None:
        org = Organisation.of("clinic", [Department(code="general", name="综合", head="boss")], [
            Person(id="boss", name="Boss", department="general"),
            Person(id="cfo", name="CFO", department="general", roles=("cfo",)),
            Person(id="clerk", name="Clerk", department="general"),
        ])
        assert plan_route(POLICY, form("60000"), "clerk", org)[0].assignees == ("cfo",)
        assert plan_route(POLICY, form("60"), "clerk", org)[0].assignees == ("boss",)


NOW = pendulum.datetime(2026, 9, 30, 16, tz="Asia/Shanghai")


def request(mode: str, approved_by: tuple[str, ...] = (), assignees: tuple[str, ...] = ("liu.yang", "wang.xiuying")
            ) -> RequestState:
    step = StepState(key="general-management", policy_step="general-management", title="审批", mode=mode,
                     state="pending", assignees=assignees,  # type: ignore[arg-type]
                     approvals=tuple(Approval(place=p, actor=p) for p in approved_by))
    return RequestState(requester=REQUESTER, policy=POLICY.id, steps=(step,))


def decide(state: RequestState, actor: str, verb: str = "approve", reason: str | None = None) -> StepState:
    decision = apply_action(POLICY, state, Action(verb=verb, actor=actor, reason=reason),  # type: ignore[arg-type]
                            org=ORG, now=NOW)
    return decision.after.steps[0]


def refusal(state: RequestState, actor: str, verb: str = "approve", reason: str | None = None) -> str:
    with pytest.raises(DecisionError) as excinfo:
        decide(state, actor, verb, reason)
    return excinfo.value.reason


ANY = request("any")
ALL = request("all")


class TestDecisions:
    def test_requester_cannot_decide_their_own_request(self) -> None:
        state = request("any", assignees=(REQUESTER, "liu.yang"))
        assert refusal(state, REQUESTER) == "own_request"

    def test_person_not_assigned_cannot_decide(self) -> None:
        assert refusal(ANY, "zhao.weidong") == "not_assigned"

    @pytest.mark.parametrize("reason", [None, "", "   \n"])
    def test_rejection_without_a_reason_is_refused(self, reason: str | None) -> None:
        assert refusal(ANY, "liu.yang", "reject", reason) == "reason_required"

    def test_rejection_with_a_reason_rejects_the_step(self) -> None:
        assert decide(ANY, "liu.yang", "reject", "预算不足").state == "rejected"

    def test_any_mode_first_approval_decides(self) -> None:
        outcome = decide(ANY, "wang.xiuying")
        assert (outcome.state, outcome.approved_by) == ("approved", ("wang.xiuying",))

    def test_all_mode_waits_for_every_assignee(self) -> None:
        first = decide(ALL, "liu.yang")
        assert (first.state, first.approved_by) == ("pending", ("liu.yang",))
        second = decide(request("all", first.approved_by), "wang.xiuying")
        assert (second.state, second.approved_by) == ("approved", ("liu.yang", "wang.xiuying"))

    def test_all_mode_second_approval_by_the_same_person_is_refused(self) -> None:
        assert refusal(request("all", ("liu.yang",)), "liu.yang") == "already_decided"

    def test_all_mode_one_rejection_rejects_after_partial_approval(self) -> None:
        outcome = decide(request("all", ("liu.yang",)), "wang.xiuying", "reject", "型号不符")
        assert (outcome.state, outcome.approved_by) == ("rejected", ("liu.yang",))


class TestFormValidation:
    def test_valid_form_is_normalised_to_two_decimals(self) -> None:
        assert form("1,000.5") == {"items": "20 台笔记本电脑", "amount": Decimal("1000.50"), "reason": None}

    @pytest.mark.parametrize("amount", ["1.001", "0.005", 12.345])
    def test_money_with_three_decimals_is_refused(self, amount: object) -> None:
        assert amount_problem(amount) == "money has at most two decimals (fen)"

    @pytest.mark.parametrize("amount", ["0", "0.00", "-5", -0.01])
    def test_zero_or_negative_amount_is_below_the_minimum(self, amount: object) -> None:
        assert amount_problem(amount) == "must be at least 0.01"

    @pytest.mark.parametrize("amount", ["NaN", "Infinity", "-inf"])
    def test_non_finite_amount_is_refused(self, amount: str) -> None:
        assert amount_problem(amount) == "expected a finite number below 10^15"

    def test_boolean_is_not_a_number(self) -> None:
        assert amount_problem(True) == "expected a number"

    def test_unknown_field_is_reported(self) -> None:
        problems = form_problems({"items": "x", "amount": "10", "colour": "red"})
        assert problems == {"colour": "not a field of it-hardware-purchase (fields: items, amount, reason)"}

    @pytest.mark.parametrize("items", [None, ""])
    def test_missing_required_field_is_reported(self, items: str | None) -> None:
        assert form_problems({"items": items, "amount": "10"}) == {"items": "采购内容 is required"}

    def test_missing_optional_field_is_none(self) -> None:
        assert form("10")["reason"] is None

    @pytest.mark.parametrize("field", ["items", "reason"])
    def test_nul_in_text_is_refused(self, field: str) -> None:
        raw = {"items": "x", "amount": "10", field: "bad\x00text"}
        label = POLICY.form[field].label
        assert form_problems(raw) == {field: f"{label}: text may not contain NUL characters"}

    def test_text_over_its_max_length_is_refused(self) -> None:
        problems = form_problems({"items": "x" * 501, "amount": "10"})
        assert problems == {"items": "采购内容: at most 500 characters"}

    def test_several_problems_are_reported_together(self) -> None:
        problems = form_problems({"amount": "1.001", "reason": "a\x00", "colour": "red"})
        assert set(problems) == {"items", "amount", "reason", "colour"}

    def test_form_that_is_not_an_object_is_refused(self) -> None:
        with pytest.raises(FormError) as excinfo:
            validate_form(POLICY, ["x"], ORG)
        assert excinfo.value.problems == {"form": "expected an object of field values"}

    @pytest.mark.parametrize("amount", ["1e26", 1e300, "9" * 30])
    def test_absurdly_large_amount_is_a_form_problem_not_a_crash(self, amount: object) -> None:
        assert amount_problem(amount)
