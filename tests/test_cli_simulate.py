"""`duly simulate`: a year of deadlines as a table, CSV and RFC 5545 ICS; the real console script and the
functions behind it."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pendulum
import pytest

from duly.simulate import CSV_HEADER, fold, render_ics, run_simulate, simulate
from policies.calendar import WorkCalendar
from policies.loader import load_policies

ROOT = Path(__file__).resolve().parents[1]
DULY = Path(sys.executable).parent / "duly"
LIBRARY = ROOT / "policies" / "library"
DEMO = LIBRARY / "hospital"  # the demo profile; the other profiles are pinned in tests/library/
FIXTURES = ROOT / "tests" / "fixtures" / "calendars"
MUNICIPAL = LIBRARY / "municipal-stats"  # seed P2's calendar, a shipped profile (once a fixture)
YEAR = ("--from", "2026-01-01", "--to", "2026-12-31")


def duly(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the console script; stdout is decoded without newline translation (ICS lines end in CRLF)."""
    done = subprocess.run([str(DULY), *map(str, args)], cwd=ROOT, capture_output=True, timeout=60)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8"),
                                       done.stderr.decode("utf-8"))


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def content_lines(ics: str) -> list[str]:
    """Unfold (RFC 5545 §3.1): a CRLF followed by one space continues the previous line."""
    return ics.replace("\r\n ", "").split("\r\n")[:-1]


