"""The health-bureau profile (seed 000 P12): information items reviewed by the section head and, when
important, the leader in charge (AC-07); weekly deadlines with opposite holiday shifts (D-068, D-069, D-070,
SC-09); emergency and activity information (D-063, D-064); the weekly quota and points (D-066, E-13, E-14)."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest

from policies.calendar import WorkCalendar
from policies.durations import add_duration
from policies.events import due_after_event
from policies.loader import load_policy_text
from policies.models import CalendarPolicy
from policies.points import Outcome, half_year_points
from policies.recurrence import period_containing

PROFILE = "health-bureau"
SHANGHAI = "Asia/Shanghai"
SECTIONS = ("medical_section", "disease_section", "planning_section")
COUNTIES_AND_UNITS = ("xifeng_bureau", "qingcheng_bureau", "city_hospital", "city_cdc")


def item(importance: str = "一般信息", channel: str = "电子邮件") -> dict[str, str]:
    return {"title": "全市启动秋冬季流感监测", "importance": importance, "channel": channel, "content": "f-0931"}


def weekly(profile, work_calendar: WorkCalendar, first: date, last: date) -> dict[tuple[str, str, str], str]:
    """(obligation, owner, ISO week) → due instant, over every weekly calendar of the profile."""
    return {(o.obligation.id, o.owner, o.period.key): o.due.at.isoformat()
            for policy_id in ("information-items", "information-bulletin", "information-deadlines")
            for o in profile.calendar(policy_id).occurrences(work_calendar, first, last)}


class TestInformationSubmission:
    def test_an_ordinary_item_is_reviewed_by_the_section_head_only(self, profile) -> None:
        routes = profile.route("information-submission", "chen.chen", **item())
        assert [(r.step.id, r.applies, r.assignees) for r in routes] == [
            ("section-head", True, ("zhang.wei",)), ("leader-in-charge", False, ())]

    def test_an_important_item_is_then_approved_by_the_section_s_leader_in_charge(self, profile) -> None:
        assert profile.asked("information-submission", "hu.jing", **item("重要信息")) == [
            ("section-head", ("yang.fan",)), ("leader-in-charge", ("li.xiulan",))]

    def test_a_paper_item_may_carry_its_sealed_copy(self, profile) -> None:
        form = profile.form("information-submission", **item(channel="纸质"), sealed_copy="纸质-2026-093")
        assert form["sealed_copy"] == "纸质-2026-093"

    def test_a_review_started_the_afternoon_before_national_day_ends_the_morning_after_it(
            self, profile, work_calendar) -> None:
        sla = profile.approval("information-submission").step("section-head").sla
        due = add_duration(pendulum.datetime(2026, 9, 30, 15, tz=SHANGHAI), sla, work_calendar, tz=SHANGHAI)
        assert due.at.isoformat() == "2026-10-08T11:00:00+08:00"  # 2 working hours on 09-30, 2 on 10-08


class TestSc09WeeklyDeadlines:
    def test_the_work_plan_of_national_day_week_is_brought_forward_to_wednesday_noon(
            self, profile, work_calendar) -> None:
        found = weekly(profile, work_calendar, date(2026, 9, 28), date(2026, 10, 11))
        plans = {owner: at for (o, owner, week), at in found.items() if o == "D-069" and week == "2026-W40"}
        assert plans == {owner: "2026-09-30T12:00:00+08:00"
                         for owner in ("leadership", "office", *SECTIONS)}

    def test_the_bulletin_after_national_day_is_postponed_to_thursday_noon(self, profile, work_calendar) -> None:
        found = weekly(profile, work_calendar, date(2026, 9, 28), date(2026, 10, 11))
        assert found[("D-068", "office", "2026-W41")] == "2026-10-08T12:00:00+08:00"

    def test_the_weekly_schedule_has_no_holiday_rule_and_stays_on_monday_nine(self, profile, work_calendar) -> None:
        found = weekly(profile, work_calendar, date(2026, 9, 28), date(2026, 10, 11))
        assert found[("D-070", "office", "2026-W41")] == "2026-10-05T09:00:00+08:00"

    def test_the_weekly_schedule_moved_to_the_next_working_day_would_be_thursday_nine(
            self, profile, work_calendar) -> None:
        """SC-09's variant: the same policy with `non_working_day: next_working_day` for D-070."""
        source = profile.folder / "information-deadlines.yaml"
        text = source.read_text(encoding="utf-8")
        assert text.count("non_working_day: keep") == 1
        variant = load_policy_text(text.replace("non_working_day: keep", "non_working_day: next_working_day"),
                                   file=str(source)).policy
        assert isinstance(variant, CalendarPolicy)
        due = variant.due_for("D-070", period_containing(date(2026, 10, 5), "weekly"), work_calendar)
        assert due.at.isoformat() == "2026-10-08T09:00:00+08:00"

    def test_around_spring_festival_the_plan_moves_to_the_make_up_saturday_and_two_bulletins_to_tuesday(
            self, profile, work_calendar) -> None:
        found = weekly(profile, work_calendar, date(2026, 2, 9), date(2026, 2, 28))
        assert found[("D-069", "office", "2026-W08")] == "2026-02-14T12:00:00+08:00"   # for Friday 02-20
        assert found[("D-068", "office", "2026-W08")] == "2026-02-24T12:00:00+08:00"   # for Monday 02-16
        assert found[("D-068", "office", "2026-W09")] == "2026-02-24T12:00:00+08:00"   # for Monday 02-23

    def test_the_bulletin_is_the_office_s_alone_and_counties_owe_no_work_plan(self, profile) -> None:
        assert profile.calendar("information-bulletin").rules_for("D-068").owner.codes == ("office",)
        plan_owners = profile.calendar("information-items").rules_for("D-069").owner.codes
        assert not set(plan_owners) & set(COUNTIES_AND_UNITS)


