"""Step reminders before the SLA deadline, the escalation ladder's instants, and what each rung does."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from policies.calendar import WorkCalendar
from policies.chain import DecisionError, RequestState, plan_route, start_request
from policies.durations import Deadline, parse_duration
from policies.escalation import obligation_thresholds, reminder_at, rung_effect, step_thresholds
from policies.forms import validate_form
from policies.loader import load_policy, load_policy_text
from policies.models import ApprovalPolicy, EscalationRung, PersonRule
from policies.org import Organisation
from store.organisation import read_organisation_file

SHANGHAI = "Asia/Shanghai"
CALENDAR = WorkCalendar.default()
DATA = Path(__file__).resolve().parent / "data"
SEED = read_organisation_file(DATA / "approval-organisation.yaml")
ORG = Organisation.of(SEED.organisation, SEED.departments, SEED.people)


def local(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def in_shanghai(at: pendulum.DateTime) -> pendulum.DateTime:
    return at.in_timezone(SHANGHAI)


class TestCountingBack:
    def test_calendar_hours_before_a_deadline(self) -> None:
        assert reminder_at(local(2026, 6, 8, 17), parse_duration("4 hours"), CALENDAR, tz=SHANGHAI) == \
            local(2026, 6, 8, 13)

    def test_hours_on_working_days_skip_the_weekend_going_back(self) -> None:
        """Monday 02:00 minus 4 h counted on working days: 2 h on Monday, then 2 h of Friday → Friday 22:00."""
        at = reminder_at(local(2026, 6, 8, 2), parse_duration("4 hours on working days"), CALENDAR, tz=SHANGHAI)
        assert at == local(2026, 6, 5, 22)

    def test_working_hours_count_back_inside_office_hours(self) -> None:
        at = reminder_at(local(2026, 6, 10, 10), parse_duration("8 working hours"), CALENDAR, tz=SHANGHAI)
        assert at == local(2026, 6, 9, 10)

    def test_working_days_before_go_to_nine_in_the_morning(self) -> None:
        at = reminder_at(local(2026, 10, 8, 16), parse_duration("1 working day"), CALENDAR, tz=SHANGHAI)
        assert at == local(2026, 9, 30, 9)  # the National Day block is not a working day


def ladder_policy() -> ApprovalPolicy:
    loaded = load_policy(DATA / "approval-policies" / "committee-review.yaml").policy
    assert isinstance(loaded, ApprovalPolicy)
    return loaded


POLICY = ladder_policy()


class TestStepThresholds:
    def test_reminder_then_three_rungs_relative_to_the_sla(self) -> None:
        spec = POLICY.step("department")
        deadline = Deadline(at=local(2026, 6, 8, 17), provisional=False)
        plans = step_thresholds(spec.escalate, deadline, CALENDAR, tz=SHANGHAI, reminders=spec.remind,
                                opened_at=local(2026, 6, 5, 17))
        assert [(p.key, p.action, in_shanghai(p.fire_at), p.rung) for p in plans] == [
            ("remind-1", "remind", local(2026, 6, 8, 13), None),
            ("escalate-1", "escalate", local(2026, 6, 8, 17), 0),
            ("escalate-2", "escalate", local(2026, 6, 9, 23, 59, 59), 1),
            ("escalate-3", "escalate", local(2026, 6, 11, 23, 59, 59), 2)]

    def test_a_reminder_before_the_step_opened_is_dropped(self) -> None:
        spec = POLICY.step("department")
        deadline = Deadline(at=local(2026, 6, 8, 17), provisional=False)
        plans = step_thresholds(spec.escalate, deadline, CALENDAR, tz=SHANGHAI, reminders=spec.remind,
                                opened_at=local(2026, 6, 8, 14))
        assert [p.key for p in plans] == ["escalate-1", "escalate-2", "escalate-3"]

    def test_obligation_thresholds_are_unchanged(self) -> None:
        due = Deadline(at=local(2026, 11, 15, 23, 59, 59), provisional=False)
        rung = EscalationRung(notify=PersonRule.model_validate({"leader_in_charge_of": "owner"}))
        plans = obligation_thresholds(due, [parse_duration("3 working days")], [rung], CALENDAR, tz=SHANGHAI)
        assert [(p.key, in_shanghai(p.fire_at)) for p in plans] == [
            ("remind-1", local(2026, 11, 11, 9)), ("due", due.at), ("escalate-1", due.at)]


def filed(requester: str = "huang.lei") -> RequestState:
    values = validate_form(POLICY, {"subject": "x", "amount": "10"}, ORG)
    return start_request(POLICY, plan_route(POLICY, values, requester, ORG), requester)


class TestRungEffects:
    def test_notify_tells_the_leader_in_charge_of_the_waiting_approver(self) -> None:
        effect = rung_effect(POLICY, filed(), 0, POLICY.step("department").escalate[0], org=ORG)
        assert (effect.action, effect.waiting_on, effect.targets) == ("notify", ("zheng.hao",), ("li.ming",))
        assert effect.why == ("leader in charge (分管领导) of 信息科 (it), the approver's department",)
        assert effect.decision is None

    def test_reassign_moves_the_place_to_the_approvers_superior(self) -> None:
        effect = rung_effect(POLICY, filed(), 0, POLICY.step("department").escalate[1], org=ORG)
        assert (effect.action, effect.targets) == ("reassign", ("li.ming",))
        assert effect.decision is not None and effect.decision.after.steps[0].assignees == ("li.ming",)

    def test_decide_rejects_as_the_system_with_the_rungs_reason(self) -> None:
        effect = rung_effect(POLICY, filed(), 0, POLICY.step("department").escalate[2], org=ORG)
        assert effect.decision is not None
        assert (effect.decision.actor, effect.decision.finished, effect.decision.reason) == (
            "system", "rejected", "超时未审批，自动驳回")

    def test_notify_never_tells_the_requester(self) -> None:
        """马超 files; the rung names the committee members of 财务科: 孙丽, who is the one waiting, and 马超, the
        requester — so nobody is told."""
        text = (DATA / "approval-policies" / "committee-review.yaml").read_text(encoding="utf-8").replace(
            "{notify: {leader_in_charge_of: approver}}", "{notify: {role: committee, in: requester}}")
        p = load_policy_text(text).policy
        assert isinstance(p, ApprovalPolicy)
        state = start_request(p, plan_route(p, validate_form(p, {"subject": "x", "amount": "10"}, ORG), "ma.chao",
                                            ORG), "ma.chao")
        effect = rung_effect(p, state, 0, p.step("department").escalate[0], org=ORG)
        assert effect.waiting_on == ("sun.li",) and effect.targets == ()

    def test_reassign_to_only_the_requester_is_refused(self) -> None:
        text = (DATA / "approval-policies" / "committee-review.yaml").read_text(encoding="utf-8").replace(
            "reassign: {superior_of: approver}", "reassign: {person: huang.lei}")
        p = load_policy_text(text).policy
        assert isinstance(p, ApprovalPolicy)
        with pytest.raises(DecisionError) as excinfo:
            rung_effect(p, filed(), 0, p.step("department").escalate[1], org=ORG)
        assert excinfo.value.reason == "no_approver"
