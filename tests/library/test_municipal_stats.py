"""The municipal-stats profile (seed 000 P2 Art. 17, D-001…D-022): 13 monthly reports by the 15th, quarterly
and half-year reports with the last month's, the annual survey forms by 20 January and 20 March, 卫统6表
owed by the district bureau only, sealed paper copies for 卫统1表 and 卫统4表 (SC-01, SC-03)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from policies.escalation import reminder_at
from policies.recurrence import period_containing
from policies.routing import Context, resolve_people

PROFILE = "municipal-stats"
POLICY = "municipal-stats"
MONTHLY = [f"D-{n:03d}" for n in range(1, 14)]
BOTH = ("hospital_h", "district_bureau")


def test_a_year_of_deadlines_by_obligation_and_owner(profile, work_calendar) -> None:
    found = Counter((o.obligation.id, o.owner) for o in profile.calendar(POLICY).occurrences(
        work_calendar, date(2026, 1, 1), date(2026, 12, 31)))
    expected = {(d, who): 12 for d in MONTHLY for who in BOTH}
    expected |= {("D-014", who): 4 for who in BOTH}  # 2025-Q4 … 2026-Q3
    expected |= {(d, who): 1 for d in ("D-015", "D-016", "D-017", "D-018", "D-021", "D-022") for who in BOTH}
    expected |= {("D-019", "district_bureau"): 1, ("D-020", "district_bureau"): 1}
    assert found == expected and sum(found.values()) == 334


def test_sc01_every_monthly_report_for_october_is_due_sunday_november_15_unshifted(profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    october = period_containing(date(2026, 10, 1), "monthly")
    dues = {d: policy.due_for(d, october, work_calendar) for d in MONTHLY}
    assert {d.at.isoformat() for d in dues.values()} == {"2026-11-15T23:59:59+08:00"}
    assert {(d.shift, d.provisional) for d in dues.values()} == {("none", False)}


def test_the_statistician_is_reminded_three_working_days_before_and_the_leader_in_charge_told_at_the_due(
        profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    rules = policy.rules_for("D-001")
    due = policy.due_for("D-001", period_containing(date(2026, 10, 1), "monthly"), work_calendar)
    (before,) = rules.remind
    assert reminder_at(due.at, before, work_calendar, tz=policy.timezone).isoformat() == "2026-11-11T09:00:00+08:00"
    (rung,) = rules.escalate
    assert rung.after is None and [c.person_id for c in resolve_people(
        rung.notify, profile.org, Context(owner_department="district_bureau"))] == ["zhao.min"]


def test_quarterly_reports_are_due_with_the_last_monthly_report_of_the_quarter(profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    dues = [policy.due_for("D-014", period_containing(date(2026, m, 1), "quarterly"), work_calendar)
            for m in (1, 4, 7, 10)]
    assert [d.at.isoformat() for d in dues] == ["2026-04-15T23:59:59+08:00", "2026-07-15T23:59:59+08:00",
                                                "2026-10-15T23:59:59+08:00", "2027-01-15T23:59:59+08:00"]
    assert [d.provisional for d in dues] == [False, False, False, True]


def test_the_half_year_report_is_owed_once_a_year_on_the_june_reports_day(profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    found = [o for o in policy.occurrences(work_calendar, date(2026, 1, 1), date(2027, 12, 31))
             if o.obligation.id == "D-015" and o.owner == "hospital_h"]
    june = policy.due_for("D-003", period_containing(date(2026, 6, 1), "monthly"), work_calendar)
    assert [o.period.key for o in found] == ["2026", "2027"]
    assert found[0].due.at == june.at and june.at.isoformat() == "2026-07-15T23:59:59+08:00"
    assert found[1].due.at.isoformat() == "2027-07-15T23:59:59+08:00"


class TestSc03AnnualCycle:
    def test_annual_report_and_the_survey_forms_are_due_wednesday_january_20_provisionally(
            self, profile, work_calendar) -> None:
        policy = profile.calendar(POLICY)
        year = period_containing(date(2026, 1, 1), "yearly")
        for obligation in ("D-016", "D-017", "D-018", "D-019", "D-020"):
            due = policy.due_for(obligation, year, work_calendar)
            assert (due.at.isoformat(), due.provisional) == ("2027-01-20T23:59:59+08:00", True), obligation

    def test_wt6_and_its_annex_are_owed_by_the_district_bureau_only(self, profile) -> None:
        policy = profile.calendar(POLICY)
        assert {d: policy.rules_for(d).owner.codes for d in ("D-019", "D-020")} == {
            "D-019": ("district_bureau",), "D-020": ("district_bureau",)}
        assert policy.rules_for("D-019").owner.role == "statistician"  # the role comes from the defaults

    def test_wt2_and_wt3_are_due_saturday_march_20(self, profile, work_calendar) -> None:
        policy = profile.calendar(POLICY)
        year = period_containing(date(2026, 1, 1), "yearly")
        assert {policy.due_for(d, year, work_calendar).at.isoformat() for d in ("D-021", "D-022")} == {
            "2027-03-20T23:59:59+08:00"}

    @pytest.mark.parametrize("obligation", ["D-017", "D-018"])
    def test_wt1_and_wt4_without_the_sealed_paper_copy_are_incomplete(self, profile, obligation: str) -> None:
        rules = profile.calendar(POLICY).rules_for(obligation)
        assert [a.kind for a in rules.missing_attachments(["excel"])] == ["paper_copy_sealed"]
        assert rules.missing_attachments(["excel", "paper_copy_sealed"]) == ()

    def test_the_annual_report_itself_needs_no_paper_copy(self, profile) -> None:
        assert profile.calendar(POLICY).rules_for("D-016").missing_attachments([]) == ()
