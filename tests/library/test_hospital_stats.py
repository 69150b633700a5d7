"""The hospital-stats profile (seed 000 P3, D-029…D-036): the statistics room's daily report at 09:00 with
holidays excepted, the monthly report by the 5th, the quarterly by the 10th, 《医院信息》 by the 12th, the
half-year and annual reports and the full-year compilation (SC-03)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from policies.recurrence import period_containing

PROFILE = "hospital-stats"
POLICY = "hospital-stats"


def test_a_year_of_deadlines_by_obligation(profile, work_calendar) -> None:
    found = Counter(o.obligation.id for o in profile.calendar(POLICY).occurrences(
        work_calendar, date(2026, 1, 1), date(2026, 12, 31)))
    assert found == {"D-029": 248, "D-030": 12, "D-031": 4, "D-032": 1, "D-033": 1, "D-034": 1, "D-035": 1,
                     "D-036": 12}
    assert sum(found.values()) == 280  # 248: one daily report per working day of 2026


def test_sc03_annual_cycle_for_2026(profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    year = period_containing(date(2026, 1, 1), "yearly")
    dues = {d: policy.due_for(d, year, work_calendar) for d in ("D-032", "D-033", "D-034", "D-035")}
    assert {d: (v.at.isoformat(), v.provisional) for d, v in dues.items()} == {
        "D-032": ("2026-07-15T23:59:59+08:00", False),   # a Wednesday
        "D-035": ("2027-01-15T23:59:59+08:00", True),    # a Friday
        "D-033": ("2027-01-20T23:59:59+08:00", True),
        "D-034": ("2027-03-31T23:59:59+08:00", True)}    # "in the first quarter of the next year"


def test_monthly_report_by_the_5th_and_the_bulletin_by_the_12th(profile, work_calendar) -> None:
    policy = profile.calendar(POLICY)
    october = period_containing(date(2026, 10, 1), "monthly")
    assert policy.due_for("D-030", october, work_calendar).at.isoformat() == "2026-11-05T23:59:59+08:00"
    assert policy.due_for("D-036", october, work_calendar).at.isoformat() == "2026-11-12T23:59:59+08:00"


def test_the_third_quarter_report_is_due_on_the_make_up_saturday_october_10(profile, work_calendar) -> None:
    due = profile.calendar(POLICY).due_for("D-031", period_containing(date(2026, 9, 1), "quarterly"),
                                           work_calendar)
    assert (due.at.isoformat(), due.shift) == ("2026-10-10T23:59:59+08:00", "none")


def test_daily_reports_go_out_at_nine_on_working_mornings_only(profile, work_calendar) -> None:
    found = [(o.period.key, o.due.at.isoformat()) for o in profile.calendar(POLICY).occurrences(
        work_calendar, date(2026, 2, 12), date(2026, 2, 25)) if o.obligation.id == "D-029"]
    # 02-14 is the make-up Saturday before 春节 (02-15 … 02-23): the reports due on days off are not owed
    assert found == [("2026-02-11", "2026-02-12T09:00:00+08:00"), ("2026-02-12", "2026-02-13T09:00:00+08:00"),
                     ("2026-02-13", "2026-02-14T09:00:00+08:00"), ("2026-02-23", "2026-02-24T09:00:00+08:00"),
                     ("2026-02-24", "2026-02-25T09:00:00+08:00")]


def test_a_monthly_deadline_on_a_sunday_is_kept(profile, work_calendar) -> None:
    due = profile.calendar(POLICY).due_for("D-036", period_containing(date(2026, 3, 1), "monthly"), work_calendar)
    assert (due.at.isoformat(), due.shift) == ("2026-04-12T23:59:59+08:00", "none")  # a Sunday
