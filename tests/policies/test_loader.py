"""Loading policy files: every problem reported at once as file:line:col, hostile YAML refused quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from policies.errors import PolicyError, Problem
from policies.loader import load_policies, load_policy, load_policy_text
from policies.models import ApprovalPolicy, CalendarPolicy

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library" / "hospital"

# Line numbers matter below: `when:` is on line 9 (value at column 11), `approvers:` on line 10
# (column 5), `sla:` on line 11 (value at column 10).
APPROVAL = """\
kind: approval
id: laptops
title: Laptop purchase
form:
  amount: {type: money, label: Amount}
steps:
  - id: head
    title: Head approves
    when: amount > 100
    approvers: {head_of: general}
    sla: 24 hours on working days
"""

# `due:` is on line 5, its value at column 8.
CALENDAR = """\
kind: calendar
id: monthly
title: Monthly reports
defaults:
  due: day 15 of next month
  owner: {department: performance}
obligations:
  - {id: D-001, title: Outpatient report}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as excinfo:
        load_policy_text(text, file="p.yaml")
    return excinfo.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


class TestShippedPolicies:
    def test_it_hardware_purchase_loads_as_an_approval_policy(self) -> None:
        loaded = load_policy(LIBRARY / "it-hardware-purchase.yaml")
        assert isinstance(loaded.policy, ApprovalPolicy)
        assert loaded.id == "it-hardware-purchase"
        assert [s.id for s in loaded.policy.steps] == ["general-management", "cfo"]

    def test_municipal_monthly_reports_loads_as_a_calendar_with_thirteen_obligations(self) -> None:
        loaded = load_policy(LIBRARY / "municipal-monthly-reports.yaml")
        assert isinstance(loaded.policy, CalendarPolicy)
        assert len(loaded.policy.obligations) == 13

    def test_the_library_folder_loads_both_policies(self) -> None:
        ids = sorted(p.id for p in load_policies([LIBRARY]))
        assert ids == ["it-hardware-purchase", "municipal-monthly-reports"]


class TestProblemsPointAtTheirPlace:
    def test_the_templates_used_here_are_valid(self) -> None:
        assert load_policy_text(APPROVAL).id == "laptops"
        assert load_policy_text(CALENDAR).id == "monthly"

    def test_misspelled_key_points_at_the_key_with_a_suggestion(self) -> None:
        problem = only_problem(APPROVAL.replace("approvers:", "aprovers:"))
        assert (problem.file, problem.line, problem.column) == ("p.yaml", 10, 5)
        assert problem.message == "steps[0]: unknown key 'aprovers'"
        assert problem.hint is not None
        assert problem.hint.startswith("did you mean 'approvers'?")

    def test_misspelled_key_is_not_echoed_as_a_missing_key(self) -> None:
        messages = [p.message for p in problems_of(APPROVAL.replace("approvers:", "aprovers:"))]
        assert not any("missing key" in m for m in messages)

    def test_unknown_key_without_a_close_match_lists_the_allowed_keys(self) -> None:
        problem = only_problem(APPROVAL.replace("    sla:", "    colour: red\n    sla:"))
        assert problem.message == "steps[0]: unknown key 'colour'"
        assert problem.hint == ("(allowed: add_approver, allow, approvers, escalate, id, mode, quorum, remind, "
                                "send_back, sla, title, when)")

    def test_bad_sla_text_points_at_its_value(self) -> None:
        problem = only_problem(APPROVAL.replace("24 hours on working days", "24 hourz"))
        assert (problem.line, problem.column) == (11, 10)
        assert problem.message.startswith("steps[0].sla: expected a duration like")
        assert "got '24 hourz'" in problem.message

    def test_bad_due_rule_points_at_its_value(self) -> None:
        problem = only_problem(CALENDAR.replace("day 15 of next month", "15th"))
        assert (problem.line, problem.column) == (5, 8)
        assert problem.message.startswith('defaults.due: expected a rule like "day 15 of next month", got "15th"')

    def test_condition_on_unknown_field_points_at_the_when_value(self) -> None:
        problem = only_problem(APPROVAL.replace("amount > 100", "amout > 100"))
        assert (problem.line, problem.column) == (9, 11)
        assert "unknown field 'amout'" in problem.message
        assert "did you mean 'amount'?" in problem.message

    def test_every_problem_of_a_file_is_reported_sorted_by_line(self) -> None:
        text = (APPROVAL.replace("amount > 100", "amout > 100")
                .replace("approvers:", "aprovers:")
                .replace("24 hours on working days", "soon"))
        problems = problems_of(text)
        assert [(p.line, p.column) for p in problems] == [(9, 11), (10, 5), (11, 10)]
        assert [p.message.split(":")[0] for p in problems] == ["steps[0].when", "steps[0]", "steps[0].sla"]

    def test_problem_prints_as_file_line_column_with_its_hint_below(self) -> None:
        problem = only_problem(APPROVAL.replace("approvers:", "aprovers:"))
        first, second = str(problem).splitlines()
        assert first == "p.yaml:10:5: steps[0]: unknown key 'aprovers'"
        assert second.startswith("  hint: did you mean 'approvers'?")


