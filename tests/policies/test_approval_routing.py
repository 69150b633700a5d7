"""Approver rules resolved through the organisation, with the reason for each person, and the route planned at
filing (SC-11, SC-15, SC-17 pinned)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policies.chain import RouteError, plan_route, route_request
from policies.forms import validate_form
from policies.loader import load_policy, load_policy_text
from policies.models import ApprovalPolicy, PersonRule
from policies.org import Organisation
from policies.routing import Context, resolve, resolve_for_approvers
from store.organisation import read_organisation_file

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def organisation(path: Path = DATA / "approval-organisation.yaml") -> Organisation:
    seed = read_organisation_file(path)
    return Organisation.of(seed.organisation, seed.departments, seed.people)


def policy(name: str) -> ApprovalPolicy:
    folder = ROOT / "policies" / "library" / "hospital" if name == "it-hardware-purchase" \
        else DATA / "approval-policies"
    loaded = load_policy(folder / f"{name}.yaml").policy
    assert isinstance(loaded, ApprovalPolicy)
    return loaded


ORG = organisation()


def rule(**keys: Any) -> PersonRule:
    return PersonRule.model_validate(keys)


def who(found: Any) -> list[tuple[str, str]]:
    return [(c.person_id, c.why) for c in found.candidates]


class TestRules:
    def test_role_anywhere_lists_every_active_holder_in_id_order(self) -> None:
        assert [c for c, _ in who(resolve(rule(role="committee"), ORG, Context()))] == [
            "feng.xue", "ma.chao", "sun.li", "zhou.min"]

    def test_role_in_the_requesters_department_keeps_only_that_department(self) -> None:
        found = resolve(rule(role="committee", **{"in": "requester"}), ORG, Context(requester="he.jing"))
        assert who(found) == [("feng.xue", "has role committee in 绩效办 (performance), the requester's department")]

    def test_role_in_a_named_department(self) -> None:
        found = resolve(rule(role="business_approver", **{"in": "finance"}), ORG, Context())
        assert [c for c, _ in who(found)] == ["ma.chao", "sun.li"]

    def test_head_of_a_department_says_which(self) -> None:
        assert who(resolve(rule(head_of="general"), ORG, Context())) == [("liu.yang", "head of 综合管理部 (general)")]

    def test_leader_in_charge_of_the_requesters_department(self) -> None:
        found = resolve(rule(leader_in_charge_of="requester"), ORG, Context(requester="huang.lei"))
        assert who(found) == [("li.ming", "leader in charge (分管领导) of 信息科 (it), the requester's department")]

    def test_superior_of_a_staff_member_is_the_head_of_their_department(self) -> None:
        found = resolve(rule(superior_of="requester"), ORG, Context(requester="huang.lei"))
        assert who(found) == [("zheng.hao", "superior of the requester 黄磊 huang.lei: head of 信息科 (it)")]

    def test_superior_of_a_head_is_the_leader_in_charge(self) -> None:
        found = resolve(rule(superior_of="requester"), ORG, Context(requester="zheng.hao"))
        assert who(found) == [("li.ming", "superior of the requester 郑浩 zheng.hao: "
                                          "leader in charge (分管领导) of 信息科 (it)")]

    def test_manager_of_the_manager_is_the_leader_in_charge_for_a_staff_member(self) -> None:
        found = resolve(rule(superior_of="requester", levels=2), ORG, Context(requester="huang.lei"))
        assert who(found) == [("li.ming", "superior 2 levels up of the requester 黄磊 huang.lei: 郑浩 zheng.hao, "
                                          "head of 信息科 (it) → leader in charge (分管领导) of 信息科 (it)")]

    def test_superior_of_the_approver(self) -> None:
        found = resolve(rule(superior_of="approver"), ORG, Context(requester="lin.fang", approver="tang.bao"))
        assert [c for c, _ in who(found)] == ["chen.jing"]

    def test_superior_chain_that_loops_ends_where_it_would_come_back(self) -> None:
        """黄磊 → 郑浩 (head of 信息科) → 李明 (its leader in charge, in 院办) → 王秀英 (head of 院办) → 张建国
        (leader in charge of 院办, whose superior would be 王秀英 again)."""
        found = resolve(rule(superior_of="requester", levels=4), ORG, Context(requester="huang.lei"))
        assert [c for c, _ in who(found)] == ["zhang.jianguo"]
        found = resolve(rule(superior_of="requester", levels=5), ORG, Context(requester="huang.lei"))
        assert (found.candidates, found.nobody_because) == ((), "张建国 zhang.jianguo has no superior "
                                                                "(level 5 of 5 above the requester)")

    def test_person_and_form_field(self) -> None:
        assert who(resolve(rule(person="zhao.weidong"), ORG, Context())) == [("zhao.weidong", "named in the policy")]
        found = resolve(rule(field="doctor"), ORG, Context(form={"doctor": "lin.fang"}))
        assert who(found) == [("lin.fang", "chosen in form field doctor")]

    def test_department_chosen_in_a_form_field(self) -> None:
        found = resolve(rule(head_of="field:issuer"), ORG, Context(form={"issuer": "security"}))
        assert who(found) == [("tang.bao", "head of 保卫科 (security), chosen in form field issuer")]

    def test_empty_form_field_names_nobody_and_says_so(self) -> None:
        found = resolve(rule(head_of="field:issuer"), ORG, Context(form={"issuer": None}))
        assert (found.candidates, found.nobody_because) == ((), "form field issuer is empty")

    def test_inactive_head_names_nobody_and_says_so(self) -> None:
        people = [p.model_copy(update={"active": False}) if p.id == "liu.yang" else p for p in ORG.people.values()]
        org = Organisation.of(ORG.name, ORG.departments.values(), people)
        found = resolve(rule(head_of="general"), org, Context())
        assert found.nobody_because == "刘洋 liu.yang (head of 综合管理部 (general)) is inactive"

    def test_rule_on_approver_is_resolved_once_per_approver(self) -> None:
        found = resolve_for_approvers(rule(superior_of="approver"), ORG, Context(), ["huang.lei", "he.jing"])
        assert [c for c, _ in who(found)] == ["zheng.hao", "feng.xue"]


def form_of(p: ApprovalPolicy, **values: Any) -> dict[str, Any]:
    return validate_form(p, values, ORG)


class TestSC11HardwareByAmount:
    """AC-12: ≤ ¥50,000 (inclusive) to the head of 综合管理部; above, to the CFO."""

    def test_fifty_thousand_goes_to_the_head_of_general_management_only(self) -> None:
        p = policy("it-hardware-purchase")
        route = plan_route(p, form_of(p, items="笔记本电脑", amount="50000.00"), "huang.lei", ORG)
        assert [(s.step_id, s.assignees) for s in route] == [("general-management", ("liu.yang",))]

    def test_one_fen_more_goes_to_the_cfo_only(self) -> None:
        p = policy("it-hardware-purchase")
        route = plan_route(p, form_of(p, items="笔记本电脑", amount="50000.01"), "huang.lei", ORG)
        assert [(s.step_id, s.assignees) for s in route] == [("cfo", ("zhao.weidong",))]


class TestSC15PermissionChange:
    """AC-18: own department, then the business department approves or co-signs, then 综合管理部 executes."""

    def test_a_sales_user_goes_to_the_sales_head_then_finance_then_general_management(self) -> None:
        p = policy("permission-change")
        route = plan_route(p, form_of(p, module="财务模块", access="read", business="finance"), "gao.yan", ORG)
        assert [(s.step_id, s.mode, s.assignees) for s in route] == [
            ("own-department", "any", ("xu.hui",)),
            ("business-department", "any", ("ma.chao", "sun.li")),
            ("execute", "any", ("liu.yang",))]

    def test_when_the_requester_is_the_sales_head_step_one_goes_to_a_different_approver(self) -> None:
        p = policy("permission-change")
        route = plan_route(p, form_of(p, module="财务模块", access="read", business="finance"), "xu.hui", ORG)
        assert route[0].assignees == ("li.ming",)
        assert route[0].why == ("superior of the requester 徐辉 xu.hui: leader in charge (分管领导) of 销售部 (sales)",)


class TestSC17FineWaiver:
    """AC-04: the head of the department that issued the fine, then that head's superior — never the
    employee's own head, who has no approval authority over the fine."""

    def test_route_is_the_issuing_head_then_that_heads_superior(self) -> None:
        p = policy("fine-waiver")
        route = plan_route(p, form_of(p, issuer="security", amount="200", reason="初犯"), "lin.fang", ORG)
        assert [(s.step_id, s.assignees) for s in route] == [("issuer-head", ("tang.bao",)),
                                                              ("issuer-superior", ("chen.jing",))]

    def test_the_employees_own_head_is_asked_at_no_step(self) -> None:
        p = policy("fine-waiver")
        routes = route_request(p, form_of(p, issuer="security", amount="200", reason="初犯"), "lin.fang", ORG)
        assert all("wu.qiang" not in r.assignees for r in routes)


