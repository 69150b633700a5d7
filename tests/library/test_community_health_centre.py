"""The community-health-centre profile (seed 000 P1): the centre leader's signature on every refund (AC-01),
and the monthly and daily duties of medical-insurance information security (D-055, D-056, D-058)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pendulum
import pytest

from policies.durations import add_duration
from policies.forms import FormError

PROFILE = "community-health-centre"
SHANGHAI = "Asia/Shanghai"


class TestPatientRefund:
    @pytest.mark.parametrize("amount", ["0.01", "200.00", "98000.50"])
    def test_every_refund_whatever_its_amount_is_signed_by_one_centre_leader(self, profile, amount: str) -> None:
        planned = profile.plan("patient-refund", "zhu.qing", amount=amount, items="检查费")
        assert [(p.step_id, p.mode, p.assignees) for p in planned] == [
            ("centre-leader", "any", ("lu.jianhua", "xu.min"))]
        assert planned[0].why == ("has role centre_leader", "has role centre_leader")

    def test_a_centre_leader_who_files_a_refund_does_not_sign_it(self, profile) -> None:
        (route,) = profile.route("patient-refund", "xu.min", amount="30.00", items="挂号费")
        assert route.assignees == ("lu.jianhua",)
        assert [(e.person_id, e.why) for e in route.excluded] == [("xu.min", "the requester is never an approver")]

    def test_a_refund_of_nothing_is_refused_by_the_form(self, profile) -> None:
        with pytest.raises(FormError) as excinfo:
            profile.form("patient-refund", amount="0.00", items="药品")
        assert set(excinfo.value.problems) == {"amount"}

    def test_a_refund_filed_before_national_day_is_due_the_first_working_day_after_it(
            self, profile, work_calendar) -> None:
        sla = profile.approval("patient-refund").step("centre-leader").sla
        filed = pendulum.datetime(2026, 9, 30, 16, tz=SHANGHAI)
        due = add_duration(filed, sla, work_calendar, tz=SHANGHAI)
        assert due.at.isoformat() == "2026-10-08T23:59:59+08:00"


class TestInsuranceSecurityCalendar:
    def test_a_year_of_backups_reconciliations_and_spot_checks(self, profile, work_calendar) -> None:
        found = list(profile.calendar("insurance-it-security").occurrences(work_calendar, date(2026, 1, 1),
                                                                           date(2026, 12, 31)))
        assert Counter((o.obligation.id, o.owner) for o in found) == {
            ("D-055", "information"): 12, ("D-056", "information"): 365, ("D-058", "security_group"): 12}

    def test_backup_and_spot_check_are_due_on_the_last_day_of_each_month_even_a_sunday(
            self, profile, work_calendar) -> None:
        policy = profile.calendar("insurance-it-security")
        found = {(o.obligation.id, o.period.key): o.due for o in policy.occurrences(
            work_calendar, date(2026, 5, 1), date(2026, 5, 31))}
        backup, check = found[("D-055", "2026-05")], found[("D-058", "2026-05")]
        assert backup.at.isoformat() == check.at.isoformat() == "2026-05-31T23:59:59+08:00"  # a Sunday, kept
        assert backup.shift == "none"

    def test_reconciliation_is_due_the_same_day_also_on_a_holiday(self, profile, work_calendar) -> None:
        policy = profile.calendar("insurance-it-security")
        (day,) = [o.due for o in policy.occurrences(work_calendar, date(2026, 10, 1), date(2026, 10, 1))
                  if o.obligation.id == "D-056"]
        assert (day.at.isoformat(), day.shift) == ("2026-10-01T23:59:59+08:00", "none")

    def test_the_security_officer_is_reminded_of_backups_and_the_director_of_spot_checks(self, profile) -> None:
        policy = profile.calendar("insurance-it-security")
        backup, check = policy.rules_for("D-055").owner, policy.rules_for("D-058").owner
        assert (backup.role, profile.org.with_role("security_info_officer")) == ("security_info_officer",
                                                                               ("tang.lei",))
        assert check.role is None and profile.org.departments["security_group"].head == "lu.jianhua"
