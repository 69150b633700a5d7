"""The shipped library as a whole: `duly check policies/library` passes, and every organisation profile is
complete (its sample organisation and a README naming its seed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "policies" / "library"
DULY = Path(sys.executable).parent / "duly"


def profiles() -> list[str]:
    return sorted(p.name for p in LIBRARY.iterdir() if p.is_dir())


def test_duly_check_of_the_whole_library_exits_0() -> None:
    result = subprocess.run([str(DULY), "check", "policies/library"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert not result.stderr or result.stderr.splitlines()[-1].startswith("0 error(s), ")  # warnings only
    checked = {line.split()[1].split("/")[2] for line in result.stdout.splitlines() if line.startswith("ok  ")}
    assert checked == set(profiles())  # every profile has policies, and all of them loaded


@pytest.mark.parametrize("name", profiles())
def test_every_profile_has_an_organisation_and_a_readme(name: str) -> None:
    folder = LIBRARY / name
    assert (folder / "organisation.yaml").is_file(), f"{name}: no organisation.yaml"
    assert (folder / "README.md").is_file(), f"{name}: no README.md"