class TestWeeklyItems:
    def test_every_county_unit_and_section_owes_an_item_by_friday_even_a_holiday_friday(
            self, profile, work_calendar) -> None:
        found = weekly(profile, work_calendar, date(2026, 9, 28), date(2026, 10, 4))
        items = {owner: at for (o, owner, week), at in found.items() if o == "D-066"}
        assert items == {owner: "2026-10-02T23:59:59+08:00" for owner in (*SECTIONS, *COUNTIES_AND_UNITS)}


class TestEvents:
    def test_an_emergency_on_friday_before_spring_festival_is_due_on_the_make_up_saturday(
            self, profile, work_calendar) -> None:
        policy = profile.calendar("information-deadlines")
        due = due_after_event(pendulum.datetime(2026, 2, 13, 18, tz=SHANGHAI), policy.rules_for("D-063"),
                              work_calendar, policy.timezone)
        assert due.at.isoformat() == "2026-02-14T23:59:59+08:00"

    def test_activity_material_is_due_the_next_day_even_a_holiday(self, profile, work_calendar) -> None:
        policy = profile.calendar("information-deadlines")
        due = due_after_event(pendulum.datetime(2026, 9, 30, 17, tz=SHANGHAI), policy.rules_for("D-064"),
                              work_calendar, policy.timezone)
        assert due.at.isoformat() == "2026-10-01T23:59:59+08:00"


class TestPoints:
    def outcomes(self, profile, work_calendar: WorkCalendar, policy_id: str, owner: str,
                 results: list[str]) -> list[Outcome]:
        found = [o for o in profile.calendar(policy_id).occurrences(work_calendar, date(2026, 7, 1),
                                                                     date(2026, 12, 31)) if o.owner == owner]
        assert len(found) == len(results)
        return [Outcome(department=owner, obligation=o.obligation.id, period=o.period.key, due_on=o.due.at.date(),
                        result=r) for o, r in zip(found, results, strict=True)]  # type: ignore[arg-type]

    def test_a_county_with_20_weeks_on_time_2_late_and_4_missing_ends_the_half_year_at_76(
            self, profile, work_calendar) -> None:
        rule = profile.calendar("information-items").points
        assert rule is not None
        outcomes = self.outcomes(profile, work_calendar, "information-items", "xifeng_bureau",
                                 ["on_time"] * 20 + ["late"] * 2 + ["missing"] * 4)
        tally = half_year_points(rule, outcomes, department="xifeng_bureau",
                                 half=period_containing(date(2026, 7, 1), "half-yearly"))
        assert (tally.base, tally.total) == (60, 76)

    def test_a_section_is_scored_on_its_items_and_its_work_plans(self, profile, work_calendar) -> None:
        rule = profile.calendar("information-items").points
        assert rule is not None
        weeks = 26  # 2026-W27 … W52: the Fridays of July–December
        outcomes = self.outcomes(profile, work_calendar, "information-items", "medical_section",
                                 ["on_time"] * (2 * weeks - 1) + ["missing"])
        tally = half_year_points(rule, outcomes, department="medical_section",
                                 half=period_containing(date(2026, 12, 1), "half-yearly"))
        assert tally.total == 60 + (2 * weeks - 1) - 1

    @pytest.mark.parametrize(("result", "total"), [("on_time", 61), ("late", 60), ("missing", 59)])
    def test_the_editor_scores_plus_one_nothing_or_minus_one_for_a_bulletin(
            self, profile, result: str, total: int) -> None:
        rule = profile.calendar("information-bulletin").points
        assert rule is not None
        outcome = Outcome(department="office", obligation="D-068", period="2026-W41", due_on=date(2026, 10, 8),
                          result=result)  # type: ignore[arg-type]
        tally = half_year_points(rule, [outcome], department="office",
                                 half=period_containing(date(2026, 10, 8), "half-yearly"))
        assert tally.total == total