class TestPlanning:
    def test_quorum_larger_than_the_organisation_is_a_route_error_at_filing(self) -> None:
        p = policy("committee-review")
        with_quorum_five = load_policy_text(
            (DATA / "approval-policies" / "committee-review.yaml").read_text(encoding="utf-8")
            .replace("quorum: 2", "quorum: 5")).policy
        assert isinstance(with_quorum_five, ApprovalPolicy)
        with pytest.raises(RouteError) as excinfo:
            plan_route(with_quorum_five, form_of(p, subject="x", amount="10"), "huang.lei", ORG)
        assert str(excinfo.value) == ("step 'committee' (评审委员会): role: committee has quorum 5 but only 4 people "
                                      "in the organisation may decide it")

    def test_requester_on_a_committee_is_left_out_and_the_quorum_counts_the_others(self) -> None:
        p = policy("committee-review")
        routes = route_request(p, form_of(p, subject="x", amount="10"), "ma.chao", ORG)
        committee = next(r for r in routes if r.step.id == "committee")
        assert committee.assignees == ("feng.xue", "zhou.min")
        assert [(e.person_id, e.why) for e in committee.excluded] == [
            ("ma.chao", "the requester is never an approver"),
            ("sun.li", "decides step 'department' (distinct approvers)")]  # she heads ma.chao's 财务科

    def test_the_only_approver_of_an_earlier_step_is_not_asked_at_a_later_one(self) -> None:
        p = policy("committee-review")
        routes = route_request(p, form_of(p, subject="x", amount="10"), "he.jing", ORG)
        committee = next(r for r in routes if r.step.id == "committee")
        assert "feng.xue" not in committee.assignees  # she heads 绩效办: she decides step 1
        assert [e.why for e in committee.excluded] == ["decides step 'department' (distinct approvers)"]

    def test_skipped_step_carries_the_values_its_condition_read(self) -> None:
        p = policy("committee-review")
        routes = route_request(p, form_of(p, subject="x", amount="100000"), "huang.lei", ORG)
        leaders = next(r for r in routes if r.step.id == "leaders")
        assert (leaders.applies, [(k, str(v)) for k, v in leaders.condition_values]) == (False,
                                                                                        [("amount", "100000.00")])

    def test_a_step_on_the_previous_approver_asks_about_each_candidate_of_that_step(self) -> None:
        p = policy("fine-waiver")
        route = plan_route(p, form_of(p, issuer="it", amount="200", reason="x"), "lin.fang", ORG)
        assert [s.assignees for s in route] == [("zheng.hao",), ("li.ming",)]


def test_a_rule_says_which_form_fields_it_reads() -> None:
    assert rule(head_of="field:issuer").form_fields == {"issuer"}
    assert rule(role="x", **{"in": "field:business"}).form_fields == {"business"}
    assert rule(field="doctor").form_fields == {"doctor"}
    assert rule(superior_of="approver").form_fields == frozenset()