class TestHostileYaml:
    def test_billion_laughs_is_refused_in_well_under_a_second(self) -> None:
        levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
            levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        text = "kind: approval\n" + "\n".join(levels) + "\n"
        started = time.perf_counter()
        problems = problems_of(text)
        assert time.perf_counter() - started < 0.5
        assert problems
        assert {p.message for p in problems} == {"anchors and aliases (&, *) are not allowed in policies"}

    def test_python_object_tag_is_refused_without_running_anything(self, tmp_path: Path) -> None:
        marker = tmp_path / "ran"
        problem = only_problem(f"kind: approval\nid: !!python/object/apply:os.system ['touch {marker}']\n")
        assert (problem.line, problem.column) == (2, 5)
        assert problem.message == "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
        assert not marker.exists()

    def test_file_over_the_size_limit_is_refused_before_parsing(self) -> None:
        text = "kind: approval\ndescription: " + "x" * 2_000_000 + "\n"
        started = time.perf_counter()
        problem = only_problem(text)
        assert time.perf_counter() - started < 0.5
        assert problem.message == "file is larger than 1000 kB"

    def test_hundred_levels_of_nesting_are_refused(self) -> None:
        problem = only_problem("kind: approval\nx: " + "[" * 100 + "]" * 100 + "\n")
        assert problem.message == "nested deeper than 40 levels"

    def test_thousand_levels_of_nesting_are_a_problem_not_a_crash(self) -> None:
        problem = only_problem("kind: approval\nx: " + "[" * 1000 + "]" * 1000 + "\n")
        assert "nested deeper" in problem.message

    def test_duplicate_key_points_at_the_second_one(self) -> None:
        problem = only_problem("kind: approval\nid: a\nid: b\n")
        assert (problem.line, problem.column) == (3, 1)
        assert problem.message == "duplicate key 'id'"

    @pytest.mark.parametrize("line", ["!foo bar: x", "<<: {id: a}", "!!python/name:os.system : x"])
    def test_tagged_key_is_a_problem_not_a_crash(self, line: str) -> None:
        assert problems_of(f"kind: approval\n{line}\n")

    @pytest.mark.parametrize("value", ["!!bool maybe", "!!timestamp abc", "!!float"])
    def test_malformed_standard_tag_is_a_problem_not_a_crash(self, value: str) -> None:
        problem = only_problem(f"kind: approval\nid: {value}\n")
        assert problem.message.startswith("bad value")

    def test_malformed_int_tag_is_a_bad_value(self) -> None:
        problem = only_problem("kind: approval\nid: !!int abc\n")
        assert (problem.line, problem.column) == (2, 5)
        assert problem.message.startswith("bad value")

    def test_invalid_yaml_points_at_the_error(self) -> None:
        problem = only_problem("kind: approval\nid: [unclosed\n")
        assert problem.message.startswith("not valid YAML:")
        assert problem.line == 3


class TestDocumentShape:
    @pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
    def test_empty_file_is_reported_as_empty(self, text: str) -> None:
        assert only_problem(text) == Problem("p.yaml", 1, 1, "the file is empty")

    @pytest.mark.parametrize("text", ["- kind\n- approval\n", "just some text\n", "42\n"])
    def test_document_that_is_not_a_mapping_is_refused(self, text: str) -> None:
        assert only_problem(text).message == "a policy is a mapping of keys (kind, id, title, ...)"

    def test_unknown_kind_points_at_its_value_and_names_the_kinds(self) -> None:
        problem = only_problem("id: x\nkind: workflow\n")
        assert (problem.line, problem.column) == (2, 7)
        assert problem.message == "kind: expected one of approval, calendar, got 'workflow'"
        assert problem.hint is not None and "kind: approval" in problem.hint

    def test_missing_kind_is_reported_as_unknown_kind(self) -> None:
        assert "got None" in only_problem("id: x\n").message


