"""`duly check`: the real console script, run as an administrator would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DULY = Path(sys.executable).parent / "duly"

# `approvers` misspelled on line 9, column 5.
MISSPELLED = """\
kind: approval
id: laptops
title: Laptop purchase
form:
  amount: {type: money, label: Amount}
steps:
  - id: head
    title: Head approves
    aprovers: {head_of: general}
    sla: 24 hours on working days
"""


def duly(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DULY), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def misspelled_file(tmp_path: Path) -> Path:
    path = tmp_path / "laptops.yaml"
    path.write_text(MISSPELLED, encoding="utf-8")
    return path


def test_shipped_library_checks_ok() -> None:
    """The demo profile; the whole library is checked in tests/library/test_library_profiles.py."""
    result = duly("check", "policies/library/hospital")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok  policies/library/hospital/it-hardware-purchase.yaml  (approval it-hardware-purchase)",
        "ok  policies/library/hospital/municipal-monthly-reports.yaml  (calendar municipal-monthly-reports)",
    ]


def test_misspelled_key_exits_1_with_file_line_column_and_hint(tmp_path: Path) -> None:
    path = misspelled_file(tmp_path)
    result = duly("check", path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}:9:5: steps[0]: unknown key 'aprovers'"
    assert lines[1].startswith("  hint: did you mean 'approvers'?")
    assert lines[-1] == "1 error(s), 0 warning(s)"
    assert "Traceback" not in result.stderr


def test_json_output_lists_problems_with_line_and_column(tmp_path: Path) -> None:
    path = misspelled_file(tmp_path)
    result = duly("check", "--json", path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert (problem["file"], problem["line"], problem["column"]) == (str(path), 9, 5)
    assert problem["message"] == "steps[0]: unknown key 'aprovers'"
    assert problem["hint"].startswith("did you mean 'approvers'?")


def test_json_output_for_good_policies_names_each_with_its_hash() -> None:
    result = duly("check", "--json", "policies/library/hospital")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    ids = sorted(p["id"] for p in report["policies"])
    assert ids == ["it-hardware-purchase", "municipal-monthly-reports"]
    assert all(len(p["hash"]) == 64 for p in report["policies"])


def test_missing_path_reports_no_such_file_or_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = duly("check", missing)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{missing}:1:1: no such file or folder"
