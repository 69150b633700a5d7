"""`duly check`: policies, organisation profiles and holiday-year files, every problem at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import CONFIG_DIR
from policies.calendar import CalendarDataError, load_holiday_year
from policies.errors import PolicyError, Problem
from policies.lint import lint
from policies.loader import ORGANISATION_FILE, LoadedPolicy, load_policies, policy_files
from policies.org import Organisation
from store.errors import InvalidInputError
from store.organisation import read_organisation_file

DEFAULT_ORGANISATION = CONFIG_DIR / "demo-organisation.yaml"

HOLIDAY_FILE = re.compile(r"^\d{4}\.ya?ml$")
_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)


@dataclass
class CheckReport:
    policies: list[LoadedPolicy] = field(default_factory=list)
    holiday_years: list[tuple[Path, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Warnings are shown but do not fail the check."""
        return not any(p.severity == "error" for p in self.problems)


def is_holiday_file(path: Path) -> bool:
    """A holiday-year file is named after its year (config/holidays/2027.yaml)."""
    return bool(HOLIDAY_FILE.match(path.name))


def organisation_for(policy: LoadedPolicy, default: Path | None, cache: dict[Path, Organisation | None],
                     problems: list[Problem]) -> Organisation | None:
    """The profile's own organisation.yaml, else `default` (the demo organisation unless told otherwise)."""
    path = policy.profile_dir / ORGANISATION_FILE
    if not path.exists():
        path = default or DEFAULT_ORGANISATION
    if path not in cache:
        try:
            seed = read_organisation_file(path)
            cache[path] = Organisation.of(seed.organisation, seed.departments, seed.people)
        except InvalidInputError as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot use this organisation for checks: {exc}"))
            cache[path] = None
    return cache[path]


def check_paths(paths: list[Path], *, organisation: Path | None = None) -> CheckReport:
    """Load everything, then lint each policy against its profile's organisation."""
    report = CheckReport()
    files = policy_files(paths)
    holiday_files = [p for p in files if is_holiday_file(p)]
    policy_paths = [p for p in files if not is_holiday_file(p)]
    for path in holiday_files:
        try:
            report.holiday_years.append((path, load_holiday_year(path).year))
        except CalendarDataError as exc:
            report.problems.extend(_as_problem(text, path) for text in exc.problems)
    if policy_paths or not holiday_files:
        try:
            report.policies = load_policies(policy_paths if holiday_files else paths)
        except PolicyError as exc:
            report.problems.extend(exc.problems)
    cache: dict[Path, Organisation | None] = {}
    for item in report.policies:
        report.problems.extend(lint(item, organisation_for(item, organisation, cache, report.problems)))
    report.problems.sort(key=lambda p: (p.file, p.line, p.column))
    return report


def _as_problem(text: str, path: Path) -> Problem:
    match = _LOCATED.match(text)
    if not match:
        return Problem(str(path), 1, 1, text)
    return Problem(match["file"], int(match["line"]), int(match["col"]), match["message"])
