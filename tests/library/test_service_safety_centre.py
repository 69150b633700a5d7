"""The service-safety-centre profile (seed 003 S1): the fire-safety calendar of a year (SC-23), the
same-day hazard rectification and the 15-day work-injury report after their events (D-102, D-105, AC-46),
and who accepts a rectified hazard (AC-44) or signs a fire-hazard rectification (AC-45)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pendulum
import pytest

from duly.checking import check_paths
from policies.chain import RouteError
from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.events import due_after_event
from policies.forms import FormError
from policies.recurrence import period_containing
from policies.routing import Context, resolve_people

PROFILE = "service-safety-centre"
CALENDAR_ID = "fire-safety"
SHANGHAI = "Asia/Shanghai"


def event_at(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=SHANGHAI)


def test_the_profile_checks_without_errors_or_warnings(profile) -> None:
    report = check_paths([profile.folder])
    assert report.problems == []
    assert sorted(p.id for p in report.policies) == [
        "fire-hazard-rectification", "fire-safety", "hazard-rectification-acceptance"]


class TestFireSafetyCalendar:
    def test_sc23_a_year_of_inspections_meetings_plan_revision_training_and_two_drills(
            self, profile, work_calendar) -> None:
        found = Counter((o.obligation.id, o.owner) for o in profile.calendar(CALENDAR_ID).occurrences(
            work_calendar, date(2026, 1, 1), date(2026, 12, 31)))
        assert found == {("D-109", "safety"): 12, ("D-110", "safety"): 12, ("D-101", "office"): 4,
                         ("D-112", "office"): 1, ("D-113-1", "office"): 1, ("D-113-2", "office"): 1,
                         ("D-106", "office"): 1, ("D-103", "office"): 1}

    @pytest.mark.parametrize(("month", "due"), [
        (1, "2026-01-31T23:59:59+08:00"),    # a Saturday: kept, the seed has no weekend rule
        (2, "2026-02-28T23:59:59+08:00"),    # the make-up Saturday after 春节
        (9, "2026-09-30T23:59:59+08:00"),
        (10, "2026-10-31T23:59:59+08:00"),
    ])
    def test_the_monthly_fire_inspection_is_due_on_the_last_day_of_its_month(
            self, profile, work_calendar, month: int, due: str) -> None:
        found = profile.calendar(CALENDAR_ID).due_for("D-109", period_containing(date(2026, month, 1), "monthly"),
                                                      work_calendar)
        assert (found.at.isoformat(), found.shift) == (due, "none")

    def test_the_quarterly_specialised_inspection_is_due_at_each_quarters_end(self, profile, work_calendar) -> None:
        dues = [o.due.at.isoformat() for o in profile.calendar(CALENDAR_ID).occurrences(
            work_calendar, date(2026, 1, 1), date(2026, 12, 31)) if o.obligation.id == "D-101"]
        assert dues == ["2026-03-31T23:59:59+08:00", "2026-06-30T23:59:59+08:00", "2026-09-30T23:59:59+08:00",
                        "2026-12-31T23:59:59+08:00"]

    def test_the_inspection_reminds_the_safety_officers_and_the_meeting_the_fire_safety_manager(self, profile) -> None:
        policy = profile.calendar(CALENDAR_ID)
        assert (policy.rules_for("D-109").owner.role, policy.rules_for("D-110").owner.role) == (
            "safety_officer", "fire_safety_manager")
        holders = {role: profile.org.with_role(role) for role in ("safety_officer", "fire_safety_manager")}
        assert holders == {"safety_officer": ("bai.yun", "zhao.lei"), "fire_safety_manager": ("ma.lin",)}

    def test_sc23_a_drill_still_open_on_1_december_is_warned_and_on_1_january_is_late(
            self, profile, work_calendar) -> None:
        policy = profile.calendar(CALENDAR_ID)
        rules = policy.rules_for("D-113-2")
        due = policy.due_for("D-113-2", period_containing(date(2026, 1, 1), "yearly"), work_calendar)
        plans = obligation_thresholds(Deadline(at=due.at, provisional=due.provisional), rules.remind,
                                      rules.escalate, work_calendar, tz=policy.timezone)
        fired = [(p.action, p.fire_at.in_timezone(SHANGHAI).isoformat()) for p in plans]
        assert fired == [("remind", "2026-12-01T23:59:59+08:00"),      # 30 days: the compliance warning
                         ("remind", "2026-12-29T09:00:00+08:00"),      # 2 working days before
                         ("mark_late", "2026-12-31T23:59:59+08:00"),   # non-compliant from 2027-01-01
                         ("escalate", "2026-12-31T23:59:59+08:00")]

    def test_the_drills_escalate_to_the_offices_leader_in_charge(self, profile) -> None:
        [rung] = profile.calendar(CALENDAR_ID).rules_for("D-113-1").escalate
        assert [c.person_id for c in resolve_people(rung.notify, profile.org, Context(owner_department="office"))] \
            == ["gao.jun"]

    def test_the_yearly_duties_for_2027_are_provisional(self, profile, work_calendar) -> None:
        due = profile.calendar(CALENDAR_ID).due_for("D-112", period_containing(date(2027, 1, 1), "yearly"),
                                                    work_calendar)
        assert (due.at.isoformat(), due.provisional) == ("2027-12-31T23:59:59+08:00", True)


class TestEventDeadlines:
    """D-102 「一般隱患必須在當日整改」 and D-105 / AC-46 「15日內」 (003 L68, L106)."""

    def test_a_general_hazard_found_in_the_afternoon_is_due_the_same_day(self, profile, work_calendar) -> None:
        policy = profile.calendar(CALENDAR_ID)
        due = due_after_event(event_at(2026, 6, 10, 16), policy.rules_for("D-102"), work_calendar, policy.timezone)
        assert due.at.isoformat() == "2026-06-10T23:59:59+08:00"

    @pytest.mark.parametrize(("injured", "due"), [
        ((2026, 6, 1, 10), "2026-06-16T23:59:59+08:00"),   # the injury day is not counted
        ((2026, 7, 3, 10), "2026-07-18T23:59:59+08:00"),   # an ordinary Saturday stays
        ((2026, 6, 4, 10), "2026-06-22T23:59:59+08:00"),   # Friday 06-19 is 端午: the day after the holiday
        ((2026, 9, 16, 10), "2026-10-08T23:59:59+08:00"),  # 10-01 is National Day: after the block
    ])
    def test_the_work_injury_report_is_due_15_days_after_the_injury(
            self, profile, work_calendar, injured: tuple[int, ...], due: str) -> None:
        policy = profile.calendar(CALENDAR_ID)
        found = due_after_event(event_at(*injured), policy.rules_for("D-105"), work_calendar, policy.timezone)
        assert found.at.isoformat() == due

    def test_event_obligations_are_not_on_the_calendar_of_a_year(self, profile, work_calendar) -> None:
        ids = {o.obligation.id for o in profile.calendar(CALENDAR_ID).occurrences(
            work_calendar, date(2026, 1, 1), date(2026, 12, 31))}
        assert not ids & {"D-102", "D-105"}


class TestHazardAcceptance:
    """AC-44 (003 L54, L72): the four fixes on the form; accepted by the related department and the office."""

    FORM = {"hazard": "配电房电缆老化", "grade": "一般隐患", "found_on": "2026-06-10", "responsible": "qian.jin",
            "measures": "更换电缆", "deadline": "2026-06-10", "funds": "1200", "related": "logistics"}

    def test_a_subsidiarys_rectification_is_accepted_by_the_related_department_then_the_centre_office(
            self, profile) -> None:
        assert profile.asked("hazard-rectification-acceptance", "lu.hong", **self.FORM) == [
            ("related-department", ("sun.guoqing",)), ("centre-office", ("he.ping",))]

    def test_the_four_fixes_are_required(self, profile) -> None:
        form = {k: v for k, v in self.FORM.items() if k not in ("responsible", "deadline", "funds")}
        with pytest.raises(FormError) as excinfo:
            profile.form("hazard-rectification-acceptance", **form)
        assert set(excinfo.value.problems) == {"responsible", "deadline", "funds"}

    def test_the_centre_office_cannot_be_both_the_related_department_and_the_acceptor(self, profile) -> None:
        with pytest.raises(RouteError, match="distinct approvers"):
            profile.plan("hazard-rectification-acceptance", "lu.hong", **{**self.FORM, "related": "office"})

    def test_the_related_departments_head_does_not_accept_his_own_work(self, profile) -> None:
        with pytest.raises(RouteError, match="only the requester"):
            profile.plan("hazard-rectification-acceptance", "sun.guoqing", **self.FORM)


class TestFireHazardRectification:
    """AC-45 (003 L174): 「報送消防安全責任人或消防安全管理人簽字」."""

    FORM = {"inspection": "f-20260630-0031", "hazard": "厨房灭火器过期", "measures": "更换灭火器 4具",
            "fixed_on": "2026-07-02", "ordered_by": "本单位防火检查"}

    def test_either_the_responsible_person_or_the_manager_signs(self, profile) -> None:
        [step] = profile.plan("fire-hazard-rectification", "zheng.min", **self.FORM)
        assert (step.step_id, step.assignees, step.mode) == ("signature", ("gao.jun", "ma.lin"), "any")

    def test_the_fire_safety_manager_filing_for_her_department_is_signed_by_the_responsible_person(
            self, profile) -> None:
        assert profile.asked("fire-hazard-rectification", "ma.lin", **self.FORM) == [("signature", ("gao.jun",))]
