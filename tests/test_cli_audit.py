"""`duly audit verify` and `duly audit head`: the real console script against real databases, and the
administrators' GET /api/audit/head."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from store.audit import GENESIS, append_audit
from store.db import create_engine_for, is_sqlite, session_factory, sync_engine_for

ROOT = Path(__file__).resolve().parents[1]
DULY = Path(sys.executable).parent / "duly"
T0 = datetime(2026, 10, 8, 8, 0, tzinfo=UTC)


def duly(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DULY), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


async def append(url: str, count: int, *, action: str = "thing.done", first: int = 1) -> None:
    engine = create_engine_for(url)
    try:
        for n in range(first, first + count):
            async with session_factory(engine)() as session, session.begin():
                await append_audit(session, at=T0 + timedelta(hours=n), actor_id="he.jing", action=action,
                                   subject_type="thing", subject_id=n, data={"n": n})
    finally:
        await engine.dispose()


def tamper(url: str, *statements: str) -> None:
    """As a DBA would: drop the append-only triggers, then change rows."""
    drop = (["DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete"] if is_sqlite(url) else
            ["DROP TRIGGER audit_event_append_only ON audit_event"])
    engine = sync_engine_for(url)
    try:
        with engine.begin() as connection:
            for statement in [*drop, *statements]:
                connection.execute(text(statement))
    finally:
        engine.dispose()


async def test_an_intact_chain_exits_0_with_its_size_and_head(database_url: str):
    await append(database_url, 3)
    head = json.loads(duly("audit", "head", "--database-url", database_url).stdout)
    result = duly("audit", "verify", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"audit chain intact: 3 events, head {head['hash']}"
    assert head["seq"] == 3 and head["at"] == (T0 + timedelta(hours=3)).isoformat()


async def test_an_edited_event_exits_1_naming_seq_time_action_and_the_problem(database_url: str):
    await append(database_url, 4, action="request.filed")
    tamper(database_url, "UPDATE audit_event SET actor_id = 'zhang.jianguo' WHERE seq = 2")
    result = duly("audit", "verify", "--database-url", database_url)
    assert result.returncode == 1
    assert "audit chain BROKEN at event 2 (2026-10-08T10:00:00+00:00, request.filed)" in result.stderr
    assert "edited" in result.stderr


async def test_a_deleted_event_exits_1(database_url: str):
    await append(database_url, 4)
    tamper(database_url, "DELETE FROM audit_event WHERE seq = 2")
    result = duly("audit", "verify", "--database-url", database_url)
    assert result.returncode == 1
    assert "at event 3" in result.stderr and "event(s) 2 before it are missing" in result.stderr


async def test_expect_head_passes_while_the_exported_head_is_in_the_chain(database_url: str):
    await append(database_url, 2)
    exported = duly("audit", "head", "--database-url", database_url).stdout.strip()
    await append(database_url, 2, first=3)
    for form in (exported, json.loads(exported)["hash"], f"2:{json.loads(exported)['hash']}"):
        result = duly("audit", "verify", "--database-url", database_url, "--expect-head", form)
        assert result.returncode == 0, result.stderr
        assert "audit chain intact: 4 events" in result.stdout
        assert "is still event 2 of the chain" in result.stdout


async def test_expect_head_catches_a_chain_rewritten_with_its_head(database_url: str):
    """A DBA who rewrites every event and the head leaves a chain that checks out on its own; only the
    head exported before the rewrite shows it."""
    await append(database_url, 3)
    exported = duly("audit", "head", "--database-url", database_url).stdout.strip()
    tamper(database_url, "DELETE FROM audit_event", f"UPDATE audit_head SET seq = 0, hash = '{GENESIS}'")
    await append(database_url, 3, action="thing.rewritten")
    assert duly("audit", "verify", "--database-url", database_url).returncode == 0
    result = duly("audit", "verify", "--database-url", database_url, "--expect-head", exported)
    assert result.returncode == 1
    assert "is NOT in the chain" in result.stderr
    wrong_seq = duly("audit", "verify", "--database-url", database_url, "--expect-head",
                     f"1:{json.loads(duly('audit', 'head', '--database-url', database_url).stdout)['hash']}")
    assert wrong_seq.returncode == 1


def test_a_malformed_expected_head_or_a_missing_database_exits_2(tmp_path: Path):
    missing = duly("audit", "verify", "--database-url", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    bad = duly("audit", "verify", "--database-url", f"sqlite:///{tmp_path / 'nothing.db'}", "--expect-head", "abc")
    assert bad.returncode == 2 and "64 hexadecimal" in bad.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_the_api_head_is_for_administrators_and_matches_the_cli(live_server):
    with live_server.client("huang.lei") as client:
        filed = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                   "form": {"items": "鼠标", "amount": "100"}})
        assert filed.status_code == 201
        assert client.get("/api/audit/head").status_code == 403
    with live_server.client("admin") as client:
        answer = client.get("/api/audit/head")
    assert answer.status_code == 200
    cli = duly("audit", "head", "--database-url", live_server.settings.resolved_database_url)
    assert answer.json() == json.loads(cli.stdout)
    assert answer.json()["seq"] >= 2
