"""Calendar policies: how an obligation's keys are put together, coupled deadlines, the occurrences of a
year (seed SC-01, SC-03, SC-09, SC-23), and every bad input pointing at its place in the file."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.calendar import WorkCalendar
from policies.errors import PolicyError, Problem
from policies.events import EventRule, due_after_event
from policies.loader import ORGANISATION_FILE, load_policy, load_policy_text
from policies.models import CalendarPolicy
from policies.recurrence import period_containing, periods_between

CALENDAR = WorkCalendar.default()
SHANGHAI = "Asia/Shanghai"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calendars"
LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"
SHIPPED = ("municipal-stats", "hospital-stats")  # moved from the fixtures into the library as real profiles
D = date

BASE = """\
kind: calendar
id: stats
title: 统计报表
defaults:
  due: day 15 of next month
  owner: {department: performance, role: statistician}
obligations:
  - {id: D-001, title: 门诊}
  - {id: D-003, title: 住院}
"""  # obligations added below start on line 10


def policy(extra: str = "", base: str = BASE) -> CalendarPolicy:
    loaded = load_policy_text(base + extra, file="p.yaml").policy
    assert isinstance(loaded, CalendarPolicy)
    return loaded


def fixture(name: str) -> CalendarPolicy:
    folder = LIBRARY / name if name in SHIPPED else FIXTURES / name
    (path,) = [p for p in folder.glob("*.yaml") if p.name != ORGANISATION_FILE]
    loaded = load_policy(path).policy
    assert isinstance(loaded, CalendarPolicy)
    return loaded


def problems(extra: str, base: str = BASE) -> list[Problem]:
    with pytest.raises(PolicyError) as excinfo:
        load_policy_text(base + extra, file="p.yaml")
    return excinfo.value.problems


def only_problem(extra: str, base: str = BASE) -> Problem:
    found = problems(extra, base)
    assert len(found) == 1, found
    return found[0]


def column_of(extra: str, needle: str, line: int = 10) -> tuple[int, int]:
    return line, (BASE + extra).splitlines()[line - 1].index(needle) + 1


def iso(moment: pendulum.DateTime | None) -> str:
    assert moment is not None
    return moment.in_timezone(SHANGHAI).isoformat()


class TestDefaultsAndOwnKeys:
    def test_an_obligation_s_own_key_wins_over_defaults(self) -> None:
        rules = policy('  - {id: D-030, title: 月报, due: day 5 of next month, at: "17:00"}\n').rules_for("D-030")
        assert (rules.due.text, rules.at, rules.owner.department) == ("day 5 of next month", time(17), "performance")

    def test_the_recurrence_defaults_to_monthly(self) -> None:
        assert str(policy().rules_for("D-001").recurrence) == "monthly"

    def test_an_owner_without_a_role_keeps_the_role_under_defaults(self) -> None:
        rules = policy("  - {id: D-019, title: 卫统6表, owner: {departments: [district_bureau, county]}}\n")
        owner = rules.rules_for("D-019").owner
        assert (owner.codes, owner.role) == (("district_bureau", "county"), "statistician")

    def test_an_owner_with_role_null_is_reminded_through_the_head(self) -> None:
        owner = policy("  - {id: D-019, title: 卫统6表, owner: {department: office, role: null}}\n").rules_for(
            "D-019").owner
        assert owner.role is None

    def test_the_older_override_block_still_works(self) -> None:
        rules = policy("  - {id: D-030, title: 月报, override: {due: day 5 of next month}}\n").rules_for("D-030")
        assert rules.due.text == "day 5 of next month"

    def test_weekday_is_short_for_a_weekday_rule(self) -> None:
        rules = policy("  - {id: W-1, title: 周报, recurrence: weekly, weekday: friday}\n").rules_for("W-1")
        assert rules.due.text == "friday of this week" and rules.due.weekday == 4

    def test_an_obligation_s_due_wins_over_a_weekday_under_defaults(self) -> None:
        text = BASE.replace("  due: day 15 of next month\n", "  recurrence: weekly\n  weekday: friday\n")
        rules = policy("  - {id: W-2, title: 周一报, due: monday of this week}\n", base=text).rules_for("W-2")
        assert rules.due.weekday == 0

    def test_review_lead_time_attachments_and_note_are_kept(self) -> None:
        rules = policy("  - {id: D-050, title: 对外报送, review: external-report-signoff, lead_time: 3 working days,"
                       " attachments: [paper_copy_sealed, {kind: pdf, label: 电子版}], note: 先审后报}\n"
                       ).rules_for("D-050")
        assert rules.review == "external-report-signoff" and rules.lead_time is not None
        assert [a.kind for a in rules.attachments] == ["paper_copy_sealed", "pdf"] and rules.note == "先审后报"

    def test_a_submission_without_the_sealed_paper_copy_is_incomplete(self) -> None:
        """SC-03: 卫统1表 without a `paper_copy_sealed` attachment does not close the obligation."""
        rules = fixture("municipal-stats").rules_for("D-017")
        assert [a.kind for a in rules.missing_attachments(["pdf"])] == ["paper_copy_sealed"]
        assert rules.missing_attachments(["pdf", "paper_copy_sealed"]) == ()

    def test_a_trigger_makes_same_day_an_event_rule_and_drops_the_recurrence(self) -> None:
        rules = policy("  - {id: D-102, title: 隐患整改, trigger: hazard_found, due: same day}\n").rules_for("D-102")
        assert isinstance(rules.due, EventRule) and rules.recurrence is None and rules.event_relative


class TestCoupledDeadlines:
    """Seed D-014/D-015: 「季报、半年报与末月报一起报送」 — due with the period's last monthly report."""

    EXTRA = ("  - {id: D-014, title: 季报, recurrence: quarterly, due: {with: D-003}}\n"
             "  - {id: D-015, title: 半年报, recurrence: half-yearly, due: {with: D-003}, lead_time: 2 working days}\n")

    def test_a_quarterly_report_is_due_with_the_quarter_s_last_monthly_report(self) -> None:
        p = policy(self.EXTRA)
        q3, q4 = (period_containing(D(2026, m, 1), "quarterly") for m in (7, 10))
        assert iso(p.due_for("D-014", q3, CALENDAR).at) == "2026-10-15T23:59:59+08:00"
        q4_due = p.due_for("D-014", q4, CALENDAR)
        assert iso(q4_due.at) == "2027-01-15T23:59:59+08:00" and q4_due.provisional

    def test_a_coupled_report_follows_the_shift_of_the_one_it_rides_on(self) -> None:
        text = BASE.replace("{id: D-003, title: 住院}",
                            "{id: D-003, title: 住院, due: day 4 of next month, non_working_day: next_working_day}")
        q3 = policy(self.EXTRA, base=text).due_for("D-014", period_containing(D(2026, 9, 1), "quarterly"), CALENDAR)
        assert iso(q3.at) == "2026-10-08T23:59:59+08:00"  # 10-04 is in 国庆节; the next working day is 10-08
        assert (q3.nominal, q3.shift) == (D(2026, 10, 4), "next_working_day")

    def test_a_coupled_report_keeps_its_own_lead_time(self) -> None:
        due = policy(self.EXTRA).due_for("D-015", period_containing(D(2026, 1, 1), "half-yearly"), CALENDAR)
        assert iso(due.at) == "2026-07-15T23:59:59+08:00"
        assert iso(due.internal_at) == "2026-07-13T23:59:59+08:00"


