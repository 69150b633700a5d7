"""The approval half of the policy language: what loads, and a precise file:line:col problem for what does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policies.errors import PolicyError, Problem
from policies.loader import load_policies, load_policy_text
from policies.models import ApprovalPolicy

ROOT = Path(__file__).resolve().parents[2]
FORM = """\
form:
  amount: {type: money, label: 金额, min: 0.01}
  issuer: {type: department, label: 发文部门}
  doctor: {type: person, label: 经治医生, required: false}
  note:   {type: text, label: 说明, required: false}
"""


def policy_text(steps: str, *, form: str = FORM, extra: str = "") -> str:
    return f"kind: approval\nid: sample\ntitle: 样例\n{form}steps:\n{steps}{extra}"


HEAD = """\
  - id: head
    title: 部门负责人
    approvers: {head_of: requester}
    sla: 24 hours on working days
"""
FINANCE = """\
  - id: finance
    title: 财务
    approvers: {role: cfo}
    sla: 3 working days
"""


def load(text: str) -> ApprovalPolicy:
    policy = load_policy_text(text, file="p.yaml").policy
    assert isinstance(policy, ApprovalPolicy)
    return policy


def only_problem(text: str) -> Problem:
    with pytest.raises(PolicyError) as excinfo:
        load_policy_text(text, file="p.yaml")
    problems = excinfo.value.problems
    assert len(problems) == 1, problems
    return problems[0]


def at(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.column


class TestDocumentedExamples:
    def test_every_approval_example_in_the_language_reference_loads(self) -> None:
        text = (ROOT / "docs" / "policy-language.md").read_text(encoding="utf-8")
        blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("kind: approval")]
        assert len(blocks) >= 2
        for block in blocks:
            assert load(block).steps

    def test_the_test_policies_load(self) -> None:
        ids = sorted(p.id for p in load_policies([ROOT / "tests" / "policies" / "data" / "approval-policies"]))
        assert ids == ["committee-review", "fine-waiver", "permission-change"]


class TestFormFields:
    def test_attachment_with_kinds_and_a_paper_copy_loads(self) -> None:
        form = FORM + "  receipt: {type: attachment, label: 收据, kinds: [pdf, image]}\n" \
                      "  sealed: {type: attachment, label: 盖章件, paper: true, required: false}\n"
        policy = load(policy_text(HEAD, form=form))
        assert policy.form["receipt"].kinds == ("pdf", "image")
        assert policy.form["sealed"].paper and not policy.form["sealed"].required

    def test_unknown_attachment_kind_is_a_load_error_with_a_suggestion(self) -> None:
        form = FORM + "  receipt: {type: attachment, label: 收据, kinds: [pdf, imgae]}\n"
        problem = only_problem(policy_text(HEAD, form=form))
        assert at(problem) == (9, 49)
        assert "unknown attachment kind 'imgae'; did you mean 'image'?" in problem.message

    def test_paper_attachment_with_file_kinds_is_a_load_error(self) -> None:
        form = FORM + "  sealed: {type: attachment, label: 盖章件, paper: true, kinds: [pdf]}\n"
        assert "a paper attachment (a sealed paper copy) has no file `kinds`" in only_problem(
            policy_text(HEAD, form=form)).message

    @pytest.mark.parametrize(("field", "key"), [("{type: text, label: x, kinds: [pdf]}", "kinds"),
                                                ("{type: text, label: x, min: 1}", "min"),
                                                ("{type: money, label: x, choices: [a]}", "choices"),
                                                ("{type: date, label: x, paper: true}", "paper")])
    def test_a_key_that_does_not_fit_the_field_type_is_a_load_error(self, field: str, key: str) -> None:
        problem = only_problem(policy_text(HEAD, form=FORM + f"  extra: {field}\n"))
        assert problem.message.startswith("form.extra: ")
        assert f"{key} does not apply to a" in problem.message

    def test_min_above_max_is_a_load_error(self) -> None:
        form = FORM + "  count: {type: number, label: 数量, min: 10, max: 5}\n"
        assert "min 10 is above max 5" in only_problem(policy_text(HEAD, form=form)).message


class TestPersonRules:
    @pytest.mark.parametrize("rule", [
        "{role: dept_head, in: requester}", "{role: dept_head, in: finance}", "{head_of: \"field:issuer\"}",
        "{leader_in_charge_of: general}", "{superior_of: requester, levels: 2}", "{person: liu.yang}",
        "{field: doctor}",
    ])
    def test_every_rule_shape_loads(self, rule: str) -> None:
        steps = HEAD.replace("{head_of: requester}", rule)
        assert load(policy_text(steps)).steps[0].approvers.key

    def test_two_rules_in_one_are_a_load_error_at_the_rule(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{head_of: requester, role: cfo}")))
        assert at(problem) == (12, 16)
        assert "name exactly one of role, head_of, leader_in_charge_of, superior_of, person, field" in problem.message

    def test_in_without_a_role_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{head_of: general, in: it}")))
        assert "`in` narrows a role to one department; it goes with `role`" in problem.message

    def test_levels_without_superior_of_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{head_of: general, levels: 2}")))
        assert "`levels` counts how far up `superior_of` goes" in problem.message

    def test_department_from_an_unknown_form_field_points_at_the_reference(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", '{head_of: "field:isuer"}')))
        assert at(problem) == (12, 26)
        assert problem.message == ("steps[0].approvers.head_of: no form field 'isuer' "
                                   "(fields: amount, issuer, doctor, note)")

    def test_department_from_a_field_that_is_not_a_department_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", '{head_of: "field:amount"}')))
        assert "form field 'amount' is a money field; this rule needs a department field" in problem.message

    def test_person_from_a_field_that_is_not_a_person_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{field: issuer}")))
        assert "form field 'issuer' is a department field; this rule needs a person field" in problem.message

    def test_owner_in_an_approval_policy_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{leader_in_charge_of: owner}")))
        assert "`owner` is the department that owes a reporting obligation" in problem.message

    def test_misspelled_in_suggests_in(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{role: cfo, inn: requester}")))
        assert problem.message == "steps[0].approvers: unknown key 'inn'"
        assert problem.hint is not None and problem.hint.startswith("did you mean 'in'?")

    def test_approver_on_the_first_step_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD.replace("{head_of: requester}", "{superior_of: approver}")))
        assert "the first step has none" in problem.message


class TestModes:
    def test_quorum_loads_with_a_role(self) -> None:
        steps = FINANCE.replace("{role: cfo}", "{role: committee}\n    mode: quorum\n    quorum: 2")
        step = load(policy_text(steps)).steps[0]
        assert (step.mode, step.quorum, step.needed) == ("quorum", 2, 2)

    def test_quorum_mode_without_a_number_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(FINANCE.replace("{role: cfo}", "{role: cfo}\n    mode: quorum")))
        assert "`mode: quorum` needs `quorum: n`" in problem.message

    def test_quorum_number_without_quorum_mode_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(FINANCE.replace("{role: cfo}", "{role: cfo}\n    quorum: 2")))
        assert problem.message == "steps[0].quorum: `quorum: n` goes with `mode: quorum`"

    def test_quorum_of_two_on_the_head_of_a_department_is_a_literal_impossibility(self) -> None:
        steps = HEAD.replace("{head_of: requester}", "{head_of: requester}\n    mode: quorum\n    quorum: 2")
        problem = only_problem(policy_text(steps))
        assert at(problem) == (14, 13)
        assert problem.message == "steps[0].quorum: quorum 2 can never be met: head_of names one person"


class TestSendBack:
    def test_send_back_to_an_earlier_step_loads(self) -> None:
        steps = HEAD + FINANCE + "    send_back: {to: [requester, head], keep_approvals: true}\n"
        rule = load(policy_text(steps)).steps[1].send_back
        assert (rule.to, rule.keep_approvals) == (("requester", "head"), True)

    def test_send_back_to_later_step_is_a_load_error(self) -> None:
        steps = HEAD + "    send_back: {to: [finance]}\n" + FINANCE
        problem = only_problem(policy_text(steps))
        assert at(problem) == (14, 16)
        assert problem.message.startswith("steps[0].send_back: send_back to 'finance': that is a later step")

    def test_send_back_to_itself_is_a_load_error(self) -> None:
        steps = HEAD + FINANCE + "    send_back: {to: [finance]}\n"
        assert "a step cannot send back to itself" in only_problem(policy_text(steps)).message

    def test_send_back_to_an_unknown_step_suggests_the_closest(self) -> None:
        steps = HEAD + FINANCE + "    send_back: {to: [haed]}\n"
        assert "no such step; did you mean 'head'?" in only_problem(policy_text(steps)).message

    def test_previous_on_the_first_step_is_a_load_error(self) -> None:
        steps = HEAD + "    send_back: {to: [previous]}\n"
        assert "the first step has no previous step" in only_problem(policy_text(steps)).message


class TestStepVerbsAndLadder:
    def test_defaults_allow_every_verb_and_every_add_approver_position(self) -> None:
        step = load(policy_text(HEAD)).steps[0]
        assert step.add_approver == ("before", "after", "parallel")
        assert "delegate" in step.allow and step.send_back.to == ("requester", "previous")

    def test_allow_without_approve_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD + "    allow: [reject, comment]\n"))
        assert "`allow` must include approve" in problem.message

    def test_unknown_verb_in_allow_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD + "    allow: [approve, forward]\n"))
        assert problem.message.startswith("steps[0].allow[1]: Input should be")
        assert at(problem) == (14, 22)

    def test_ladder_with_notify_reassign_and_decide_loads(self) -> None:
        ladder = ("    escalate:\n      - {notify: {leader_in_charge_of: approver}}\n"
                  "      - {after: 1 working day, reassign: {superior_of: approver}}\n"
                  "      - {after: 3 working days, decide: reject, reason: 超时}\n")
        rungs = load(policy_text(HEAD + ladder)).steps[0].escalate
        assert [r.action for r in rungs] == ["notify", "reassign", "decide"]

    def test_rung_with_two_actions_is_a_load_error(self) -> None:
        ladder = "    escalate:\n      - {notify: {person: li.ming}, decide: approve}\n"
        problem = only_problem(policy_text(HEAD + ladder))
        assert at(problem) == (15, 9)
        assert "a rung does exactly one of notify, reassign, decide (got notify, decide)" in problem.message

    def test_automatic_rejection_without_a_reason_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD + "    escalate:\n      - {decide: reject}\n"))
        assert "`decide: reject` needs a `reason`" in problem.message

    def test_decide_rung_before_another_rung_is_a_load_error(self) -> None:
        ladder = "    escalate:\n      - {decide: approve}\n      - {after: 1 working day, notify: {person: li.ming}}\n"
        assert "make the decide rung the last one" in only_problem(policy_text(HEAD + ladder)).message

    def test_reminders_are_durations(self) -> None:
        step = load(policy_text(HEAD + "    remind: [4 hours, 1 working day]\n")).steps[0]
        assert [d.text for d in step.remind] == ["4 hours", "1 working day"]


class TestPolicyRules:
    def test_defaults_are_distinct_approvers_and_withdraw_until_first_decision(self) -> None:
        policy = load(policy_text(HEAD))
        assert policy.distinct_approvers and policy.withdraw == "until_first_decision"
        assert policy.outcomes.approved is None

    def test_policy_rules_load(self) -> None:
        extra = ("separation_of_duties: {distinct_approvers: false}\nwithdraw: never\n"
                 "outcomes:\n  approved: {allows: 可以付款}\n  rejected: {record: 收据退回}\n")
        policy = load(policy_text(HEAD, extra=extra))
        assert not policy.distinct_approvers and policy.withdraw == "never"
        assert policy.outcomes.approved and policy.outcomes.approved.allows == "可以付款"

    def test_unknown_withdraw_rule_is_a_load_error(self) -> None:
        problem = only_problem(policy_text(HEAD, extra="withdraw: always\n"))
        assert problem.message.startswith("withdraw: Input should be 'until_first_decision' or 'never'")

    def test_duplicate_step_id_points_at_the_second_id(self) -> None:
        problems = []
        with pytest.raises(PolicyError) as excinfo:
            load_policy_text(policy_text(HEAD + HEAD), file="p.yaml")
        problems = excinfo.value.problems
        assert [(p.line, p.message) for p in problems] == [(10, "steps[0].id: step id 'head' is used twice"),
                                                           (14, "steps[1].id: step id 'head' is used twice")]
