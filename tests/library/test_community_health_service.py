"""The community-health-service profile (seed 000 P4, AC-27 / D-046): at most 5 items a loan, registered by a
materials clerk, a leader's approval first for an outside borrower, back within one week (SC-19)."""

from __future__ import annotations

import pendulum
import pytest

from policies.events import due_after_event
from policies.forms import FormError

PROFILE = "community-health-service"
SHANGHAI = "Asia/Shanghai"
CLERKS = ("du.juan", "jin.lu")
LEADERS = ("yang.hong", "zheng.guoqiang")


def loan(borrower_kind: str = "本中心职工", count: int = 5) -> dict[str, object]:
    return {"borrower_kind": borrower_kind, "borrower_name": "宋巍（全科门诊）", "materials": "高血压防治宣传片",
            "count": str(count), "lent_on": "2026-04-01"}


class TestLending:
    def test_an_internal_loan_is_registered_by_a_materials_clerk_without_a_leader(self, profile) -> None:
        routes = profile.route("material-lending", "song.wei", **loan())
        assert [(r.step.id, r.applies, r.assignees) for r in routes] == [
            ("leader", False, ()), ("register", True, CLERKS)]
        assert routes[0].condition_values == (("borrower_kind", "本中心职工"),)

    def test_an_outside_borrower_needs_a_leader_s_approval_before_the_loan_is_registered(self, profile) -> None:
        assert profile.asked("material-lending", "du.juan", **loan("外单位或个人")) == [
            ("leader", LEADERS), ("register", ("jin.lu",))]  # the clerk who files does not register it herself

    def test_five_items_may_be_lent_and_six_are_refused(self, profile) -> None:
        assert profile.form("material-lending", **loan(count=5))["count"] == 5
        with pytest.raises(FormError) as excinfo:
            profile.form("material-lending", **loan(count=6))
        assert set(excinfo.value.problems) == {"count"}

    def test_a_leader_approves_alone_any_one_of_them(self, profile) -> None:
        (leader, _) = profile.plan("material-lending", "du.juan", **loan("外单位或个人"))
        assert (leader.mode, leader.assignees) == ("any", LEADERS)


class TestReturn:
    def test_sc19_books_lent_wednesday_april_1_are_due_back_wednesday_april_8(self, profile, work_calendar) -> None:
        policy = profile.calendar("material-loans")
        due = due_after_event(pendulum.datetime(2026, 4, 1, 10, tz=SHANGHAI), policy.rules_for("D-046"),
                              work_calendar, policy.timezone)
        assert due.at.isoformat() == "2026-04-08T23:59:59+08:00"

    def test_a_week_ending_on_a_holiday_still_ends_that_day(self, profile, work_calendar) -> None:
        policy = profile.calendar("material-loans")
        due = due_after_event(pendulum.datetime(2026, 9, 24, 15, tz=SHANGHAI), policy.rules_for("D-046"),
                              work_calendar, policy.timezone)
        assert (due.at.isoformat(), due.shift) == ("2026-10-01T23:59:59+08:00", "none")

    def test_the_materials_clerks_are_reminded_of_returns(self, profile) -> None:
        owner = profile.calendar("material-loans").rules_for("D-046").owner
        assert (owner.codes, owner.role) == (("health_education",), "materials_clerk")