class TestOccurrences:
    def test_sc01_october_outpatient_report_is_due_sunday_november_15_for_each_owner(self) -> None:
        found = [o for o in fixture("municipal-stats").occurrences(CALENDAR, D(2026, 11, 1), D(2026, 11, 30))
                 if o.obligation.id == "D-001"]
        assert [(o.owner, o.period.key, iso(o.due.at), o.due.shift) for o in found] == [
            ("hospital_h", "2026-10", "2026-11-15T23:59:59+08:00", "none"),
            ("district_bureau", "2026-10", "2026-11-15T23:59:59+08:00", "none")]

    def test_sc03_annual_cycle_of_the_municipal_calendar(self) -> None:
        found = {(o.obligation.id, o.owner): o for o in fixture("municipal-stats").occurrences(
            CALENDAR, D(2027, 1, 16), D(2027, 3, 31)) if o.rules.recurrence and o.rules.recurrence.kind == "yearly"}
        january = {k: iso(o.due.at) for k, o in found.items() if o.due.nominal.month == 1}
        both = ("hospital_h", "district_bureau")
        assert january == {**{(d, who): "2027-01-20T23:59:59+08:00" for d in ("D-016", "D-017", "D-018")
                              for who in both},
                           ("D-019", "district_bureau"): "2027-01-20T23:59:59+08:00",
                           ("D-020", "district_bureau"): "2027-01-20T23:59:59+08:00"}
        march = {k: iso(o.due.at) for k, o in found.items() if o.due.nominal.month == 3}
        assert march == {(d, who): "2027-03-20T23:59:59+08:00" for d in ("D-021", "D-022") for who in both}
        assert all(o.due.provisional and o.period.key == "2026" for o in found.values())

    def test_sc03_annual_cycle_of_the_hospital_statistics_office(self) -> None:
        found = {o.obligation.id: o.due for o in fixture("hospital-stats").occurrences(CALENDAR, D(2027, 1, 1),
                                                                                       D(2027, 3, 31))
                 if o.period.key == "2026"}
        assert {k: iso(v.at) for k, v in found.items()} == {
            "D-035": "2027-01-15T23:59:59+08:00", "D-033": "2027-01-20T23:59:59+08:00",
            "D-034": "2027-03-31T23:59:59+08:00"}

    def test_sc23_fire_safety_calendar_for_2026(self) -> None:
        """On the shipped profile policies/library/service-safety-centre (seed 003 S1); the profile's other
        yearly duties are pinned in tests/library/test_service_safety_centre.py."""
        path = Path(__file__).resolve().parents[2] / "policies/library/service-safety-centre/fire-safety.yaml"
        loaded = load_policy(path).policy
        assert isinstance(loaded, CalendarPolicy)
        found = list(loaded.occurrences(CALENDAR, D(2026, 1, 1), D(2026, 12, 31)))
        by_id: dict[str, list[date]] = {}
        for o in found:
            by_id.setdefault(o.obligation.id, []).append(o.due.nominal)
        sc23 = ("D-109", "D-110", "D-101", "D-112", "D-113-1", "D-113-2")  # the drills: at least 2 a year
        assert {k: len(v) for k, v in by_id.items() if k in sc23} == {
            "D-109": 12, "D-110": 12, "D-101": 4, "D-112": 1, "D-113-1": 1, "D-113-2": 1}
        assert by_id["D-109"][0] == D(2026, 1, 31)  # a Saturday, kept
        assert by_id["D-101"] == [D(2026, 3, 31), D(2026, 6, 30), D(2026, 9, 30), D(2026, 12, 31)]
        assert by_id["D-113-1"] == by_id["D-113-2"] == [D(2026, 12, 31)]

    def test_sc09_weekly_deadlines_of_the_health_bureau_around_national_day(self) -> None:
        found = {(o.obligation.id, o.owner, o.period.key): iso(o.due.at) for o in fixture("health-bureau").occurrences(
            CALENDAR, D(2026, 9, 28), D(2026, 10, 11))}
        assert found[("D-069", "county_a", "2026-W40")] == "2026-09-30T12:00:00+08:00"
        assert found[("D-068", "office", "2026-W41")] == "2026-10-08T12:00:00+08:00"
        assert found[("D-070", "office", "2026-W41")] == "2026-10-05T09:00:00+08:00"
        assert ("D-068", "county_a", "2026-W41") not in found  # the bulletin is the office's alone

    def test_every_two_weeks_meeting_is_due_on_the_second_friday(self) -> None:
        found = [o for o in fixture("health-bureau").occurrences(CALENDAR, D(2026, 1, 1), D(2026, 1, 31))
                 if o.obligation.id == "D-089"]
        assert [(o.period.key, o.due.nominal) for o in found] == [("2026-01-05/P2W", D(2026, 1, 16)),
                                                                   ("2026-01-19/P2W", D(2026, 1, 30))]

    def test_event_relative_obligations_have_no_occurrences_but_a_due_after_each_event(self) -> None:
        p = fixture("health-bureau")
        assert not [o for o in p.occurrences(CALENDAR, D(2026, 1, 1), D(2026, 12, 31)) if o.obligation.id == "D-063"]
        due = due_after_event(pendulum.datetime(2026, 2, 13, 18, tz=SHANGHAI), p.rules_for("D-063"), CALENDAR,
                              p.timezone)
        assert iso(due.at) == "2026-02-14T23:59:59+08:00"  # the make-up Saturday before 春节
        with pytest.raises(ValueError):
            p.due_for("D-063", period_containing(D(2026, 2, 1), "monthly"), CALENDAR)

    def test_skipped_daily_reports_are_left_out(self) -> None:
        found = [o for o in fixture("hospital-stats").occurrences(CALENDAR, D(2026, 10, 1), D(2026, 10, 10))
                 if o.obligation.id == "D-029"]
        # the reports of 09-30 … 10-06 fall due on days off (国庆节); 10-10 is a make-up working Saturday
        assert [o.due.nominal for o in found] == [D(2026, 10, 8), D(2026, 10, 9), D(2026, 10, 10)]


