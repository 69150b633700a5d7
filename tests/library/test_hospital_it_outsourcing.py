"""The hospital-it-outsourcing profile (seed 003 S2/S5, AC-36, SC-25): no vendor without a signed
confidentiality agreement, a security officer's risk control on every access, and a reassessment after a
major incident (D-115)."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest

from duly.checking import check_paths
from policies.events import due_after_event
from policies.forms import FormError

PROFILE = "hospital-it-outsourcing"
ACCESS = {"vendor": "某信息技术有限公司", "staff": "王工 310***", "area": "机房", "purpose": "HIS 数据库补丁升级",
          "visit_on": "2026-08-20", "agreement": "f-20260301-0012", "controls": "全程陪同，临时账号用后注销"}
ENGAGEMENT = {"vendor": "某信息技术有限公司", "scope": "HIS 系统运维", "agreement": "f-20260301-0012",
              "education": "f-20260301-0013", "qualification": "f-20260301-0014"}


def test_the_profile_checks_without_errors_or_warnings(profile) -> None:
    report = check_paths([profile.folder])
    assert report.problems == []
    assert sorted(p.id for p in report.policies) == [
        "outsourcing-security", "vendor-access", "vendor-engagement", "vendor-reassessment"]


class TestSC25:
    def test_a_vendor_without_a_signed_agreement_cannot_request_server_room_access(self, profile) -> None:
        with pytest.raises(FormError) as excinfo:
            profile.form("vendor-access", **{k: v for k, v in ACCESS.items() if k != "agreement"})
        assert set(excinfo.value.problems) == {"agreement"}

    def test_a_vendor_without_agreement_education_or_qualifications_cannot_be_taken_on(self, profile) -> None:
        with pytest.raises(FormError) as excinfo:
            profile.form("vendor-engagement", vendor="某公司", scope="运维")
        assert set(excinfo.value.problems) == {"agreement", "education", "qualification"}

    def test_every_access_is_approved_by_a_security_officer_of_the_information_centre(self, profile) -> None:
        planned = profile.plan("vendor-access", "nie.fei", **ACCESS)
        assert [(p.step_id, p.assignees, p.mode) for p in planned] == [
            ("risk-control", ("mao.jun", "yan.ke"), "any")]

    def test_a_security_officer_filing_an_access_is_approved_by_the_other(self, profile) -> None:
        assert profile.asked("vendor-access", "mao.jun", **ACCESS) == [("risk-control", ("yan.ke",))]

    def test_a_major_incident_on_friday_14_august_calls_for_a_reassessment_by_28_august(
            self, profile, work_calendar) -> None:
        policy = profile.calendar("outsourcing-security")
        rules = policy.rules_for("D-115")
        due = due_after_event(pendulum.datetime(2026, 8, 14, 15, tz="Asia/Shanghai"), rules, work_calendar,
                              policy.timezone)
        assert (due.at.isoformat(), due.provisional) == ("2026-08-28T23:59:59+08:00", False)
        assert (rules.owner.codes, rules.owner.role, rules.review) == (("info",), "security_officer",
                                                                       "vendor-reassessment")

    def test_the_reassessment_is_assessed_then_decided_by_the_leader_in_charge(self, profile) -> None:
        assert profile.asked("vendor-reassessment", "nie.fei", vendor="某信息技术有限公司", incident="运维账号泄露",
                             incident_on="2026-08-14", decision="停止外包服务", report="f-20260820-0001") == [
            ("security-officer", ("mao.jun", "yan.ke")), ("leader-in-charge", ("shao.min",))]


def test_a_vendor_is_taken_on_after_the_security_officer_and_the_leader_in_charge(profile) -> None:
    assert profile.asked("vendor-engagement", "chang.feng", **ENGAGEMENT) == [
        ("security-officer", ("mao.jun", "yan.ke")), ("leader-in-charge", ("shao.min",))]


def test_the_reassessment_is_not_a_date_on_the_years_calendar(profile, work_calendar) -> None:
    assert list(profile.calendar("outsourcing-security").occurrences(
        work_calendar, date(2026, 1, 1), date(2026, 12, 31))) == []