class TestTheCommand:
    def test_a_year_of_the_shipped_library_as_csv(self) -> None:
        result = duly("simulate", DEMO, *YEAR, "--format", "csv")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0].startswith(
            "organisation,policy,obligation,owner,period,due_at,shift,provisional")
        rows = rows_of(result.stdout)
        assert len(rows) == 13 * 12
        october = [r for r in rows if r["period"] == "2026-10"]
        assert {(r["organisation"], r["owner"], r["due_at"], r["shift"], r["provisional"]) for r in october} == {
            ("hospital", "performance", "2026-11-15T23:59:59+08:00", "none", "false")}
        assert october[0]["reminders"] == "2026-11-11T09:00:00+08:00"
        assert october[0]["escalations"] == "2026-11-15T23:59:59+08:00"
        assert "156 deadline(s) from 1 calendar policy, 2026-01-01 … 2026-12-31" in result.stderr
        assert re.search(r"^elapsed \d+\.\d\d s$", result.stderr, re.M)

    def test_an_ics_feed_of_the_shipped_library(self) -> None:
        result = duly("simulate", DEMO, *YEAR, "--format", "ics")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("BEGIN:VCALENDAR\r\n")
        assert content_lines(result.stdout).count("BEGIN:VEVENT") == 156

    def test_bad_arguments_exit_2(self) -> None:
        result = duly("simulate", LIBRARY, "--from", "2026-12-31", "--to", "2026-01-01")
        assert result.returncode == 2 and "error: --to 2026-01-01 is before --from 2026-12-31" in result.stderr

    def test_a_bad_policy_is_reported_at_its_place(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        last = "  - {id: Q, title: 季报, due: {with: Q}}"
        bad.write_text("kind: calendar\nid: x\ntitle: X\ndefaults:\n  due: day 15 of next month\n"
                       f"  owner: {{department: office}}\nobligations:\n{last}\n", encoding="utf-8")
        column = last.index("Q}") + 1
        for command in ("simulate", "check"):
            result = duly(command, bad)
            assert result.returncode == 1
            assert f"{bad}:8:{column}: obligations[0].due.with: with: Q → Q goes round in a circle" in result.stderr


class TestRun:
    def run(self, *paths: Path, fmt: str = "table", organisation: Path | None = None,
            first: date = date(2026, 1, 1), last: date = date(2026, 12, 31)) -> tuple[str, list[str], int]:
        return run_simulate(list(paths), first=first, last=last, fmt=fmt, organisation_file=organisation)

    def test_the_table_shows_local_time_weekday_and_the_profile_s_department_names(self) -> None:
        output, messages, code = self.run(MUNICIPAL)
        assert code == 0, messages
        line = next(x for x in output.splitlines()
                    if "D-001" in x and x.rstrip().endswith("2026-10") and "示例区卫生局" in x)
        assert line.startswith("2026-11-15 23:59 周日")

    def test_provisional_and_shifted_deadlines_are_marked(self) -> None:
        output, _, _ = self.run(FIXTURES / "health-bureau", first=date(2026, 9, 28), last=date(2026, 10, 11))
        line = next(x for x in output.splitlines() if "信息简报" in x and "2026-W41" in x)
        assert line.startswith("2026-10-08 12:00 周四") and "顺延至收假次日（原 2026-10-05）" in line
        output, _, _ = self.run(MUNICIPAL, fmt="csv", first=date(2027, 1, 20),
                                last=date(2027, 1, 20))
        assert {r["provisional"] for r in rows_of(output)} == {"true"}

    def test_an_owner_the_organisation_does_not_have_is_reported(self) -> None:
        _, messages, code = self.run(MUNICIPAL, organisation=ROOT / "config/demo-organisation.yaml")
        assert code == 1
        assert any("D-001: owner department 'hospital_h' is not in the organisation" in m for m in messages)

    def test_lead_time_review_and_attachments_reach_the_csv(self, tmp_path: Path) -> None:
        (tmp_path / "p.yaml").write_text(
            "kind: calendar\nid: ext\ntitle: 对外报送\ndefaults:\n  owner: {department: pharmacy}\nobligations:\n"
            "  - {id: D-050, title: 药品统计, due: day 15 of next month, review: external-report-signoff,\n"
            "     lead_time: 3 working days, attachments: [paper_copy_sealed]}\n", encoding="utf-8")
        output, _, code = self.run(tmp_path, fmt="csv", first=date(2026, 11, 1), last=date(2026, 11, 30))
        (row,) = rows_of(output)
        assert code == 0 and tuple(row) == CSV_HEADER
        assert (row["due_at"], row["internal_due_at"], row["review"], row["attachments"]) == (
            "2026-11-15T23:59:59+08:00", "2026-11-11T23:59:59+08:00", "external-report-signoff", "paper_copy_sealed")

    @pytest.mark.parametrize("fmt", ["xml", "json"])
    def test_an_unknown_format_is_refused(self, fmt: str) -> None:
        assert self.run(LIBRARY, fmt=fmt)[2] == 2


class TestIcs:
    NOW = pendulum.datetime(2026, 11, 22, 2, 17, 55, tz="UTC")

    def feed(self) -> str:
        loaded = load_policies([FIXTURES, MUNICIPAL, LIBRARY / "hospital-stats"])
        names = {"hospital_h": "市第一人民医院", "district_bureau": "示例区卫生局"}
        result = simulate(loaded, WorkCalendar.default(), date(2026, 1, 1), date(2027, 3, 31),
                          departments_for=lambda _: names)
        return render_ics(result.rows, now=self.NOW, first=date(2026, 1, 1), last=date(2027, 3, 31))

    def test_every_line_ends_in_crlf_and_is_at_most_75_octets(self) -> None:
        ics = self.feed()
        assert ics.endswith("\r\n") and "\n" not in ics.replace("\r\n", "")
        assert max(len(line.encode("utf-8")) for line in ics.split("\r\n")) <= 75

    def test_components_nest_and_events_have_the_required_properties(self) -> None:
        lines = content_lines(self.feed())
        stack: list[str] = []
        events: list[dict[str, str]] = []
        for line in lines:
            name, _, value = line.partition(":")
            assert re.fullmatch(r"[A-Z-]+(;[A-Z-]+=[^;:]+)*", name), line
            if name == "BEGIN":
                stack.append(value)
                if value == "VEVENT":
                    events.append({})
            elif name == "END":
                assert stack.pop() == value
            elif stack[-1] == "VEVENT":
                events[-1][name] = value
        assert stack == [] and lines[0] == "BEGIN:VCALENDAR" and "VERSION:2.0" in lines and any(
            x.startswith("PRODID:") for x in lines)
        assert all({"UID", "DTSTAMP", "SUMMARY"} <= set(e) and any(k.startswith("DTSTART") for k in e)
                   for e in events)
        uids = [e["UID"] for e in events]
        assert len(uids) == len(set(uids))
        assert "BEGIN:VTIMEZONE" in lines and "TZID:Asia/Shanghai" in lines

    def test_a_deadline_is_an_event_at_its_local_due_time_with_a_chinese_summary(self) -> None:
        ics = content_lines(self.feed())
        at = ics.index("UID:municipal-stats.municipal-stats.D-017.hospital_h.2026@duly")
        event = ics[at:ics.index("END:VEVENT", at)]
        assert "DTSTART;TZID=Asia/Shanghai:20270120T235959" in event
        assert "DTSTAMP:20261122T021755Z" in event
        assert "SUMMARY:截止：卫生机构基本情况调查表（卫统1表）（2026）· 市第一人民医院（暂定）" in event
        assert any(line.startswith("DESCRIPTION:") and "须附：paper_copy_sealed" in line for line in event)

    def test_reminders_become_alarms_at_their_instant(self) -> None:
        ics = content_lines(self.feed())
        at = ics.index("UID:municipal-stats.municipal-stats.D-001.hospital_h.2026-10@duly")
        event = ics[at:ics.index("END:VEVENT", at)]
        assert "TRIGGER;VALUE=DATE-TIME:20261111T010000Z" in event  # 09:00 Shanghai, 3 working days before

    def test_uids_are_stable_from_one_run_to_the_next(self) -> None:
        assert self.feed() == self.feed()

    def test_folding_never_splits_a_chinese_character(self) -> None:
        parts = fold("SUMMARY:" + "卫生统计" * 30)
        assert all(len(p.encode("utf-8")) <= 75 for p in parts)
        assert parts[0] + "".join(p[1:] for p in parts[1:]) == "SUMMARY:" + "卫生统计" * 30
        assert all(p.startswith(" ") for p in parts[1:])

    def test_a_zone_with_daylight_saving_is_written_in_utc(self, tmp_path: Path) -> None:
        (tmp_path / "p.yaml").write_text(
            "kind: calendar\nid: berlin\ntitle: Berlin\ntimezone: Europe/Berlin\ndefaults:\n"
            "  owner: {department: office}\nobligations:\n  - {id: M, title: 月报, due: day 15 of next month}\n",
            encoding="utf-8")
        result = simulate(load_policies([tmp_path]), WorkCalendar.default(), date(2026, 7, 1), date(2026, 7, 31))
        ics = content_lines(render_ics(result.rows, now=self.NOW, first=date(2026, 7, 1), last=date(2026, 7, 31)))
        assert "DTSTART:20260715T215959Z" in ics and "BEGIN:VTIMEZONE" not in ics