P2 = fixture("municipal-stats")


@settings(max_examples=40, deadline=None)
@given(st.dates(min_value=D(2025, 6, 1), max_value=D(2027, 6, 1)), st.integers(min_value=0, max_value=120))
def test_occurrences_are_exactly_the_deadlines_due_in_the_range(first: date, length: int) -> None:
    last = first + timedelta(days=length)
    found = {(o.obligation.id, o.owner, o.period.key) for o in P2.occurrences(CALENDAR, first, last)}
    expected = set()
    for spec in P2.obligations:
        rules = P2.rules_for(spec)
        assert rules.recurrence is not None
        for period in periods_between(first - timedelta(days=800), last, rules.recurrence):
            due = P2.due_for(spec, period, CALENDAR)
            if due.at is not None and first <= due.at.date() <= last:
                expected |= {(spec.id, owner, period.key) for owner in rules.owner.codes}
    assert found == expected


class TestProblemsPointAtTheirPlace:
    def test_with_an_unknown_obligation_points_at_the_id_and_suggests_one(self) -> None:
        extra = "  - {id: D-014, title: 季报, recurrence: quarterly, due: {with: D-033}}\n"
        problem = only_problem(extra)
        assert (problem.line, problem.column) == column_of(extra, "D-033")
        assert problem.message.startswith("obligations[2].due.with: with: no obligation 'D-033' in this policy; "
                                          "did you mean 'D-003'?")

    def test_with_that_goes_round_in_a_circle_is_refused_at_each_member(self) -> None:
        extra = ("  - {id: D-014, title: 季报, recurrence: quarterly, due: {with: D-015}}\n"
                 "  - {id: D-015, title: 半年报, recurrence: half-yearly, due: {with: D-014}}\n")
        found = problems(extra)
        assert [(p.line, p.message.split(": ", 1)[1]) for p in found] == [
            (10, "with: D-014 → D-015 → D-014 goes round in a circle; one of them needs a rule of its own"),
            (11, "with: D-015 → D-014 → D-015 goes round in a circle; one of them needs a rule of its own")]

    def test_with_itself_is_a_circle(self) -> None:
        assert "D-014 → D-014 goes round in a circle" in only_problem(
            "  - {id: D-014, title: 季报, due: {with: D-014}}\n").message

    def test_with_an_event_relative_obligation_is_refused(self) -> None:
        extra = ("  - {id: D-052, title: 个案, trigger: case_created, due: within 5 working days}\n"
                 "  - {id: D-053, title: 汇总, due: {with: D-052}}\n")
        assert "with: D-052 is due after an event (case_created)" in only_problem(extra).message

    def test_an_event_rule_without_a_trigger_points_at_the_rule(self) -> None:
        extra = "  - {id: D-052, title: 个案, due: within 5 working days}\n"
        problem = only_problem(extra)
        assert (problem.line, problem.column) == column_of(extra, "within")
        assert "counts from an event: add `trigger: EVENT_NAME`" in problem.message

    def test_a_trigger_with_the_default_period_rule_points_at_the_obligation(self) -> None:
        problem = only_problem("  - {id: D-052, title: 个案, trigger: case_created}\n")
        assert (problem.line, problem.column) == (10, 5)
        assert problem.message.startswith('obligations[2]: "day 15 of next month" counts from a period, but the '
                                          "obligation has a trigger (case_created)")

    def test_a_weekday_rule_on_a_monthly_obligation_is_refused(self) -> None:
        extra = "  - {id: W-1, title: 周报, weekday: friday}\n"
        problem = only_problem(extra)
        assert (problem.line, problem.column) == column_of(extra, "friday")
        assert "needs a weekly recurrence (weekly, or every N weeks); this obligation recurs monthly" in problem.message

    def test_weekday_and_due_together_are_refused(self) -> None:
        problem = only_problem("  - {id: W-1, title: 周报, recurrence: weekly, weekday: friday, due: same day}\n")
        assert "give either weekday or due, not both" in problem.message

    def test_a_trigger_with_its_own_recurrence_is_refused(self) -> None:
        problem = only_problem("  - {id: E-1, title: 事件, trigger: emergency, recurrence: monthly, due: 次日}\n")
        assert "an obligation with a trigger (emergency) has no recurrence" in problem.message

    def test_count_event_day_without_a_trigger_is_refused(self) -> None:
        assert "count_event_day applies only to an obligation with a trigger" in only_problem(
            "  - {id: D-030, title: 月报, count_event_day: true}\n").message

    def test_an_obligation_with_no_due_anywhere_is_refused(self) -> None:
        base = BASE.replace("  due: day 15 of next month\n", "")
        found = problems("", base=base)
        assert [(p.line, p.message) for p in found] == [
            (7, "obligations[0]: missing key 'due' (set it on the obligation or under defaults)"),
            (8, "obligations[1]: missing key 'due' (set it on the obligation or under defaults)")]

    @pytest.mark.parametrize(("owner", "message"), [
        ("{department: office, departments: [hr]}", "exactly one of department, departments"),
        ("{departments: []}", "list at least one department code"),
        ("{departments: [hr, hr]}", "'hr' is listed twice"),
        ("{department: requester}", "'requester' is a relative name; an owner is a department code"),
    ])
    def test_a_bad_owner_says_what_is_wrong(self, owner: str, message: str) -> None:
        problem = only_problem(f"  - {{id: D-030, title: 月报, owner: {owner}}}\n")
        assert problem.line == 10 and message in problem.message

    def test_a_misspelt_key_suggests_the_right_one(self) -> None:
        problem = only_problem("  - {id: D-030, title: 月报, dues: day 5 of next month}\n")
        assert problem.message == "obligations[2]: unknown key 'dues'"
        assert problem.hint is not None and problem.hint.startswith("did you mean 'due'?")

    def test_an_unknown_recurrence_points_at_it(self) -> None:
        extra = "  - {id: D-030, title: 月报, recurrence: fortnightly}\n"
        problem = only_problem(extra)
        assert (problem.line, problem.column) == column_of(extra, "fortnightly")
        assert "expected daily, weekly, monthly, quarterly, half-yearly, yearly or {every: N" in problem.message

    def test_a_rule_in_neither_grammar_lists_both(self) -> None:
        problem = only_problem("  - {id: D-030, title: 月报, due: the 15th}\n")
        assert 'expected a rule like "day 15 of next month", got "the 15th" (period rules: ' in problem.message
        assert "with a trigger: within N working days" in problem.message

    def test_a_key_set_both_directly_and_under_override_is_refused(self) -> None:
        problem = only_problem("  - {id: D-030, title: 月报, at: '09:00', override: {at: '10:00'}}\n")
        assert problem.message == "obligations[2].at: at is set both here and under override"

    def test_an_unknown_time_zone_is_refused(self) -> None:
        problem = only_problem("", base=BASE.replace("title: 统计报表\n", "title: 统计报表\ntimezone: Asia/Beijing\n"))
        assert (problem.line, problem.message) == (
            4, "timezone: unknown time zone 'Asia/Beijing'; use an IANA name such as Asia/Shanghai")

    def test_every_problem_of_the_file_is_reported_at_once(self) -> None:
        extra = ("  - {id: D-014, title: 季报, due: {with: D-099}}\n"
                 "  - {id: D-052, title: 个案, due: within 5 working days}\n"
                 "  - {id: W-1, title: 周报, weekday: friday}\n")
        assert [p.line for p in problems(extra)] == [10, 11, 12]
