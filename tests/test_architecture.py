"""House rules that a machine can check: imports point one way, and the core never reads the clock."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"policies", "store", "notifications", "flows", "api", "config", "duly"}
ALLOWED = {  # DESIGN.md §2: who may import whom. The pure core (policies) and config import nothing of ours;
    # config is read only by the shell layers (store, notifications, flows, api, duly).
    "config": set(),
    "policies": set(),
    "store": {"policies", "config"},
    "notifications": {"policies", "store", "config"},
    "flows": {"policies", "store", "notifications", "config"},
    "api": {"policies", "store", "notifications", "flows", "config"},
    "duly": OURS - {"duly"},
}
CLOCK_READS = re.compile(r"(datetime|pendulum)\.(now|today|utcnow)\(|date\.today\(|time\.time\(")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in (ROOT / package).rglob("*.py")
             for name in _imports(path) - ALLOWED[package] - {package}}
    assert not wrong, sorted(wrong)


def test_only_config_clock_reads_the_clock() -> None:
    readers = [f"{path.relative_to(ROOT)}:{n}"
               for package in OURS for path in (ROOT / package).rglob("*.py")
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
               if CLOCK_READS.search(line) and path != ROOT / "config" / "clock.py"]
    assert readers == []


def test_the_core_finds_the_shipped_holidays_where_the_settings_point() -> None:
    from config.settings import Settings
    from policies.calendar import SHIPPED_HOLIDAYS

    assert SHIPPED_HOLIDAYS == Settings.model_fields["holidays_dir"].default
    assert sorted(p.name for p in SHIPPED_HOLIDAYS.glob("*.yaml"))  # the files are there, not only the folder
