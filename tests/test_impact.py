"""`duly impact`: which running requests and open obligations a policy change would affect."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pendulum

from duly.impact import describe, impact_of
from policies.loader import load_policy
from store.approvals import file_request

LIBRARY = Path(__file__).resolve().parents[1] / "policies" / "library" / "hospital"
DULY = Path(sys.executable).parent / "duly"


def duly_impact(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DULY_")}
    return subprocess.run([str(DULY), "impact", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


async def test_changed_approval_policy_lists_the_requests_that_stay_on_the_old_version(runtime, tmp_path):
    async with runtime.sessions() as session, session.begin():
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "服务器", "amount": "9000"}, requester_id="huang.lei",
                                     now=pendulum.datetime(2026, 11, 2, 10, tz="Asia/Shanghai"))
    changed = tmp_path / "it-hardware-purchase.yaml"
    changed.write_text((LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8")
                       .replace("amount <= 50000", "amount <= 30000").replace("amount > 50000", "amount > 30000"),
                       encoding="utf-8")
    unchanged = load_policy(LIBRARY / "municipal-monthly-reports.yaml")
    async with runtime.sessions() as session:
        impacts = await impact_of(session, [load_policy(changed), unchanged])
    by_id = {i.policy_id: i for i in impacts}
    assert by_id["it-hardware-purchase"].status == "changed"
    assert by_id["it-hardware-purchase"].open_requests == [request.id]
    assert f"#{request.id}" in describe(by_id["it-hardware-purchase"])
    assert by_id["municipal-monthly-reports"].status == "unchanged"


async def test_a_policy_the_database_has_never_seen_is_new(runtime, tmp_path):
    text = (LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8").replace(
        "id: it-hardware-purchase", "id: it-hardware-purchase-v2")
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    async with runtime.sessions() as session:
        [impact] = await impact_of(session, [load_policy(path)])
    assert impact.status == "new"


async def test_open_obligations_of_a_changed_calendar_are_said_to_follow_the_current_version(runtime, tmp_path):
    from store.obligations import materialise_policy

    (version_id, loaded), = [c for c in runtime.registry.calendars() if c[1].id == "municipal-monthly-reports"]
    async with runtime.sessions() as session, session.begin():
        result = await materialise_policy(session, runtime, version_id=version_id, loaded=loaded,
                                          first=date(2026, 11, 1), last=date(2026, 11, 30),
                                          now=pendulum.datetime(2026, 10, 20, 10, tz="Asia/Shanghai"))
    changed = tmp_path / "municipal-monthly-reports.yaml"
    changed.write_text(loaded.text.replace("remind: [3 working days]", "remind: [5 working days]"), encoding="utf-8")
    async with runtime.sessions() as session:
        [impact] = await impact_of(session, [load_policy(changed)])
    assert impact.open_obligations == result.created > 0
    assert describe(impact).splitlines()[1] == (
        f"  {result.created} open obligation(s) were computed from the current version")


def test_impact_where_no_database_exists_refuses_and_creates_nothing(tmp_path):
    answer = duly_impact(LIBRARY, cwd=tmp_path)  # the default database: .data/duly.db under the working folder
    assert answer.returncode == 1
    assert answer.stderr.startswith("error: no database at sqlite:///.data/duly.db (missing or not migrated); "
                                    "run `duly db upgrade`")
    assert "Traceback" not in answer.stderr + answer.stdout
    assert list(tmp_path.iterdir()) == []


def test_impact_on_a_database_that_was_never_migrated_refuses(empty_database_url, tmp_path):
    if empty_database_url.startswith("sqlite"):
        Path(empty_database_url.removeprefix("sqlite:///")).touch()  # an empty file: a database with no tables
    answer = duly_impact(LIBRARY, "--database", empty_database_url, cwd=tmp_path)
    assert answer.returncode == 1
    assert "is not migrated; run `duly db upgrade`" in answer.stderr
    assert "Traceback" not in answer.stderr + answer.stdout