class TestSeveralFiles:
    def test_duplicate_policy_id_across_two_files_names_the_first_file(self, tmp_path: Path) -> None:
        (tmp_path / "a.yaml").write_text(APPROVAL, encoding="utf-8")
        (tmp_path / "b.yaml").write_text(APPROVAL.replace("Laptop purchase", "Other"), encoding="utf-8")
        with pytest.raises(PolicyError) as excinfo:
            load_policies([tmp_path])
        [problem] = excinfo.value.problems
        assert problem.file == str(tmp_path / "b.yaml")
        assert problem.message == f"policy id 'laptops' is also used by {tmp_path / 'a.yaml'}"

    def test_problems_of_all_files_are_reported_together(self, tmp_path: Path) -> None:
        (tmp_path / "a.yaml").write_text(APPROVAL.replace("approvers:", "aprovers:"), encoding="utf-8")
        (tmp_path / "b.yml").write_text(CALENDAR.replace("day 15 of next month", "15th"), encoding="utf-8")
        with pytest.raises(PolicyError) as excinfo:
            load_policies([tmp_path, tmp_path / "missing.yaml"])
        assert [(Path(p.file).name, p.line) for p in excinfo.value.problems] == [
            ("a.yaml", 10), ("b.yml", 5), ("missing.yaml", 1)]
        assert excinfo.value.problems[-1].message == "no such file or folder"

    def test_file_that_is_not_utf8_is_reported(self, tmp_path: Path) -> None:
        path = tmp_path / "gbk.yaml"
        path.write_bytes(APPROVAL.replace("Laptop purchase", "笔记本采购").encode("gbk"))
        with pytest.raises(PolicyError) as excinfo:
            load_policy(path)
        assert excinfo.value.problems == [Problem(str(path), 1, 1, "the file is not UTF-8 text")]


class TestContentHash:
    def test_same_text_gives_the_same_hash(self) -> None:
        assert load_policy_text(APPROVAL).content_hash == load_policy_text(APPROVAL).content_hash

    def test_any_change_to_the_text_changes_the_hash(self) -> None:
        original = load_policy_text(APPROVAL).content_hash
        assert load_policy_text(APPROVAL + "# a comment\n").content_hash != original
        assert load_policy_text(APPROVAL.replace("100", "200")).content_hash != original


class TestTimeZones:
    """A policy's `timezone` is checked at load time: every deadline is computed in it."""

    def test_misspelled_zone_of_an_approval_policy_points_at_its_value_with_a_suggestion(self) -> None:
        problem = only_problem(APPROVAL.replace("title: Laptop purchase\n",
                                                "title: Laptop purchase\ntimezone: Asia/Shangai\n"))
        assert (problem.line, problem.column) == (4, 11)
        assert problem.message == "timezone: unknown time zone 'Asia/Shangai'; use an IANA name such as Asia/Shanghai"
        assert problem.hint == "did you mean 'Asia/Shanghai'?"

    def test_unknown_zone_of_a_calendar_policy_keeps_its_hint_beside_other_problems(self) -> None:
        text = (CALENDAR.replace("title: Monthly reports\n", "title: Monthly reports\ntimezone: Asia/Beijing\n")
                + "  - {id: D-014, title: Quarterly report, due: {with: D-099}}\n")
        zone, coupling = problems_of(text)
        assert (zone.line, zone.column, zone.message.split(":")[0]) == (4, 11, "timezone")
        assert zone.hint is not None and "mainland China is Asia/Shanghai" in zone.hint
        assert "no obligation 'D-099'" in coupling.message

    def test_a_known_zone_loads(self) -> None:
        text = APPROVAL.replace("title: Laptop purchase\n", "title: Laptop purchase\ntimezone: Asia/Urumqi\n")
        assert load_policy_text(text).policy.timezone == "Asia/Urumqi"


class TestIdLength:
    """Ids are stored in 64-character columns; a longer one is a load error, not a database error later."""

    def test_policy_id_of_64_characters_loads(self) -> None:
        assert load_policy_text(APPROVAL.replace("id: laptops", "id: " + "p" * 64)).id == "p" * 64

    @pytest.mark.parametrize(("template", "old", "line", "where"), [
        (APPROVAL, "id: laptops", 2, "id"),
        (CALENDAR, "id: monthly", 2, "id"),
        (APPROVAL, "id: head", 7, "steps[0].id"),
        (CALENDAR, "id: D-001", 8, "obligations[0].id"),
    ])
    def test_id_of_65_characters_is_a_load_error_at_the_id(self, template: str, old: str, line: int,
                                                          where: str) -> None:
        problem = only_problem(template.replace(old, "id: D" + "x" * 64))
        assert problem.line == line
        assert problem.message == f"{where}: an id has at most 64 characters, this one has 65"
        assert problem.hint is not None and "shorten it" in problem.hint


class TestFolders:
    def test_a_folder_named_like_a_policy_file_is_searched_not_read(self, tmp_path: Path) -> None:
        (tmp_path / "old.yaml").mkdir()
        (tmp_path / "old.yaml" / "laptops.yaml").write_text(APPROVAL, encoding="utf-8")
        (tmp_path / "calendar.yaml").write_text(CALENDAR, encoding="utf-8")
        assert sorted(p.id for p in load_policies([tmp_path])) == ["laptops", "monthly"]

    def test_loading_a_folder_as_a_policy_file_is_a_problem_not_a_crash(self, tmp_path: Path) -> None:
        folder = tmp_path / "policy.yaml"
        folder.mkdir()
        with pytest.raises(PolicyError) as excinfo:
            load_policy(folder)
        assert excinfo.value.problems == [Problem(str(folder), 1, 1, "this is a folder, not a policy file")]
