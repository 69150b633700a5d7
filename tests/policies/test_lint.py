"""Semantic checks (policies/lint.py): each rule of its docstring, with its place in the file."""

from __future__ import annotations

import textwrap

from policies.lint import lint
from policies.loader import load_policy_text
from policies.org import Department, Organisation, Person

ORG = Organisation.of("示例", [
    Department(code="general", name="综合管理部", head="liu.yang", leader_in_charge="li.ming"),
    Department(code="it", name="信息科", head="zheng.hao", leader_in_charge="li.ming"),
    Department(code="office", name="院办", head="li.ming", leader_in_charge=None),
    Department(code="performance", name="绩效办", head="feng.xue", leader_in_charge="chen.jing"),
], [
    Person(id="liu.yang", name="刘洋", department="general"),
    Person(id="zheng.hao", name="郑浩", department="it"),
    Person(id="huang.lei", name="黄磊", department="it"),
    Person(id="li.ming", name="李明", department="office", roles=("vice_president",)),
    Person(id="chen.jing", name="陈静", department="office", roles=("vice_president",)),
    Person(id="feng.xue", name="冯雪", department="performance"),
])


def approval(steps: str, form: str = "amount: {type: money, label: 金额, min: 0.01}") -> str:
    return textwrap.dedent(f"""\
        kind: approval
        id: p
        title: 测试
        form:
          {form}
        steps:
        """) + textwrap.indent(textwrap.dedent(steps), "  ")


def problems(text: str, org: Organisation | None = ORG):
    return lint(load_policy_text(text, file="p.yaml"), org)


def test_complementary_thresholds_cover_every_amount():
    text = approval("""\
        - {id: a, title: A, when: amount <= 50000, approvers: {head_of: general}, sla: 2 days}
        - {id: b, title: B, when: amount > 50000, approvers: {role: vice_president}, sla: 2 days}
        """)
    assert problems(text) == []


def test_contradictory_condition_makes_the_step_unreachable_at_its_line():
    text = approval("""\
        - {id: a, title: A, approvers: {head_of: general}, sla: 2 days}
        - id: b
          title: B
          when: amount > 100 and amount < 50
          approvers: {head_of: general}
          sla: 2 days
        """)
    [problem] = problems(text)
    assert "step 'b' can never apply" in problem.message
    assert (problem.line, problem.severity) == (10, "error")


def test_a_gap_between_thresholds_leaves_amounts_with_no_step():
    text = approval("""\
        - {id: a, title: A, when: amount < 5000, approvers: {head_of: general}, sla: 2 days}
        - {id: b, title: B, when: amount > 50000, approvers: {head_of: general}, sla: 2 days}
        """)
    [problem] = problems(text)
    assert problem.message.startswith("no step applies when amount = ")


def test_approver_role_nobody_holds_is_an_error_at_the_rule():
    text = approval("- {id: a, title: A, approvers: {role: cfo}, sla: 2 days}\n")
    [problem] = problems(text)
    assert "role: cfo names nobody" in problem.message
    assert problem.line == 7


def test_people_checks_are_skipped_without_an_organisation():
    assert problems(approval("- {id: a, title: A, approvers: {role: cfo}, sla: 2 days}\n"), None) == []


def test_escalation_to_a_department_without_leader_reaches_nobody():
    text = approval("""\
        - id: a
          title: A
          approvers: {head_of: office}
          sla: 2 days
          escalate: [{notify: {leader_in_charge_of: office}}]
        """)
    found = problems(text)
    assert [p.severity for p in found] == ["error"]
    assert "reaches nobody" in found[0].message


def test_escalation_that_lands_on_the_requester_is_a_warning_with_an_example():
    text = approval("""\
        - id: a
          title: A
          approvers: {head_of: general}
          sla: 2 days
          escalate: [{notify: {leader_in_charge_of: approver}}]
        """)
    [problem] = problems(text)
    assert problem.severity == "warning"
    assert "every escalation reaches only the requester when 李明 (li.ming) files" in problem.message


def test_a_further_rung_that_reaches_someone_else_silences_the_warning():
    text = approval("""\
        - id: a
          title: A
          approvers: {head_of: general}
          sla: 2 days
          escalate:
            - {notify: {leader_in_charge_of: approver}}
            - {after: 1 working day, notify: {role: vice_president}}
        """)
    assert problems(text) == []


def test_reminder_as_long_as_the_sla_is_an_error():
    text = approval("""\
        - id: a
          title: A
          approvers: {head_of: general}
          sla: 24 hours on working days
          remind: [24 hours on working days]
        """)
    [problem] = problems(text)
    assert "would fire before the step opens" in problem.message


def test_calendar_owner_that_is_not_a_department_is_an_error():
    text = textwrap.dedent("""\
        kind: calendar
        id: c
        title: 月报
        defaults:
          due: day 15 of next month
          owner: {department: statistics}
        obligations:
          - {id: D-001, title: 月报一}
        """)
    [problem] = problems(text)
    assert "no department 'statistics'" in problem.message
    assert problem.line == 6


def test_calendar_owner_role_nobody_holds_means_nobody_is_reminded():
    text = textwrap.dedent("""\
        kind: calendar
        id: c
        title: 月报
        defaults:
          due: day 15 of next month
          owner: {department: performance, role: statistician}
        obligations:
          - {id: D-001, title: 月报一}
        """)
    [problem] = problems(text)
    assert "nobody in 绩效办 (performance) has role 'statistician'" in problem.message
