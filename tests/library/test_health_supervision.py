"""The health-supervision profile (seed 000 P8, AC-06 / D-052 / D-054): the reporter enters a case, a report
administrator audits it, the reporting unit's head submits it, within 5 working days of the case arising
(SC-07); corrected and supplementary reports take the same chain."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest

from policies.chain import Action, apply_action, start_request
from policies.events import due_after_event

PROFILE = "health-supervision"
SHANGHAI = "Asia/Shanghai"


def case(kind: str = "初报", **more: str) -> dict[str, str]:
    return {"case_no": "WJ-2026-0612", "subject": "某游泳场所水质不合格", "arose_on": "2026-06-10",
            "report_kind": kind, **more}


def due_after(profile, obligation: str, event: pendulum.DateTime, work_calendar) -> str:
    policy = profile.calendar("case-reporting")
    return due_after_event(event, policy.rules_for(obligation), work_calendar, policy.timezone).at.isoformat()


class TestChain:
    def test_a_case_is_audited_by_a_report_administrator_then_submitted_by_the_unit_head(self, profile) -> None:
        planned = profile.plan("supervision-report", "xiao.ming", **case())
        assert [(p.step_id, p.mode, p.assignees) for p in planned] == [
            ("report-admin", "any", ("fu.qiang", "lin.xue")), ("unit-head", "any", ("guo.zhiyong",))]

    @pytest.mark.parametrize("kind", ["修报", "补报"])
    def test_corrected_and_supplementary_reports_take_the_same_chain(self, profile, kind: str) -> None:
        assert [s for s, _ in profile.asked("supervision-report", "cheng.kai",
                                            **case(kind, corrects="WJ-2026-0588"))] == ["report-admin", "unit-head"]

    def test_sc07_entered_monday_verified_tuesday_submitted_wednesday_is_on_time(
            self, profile, work_calendar) -> None:
        policy = profile.approval("supervision-report")
        state = start_request(policy, profile.plan("supervision-report", "xiao.ming", **case()), "xiao.ming")
        for step, actor, day in ((0, "lin.xue", 16), (1, "guo.zhiyong", 17)):
            decision = apply_action(policy, state, Action(verb="approve", actor=actor, step=step), org=profile.org,
                                    now=pendulum.datetime(2026, 6, day, 15, tz=SHANGHAI))
            state = decision.after
        assert decision.finished == "approved"
        due = due_after(profile, "D-052", pendulum.datetime(2026, 6, 10, 16, tz=SHANGHAI), work_calendar)
        assert pendulum.datetime(2026, 6, 17, 15, tz=SHANGHAI) <= pendulum.parse(due)


class TestDeadlines:
    def test_sc07_case_arising_wednesday_june_10_is_due_wednesday_june_17(self, profile, work_calendar) -> None:
        assert due_after(profile, "D-052", pendulum.datetime(2026, 6, 10, 16, tz=SHANGHAI),
                         work_calendar) == "2026-06-17T23:59:59+08:00"

    def test_the_dragon_boat_festival_does_not_count(self, profile, work_calendar) -> None:
        # 06-19 (Fri) … 06-21 are days off: the five working days are 06-22 … 06-26
        assert due_after(profile, "D-052", pendulum.datetime(2026, 6, 18, 9, tz=SHANGHAI),
                         work_calendar) == "2026-06-26T23:59:59+08:00"

    @pytest.mark.parametrize("obligation", ["D-054-revision", "D-054-supplement"])
    def test_corrections_are_due_five_working_days_after_the_error_or_omission_is_found(
            self, profile, obligation: str, work_calendar) -> None:
        assert due_after(profile, obligation, pendulum.datetime(2026, 9, 29, 11, tz=SHANGHAI),
                         work_calendar) == "2026-10-12T23:59:59+08:00"  # 09-30, 10-08, 10-09, 10-10 (Sat), 10-12

    def test_every_case_report_goes_through_the_profile_s_review_chain(self, profile) -> None:
        policy = profile.calendar("case-reporting")
        assert {policy.rules_for(o.id).review for o in policy.obligations} == {"supervision-report"}
        assert profile.approval("supervision-report").id == "supervision-report"

    def test_case_reports_have_no_periods_of_their_own(self, profile, work_calendar) -> None:
        assert list(profile.calendar("case-reporting").occurrences(work_calendar, date(2026, 1, 1),
                                                                   date(2026, 12, 31))) == []
