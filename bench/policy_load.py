"""Policy load + check time for the shipped library (prints figures; not a pass/fail test)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies.loader import load_policies, policy_files  # noqa: E402

files = policy_files([ROOT / "policies" / "library"])
rounds = 50
started = time.perf_counter()
for _ in range(rounds):
    load_policies([ROOT / "policies" / "library"])
elapsed = (time.perf_counter() - started) / rounds
print(f"policy load+check: {len(files)} files in {elapsed * 1000:.1f} ms ({elapsed / len(files) * 1000:.1f} ms/file)")
