"""`duly explain`: the real console script shows a route, who is asked and why, as an administrator sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DULY = Path(sys.executable).parent / "duly"
DATA = ROOT / "tests" / "policies" / "data"


def duly(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DULY), "explain", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_fifty_thousand_asks_the_head_of_general_management_and_skips_the_cfo() -> None:
    result = duly("it-hardware-purchase", "--requester", "huang.lei", "--form", "items=交换机", "--form",
                  "amount=50000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "requester: 黄磊 huang.lei, 信息科 (it)" in lines
    assert "1. general-management — 综合管理部负责人审批: applies — `amount <= 50000` is true (amount = 50000.00)" \
        in lines
    assert "   asks: 刘洋 liu.yang — head of 综合管理部 (general)" in lines
    assert "2. cfo — 财务总监审批: skipped — `amount > 50000` is false (amount = 50000.00)" in lines
    assert "   escalation 1: at the SLA deadline, notify leader_in_charge_of: approver" in lines
    assert lines[-1] == "route: general-management"
    assert "due" not in result.stdout  # no --at, no dates


def test_at_prints_a_sample_deadline_on_the_working_day_calendar() -> None:
    result = duly("it-hardware-purchase", "--requester", "huang.lei", "--form", "items=交换机", "--form",
                  "amount=50000.01", "--at", "2026-09-30T16:00")
    assert result.returncode == 0, result.stderr
    assert "   asks: 赵卫东 zhao.weidong — has role cfo" in result.stdout.splitlines()
    assert ("   SLA: 24 hours on working days → due 2026-10-08 16:00 if the step opens at 2026-09-30 16:00"
            in result.stdout.splitlines())


def test_a_policy_file_with_an_organisation_file_shows_the_resolution_through_the_organisation() -> None:
    result = duly(DATA / "approval-policies" / "fine-waiver.yaml",
                  "--organisation", DATA / "approval-organisation.yaml", "--requester", "lin.fang",
                  "--form", "issuer=security", "--form", "amount=200", "--form", "reason=初犯")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "   asks: 唐宝 tang.bao — head of 保卫科 (security), chosen in form field issuer" in lines
    assert "   asks: 陈静 chen.jing — superior of the approver 唐宝 tang.bao: leader in charge (分管领导) of 保卫科 " \
           "(security)" in lines


def test_a_requester_who_is_the_only_approver_cannot_file_and_exits_1() -> None:
    result = duly("it-hardware-purchase", "--requester", "liu.yang", "--form", "items=打印机", "--form", "amount=3000")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "   not asked: 刘洋 liu.yang — the requester is never an approver" in lines
    assert any("resolves to only the requester" in line for line in lines)
    assert lines[-1].endswith("(cannot be filed as given)")


def test_missing_required_fields_are_noted_and_the_route_is_still_shown() -> None:
    result = duly("it-hardware-purchase", "--requester", "huang.lei", "--form", "amount=10")
    assert result.returncode == 1
    assert "note: required field(s) not given: items" in result.stdout
    assert "   asks: 刘洋 liu.yang — head of 综合管理部 (general)" in result.stdout.splitlines()


def test_bad_arguments_exit_2_with_a_message_and_no_traceback() -> None:
    for args in (["no-such-policy", "--requester", "huang.lei"],
                 ["it-hardware-purchase", "--requester", "nobody"],
                 ["it-hardware-purchase", "--requester", "huang.lei", "--form", "amount"],
                 ["it-hardware-purchase", "--requester", "huang.lei", "--at", "tomorrow"]):
        result = duly(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_a_bad_form_value_is_a_problem_exit_1() -> None:
    result = duly("it-hardware-purchase", "--requester", "huang.lei", "--form", "amount=1.001")
    assert result.returncode == 1
    assert "   amount: 单笔合同金额（元）: money has at most two decimals (fen)" in result.stdout.splitlines()
