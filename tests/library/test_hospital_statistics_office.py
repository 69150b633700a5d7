"""The hospital-statistics-office profile (seed 000 P5(a), AC-05 / D-050): every report signed by the
department director and the hospital leader in charge, external ones then reviewed by 绩效办, a data query
sending the report back for correction; the external deadline with its internal review deadline (SC-05)."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest

from policies.chain import Action, DecisionError, RouteError, apply_action, start_request
from policies.recurrence import period_containing

PROFILE = "hospital-statistics-office"
SHANGHAI = "Asia/Shanghai"
REVIEWERS = ("shi.lei", "ye.qing")


def report(scope: str = "对外上报") -> dict[str, str]:
    return {"report": "药品使用情况统计表", "period": "2026-10", "scope": scope, "recipient": "自治区卫生健康委",
            "file": "f-20261109-0007"}


def at(day: int, hour: int = 10) -> pendulum.DateTime:
    return pendulum.datetime(2026, 11, day, hour, tz=SHANGHAI)


class TestRoute:
    def test_sc05_an_external_report_is_signed_by_director_then_leader_then_reviewed_by_performance_office(
            self, profile) -> None:
        planned = profile.plan("report-signoff", "cui.na", **report())
        assert [(p.step_id, p.assignees, p.why) for p in planned] == [
            ("department-director", ("su.hang",), ("head of 药剂科 (pharmacy), the requester's department",)),
            ("leader-in-charge", ("ha.wenjun",),
             ("leader in charge (分管领导) of 药剂科 (pharmacy), the requester's department",)),
            ("performance-review", REVIEWERS, ("has role statistician in 绩效办 (performance)",) * 2)]

    def test_an_internal_report_takes_the_two_signatures_only(self, profile) -> None:
        routes = profile.route("report-signoff", "qiu.lin", **report("院内报送"))
        assert [(r.step.id, r.applies, r.assignees) for r in routes] == [
            ("department-director", True, ("luo.ping",)), ("leader-in-charge", True, ("ma.jun",)),
            ("performance-review", False, ())]

    def test_the_performance_office_s_own_report_is_reviewed_by_its_other_statistician(self, profile) -> None:
        assert profile.asked("report-signoff", "ye.qing", **report()) == [
            ("department-director", ("gao.min",)), ("leader-in-charge", ("ma.jun",)),
            ("performance-review", ("shi.lei",))]

    def test_a_director_cannot_file_the_report_they_must_sign(self, profile) -> None:
        with pytest.raises(RouteError) as excinfo:
            profile.plan("report-signoff", "su.hang", **report())
        assert "resolves to only the requester" in str(excinfo.value)


class TestDataQuery:
    """SC-05: 绩效办 questions the data (数据质疑); the report goes back to 药剂科 and is signed again."""

    def test_a_query_returns_the_report_to_the_department_and_every_signature_is_given_again(self, profile) -> None:
        policy = profile.approval("report-signoff")
        state = start_request(policy, profile.plan("report-signoff", "cui.na", **report()), "cui.na")
        for step, actor, day in ((0, "su.hang", 9), (1, "ha.wenjun", 10)):
            state = apply_action(policy, state, Action(verb="approve", actor=actor, step=step),
                                 org=profile.org, now=at(day)).after
        queried = apply_action(policy, state, Action(verb="send_back", actor="ye.qing", step=2, to="requester",
                                                     reason="门诊用药金额与上月差异过大，请核对"),
                               org=profile.org, now=at(11))
        assert (queried.target, queried.after.state) == ("requester", "returned")
        again = apply_action(policy, queried.after, Action(verb="resubmit", actor="cui.na"), org=profile.org,
                             now=at(12)).after
        assert [(s.policy_step, s.state, s.approvals) for s in again.steps] == [
            ("department-director", "pending", ()), ("leader-in-charge", "waiting", ()),
            ("performance-review", "waiting", ())]

    def test_the_query_cannot_skip_the_department_by_going_to_the_leader(self, profile) -> None:
        policy = profile.approval("report-signoff")
        state = start_request(policy, profile.plan("report-signoff", "cui.na", **report()), "cui.na")
        for step, actor in ((0, "su.hang"), (1, "ha.wenjun")):
            state = apply_action(policy, state, Action(verb="approve", actor=actor, step=step), org=profile.org,
                                 now=at(10)).after
        with pytest.raises(DecisionError) as excinfo:
            apply_action(policy, state, Action(verb="send_back", actor="shi.lei", step=2, to="previous",
                                               reason="请分管领导复核"), org=profile.org, now=at(11))
        assert excinfo.value.reason == "bad_target"


class TestExternalDeadline:
    def test_sc05_october_report_is_due_november_15_and_reviewed_by_november_11(self, profile, work_calendar) -> None:
        policy = profile.calendar("external-reports")
        found = {o.owner: o.due for o in policy.occurrences(work_calendar, date(2026, 11, 1), date(2026, 11, 30))}
        assert set(found) == {"finance", "hr", "medical", "insurance", "pharmacy", "public_health", "reform",
                              "performance"}
        due = found["pharmacy"]
        assert (due.at.isoformat(), due.internal_at.isoformat()) == ("2026-11-15T23:59:59+08:00",
                                                                     "2026-11-11T23:59:59+08:00")

    def test_the_review_runs_through_the_profile_s_sign_off_chain(self, profile) -> None:
        review = profile.calendar("external-reports").rules_for("D-050").review
        assert review == "report-signoff" and profile.approval(review).id == "report-signoff"

    def test_the_review_deadline_counts_back_working_days_and_the_make_up_saturday_is_one(
            self, profile, work_calendar) -> None:
        due = profile.calendar("external-reports").due_for("D-050", period_containing(date(2026, 1, 1), "monthly"),
                                                           work_calendar)
        # 02-15 (a Sunday in 春节) is kept; back from it: 02-14 (make-up Saturday), 02-13, 02-12
        assert (due.at.isoformat(), due.internal_at.isoformat()) == ("2026-02-15T23:59:59+08:00",
                                                                     "2026-02-12T23:59:59+08:00")
