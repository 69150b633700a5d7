"""Housekeeping purges exactly what has ended and checks the audit chain, incrementally from its last good
checkpoint; a broken chain is recorded, told to the administrators once, and fails the run."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from sqlalchemy import select, text

from flows.deliver import deliver
from flows.housekeeping import AuditChainBroken, housekeeping
from notifications.catcher import list_caught
from store.accounts import create_token, end_session, record_failure, revoke_token, start_session
from store.audit import append_audit, read_head
from store.db import is_sqlite, sync_engine_for
from store.tables import (
    ApiTokenRow,
    AuditCheckpointRow,
    AuditEventRow,
    AuthSessionRow,
    IdempotencyRow,
    LoginFailureRow,
    OutboxRow,
    PersonRow,
)

SHANGHAI = "Asia/Shanghai"
NOW = pendulum.datetime(2026, 11, 23, 3, 0, tz=SHANGHAI)


async def _session(runtime, *, at, lifetime=timedelta(days=7), revoke=False) -> str:
    async with runtime.write() as session:
        _, row = await start_session(session, person_id="huang.lei", lifetime=lifetime, method="password",
                                     remote="127.0.0.1", now=at)
        if revoke:
            await end_session(session, row.id, now=at.add(minutes=5))
        return row.id


async def _token(runtime, *, at, days, revoked_at=None) -> int:
    async with runtime.write() as session:
        _, row = await create_token(session, person_id="huang.lei", name=f"t{at}", expires_in_days=days, now=at)
        if revoked_at is not None:
            await revoke_token(session, row.id, actor=await session.get(PersonRow, "huang.lei"), now=revoked_at)
        return row.id


async def _ids(runtime, column) -> set:
    async with runtime.sessions() as session:
        return set((await session.execute(select(column))).scalars())


async def test_purges_exactly_the_ended_rows_and_keeps_the_live_ones(runtime, prefect_harness):
    live = await _session(runtime, at=NOW.subtract(hours=1))
    await _session(runtime, at=NOW.subtract(days=8))  # expired (and idle)
    await _session(runtime, at=NOW.subtract(hours=10))  # idle longer than 8 hours
    await _session(runtime, at=NOW.subtract(hours=2), revoke=True)
    kept_tokens = {await _token(runtime, at=NOW.subtract(days=1), days=30),
                   await _token(runtime, at=NOW.subtract(days=40), days=30),  # expired 10 days ago: still listed
                   await _token(runtime, at=NOW.subtract(days=10), days=365, revoked_at=NOW.subtract(days=5))}
    await _token(runtime, at=NOW.subtract(days=200), days=30)  # expired 170 days ago
    await _token(runtime, at=NOW.subtract(days=100), days=365, revoked_at=NOW.subtract(days=95))
    async with runtime.write() as session:
        for days in (31, 29, 0):
            await record_failure(session, username="huang.lei", remote="10.0.0.9", now=NOW.subtract(days=days, hours=1))
        for days in (8, 6):
            session.add(IdempotencyRow(person_id="huang.lei", key=f"k{days}", method="POST", path="/api/requests",
                                       body_hash="0" * 64, status_code=201, response={},
                                       created_at=NOW.subtract(days=days)))

    totals = await housekeeping(now=NOW)
    assert {k: totals[k] for k in ("sessions", "api_tokens", "login_failures", "idempotency_keys")} == {
        "sessions": 3, "api_tokens": 2, "login_failures": 1, "idempotency_keys": 1}
    assert await _ids(runtime, AuthSessionRow.id) == {live}
    assert await _ids(runtime, ApiTokenRow.id) == kept_tokens
    assert len(await _ids(runtime, LoginFailureRow.id)) == 2
    assert await _ids(runtime, IdempotencyRow.key) == {"k6"}
    again = await housekeeping(now=NOW)
    assert (again["sessions"], again["api_tokens"], again["login_failures"], again["idempotency_keys"]) == (0, 0, 0, 0)


async def _append(runtime, count: int, at=NOW) -> None:
    async with runtime.write() as session:
        for n in range(count):
            await append_audit(session, at=at, actor_id="huang.lei", action="thing.done", subject_type="thing",
                               subject_id=n, data={"n": n})


async def _checkpoints(runtime) -> list[AuditCheckpointRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditCheckpointRow).order_by(AuditCheckpointRow.id))).scalars())


async def _head(runtime):
    async with runtime.sessions() as session:
        head = await read_head(session)
        return head.seq, head.hash


async def test_an_intact_chain_is_checkpointed_at_its_head_then_verified_from_there(runtime, prefect_harness):
    await _append(runtime, 5)
    seq, digest = await _head(runtime)
    first = await housekeeping(now=NOW)
    assert (first["audit_full"], first["audit_events_checked"], first["audit_head_seq"]) == (1, seq, seq)
    [checkpoint] = await _checkpoints(runtime)
    assert (checkpoint.seq, checkpoint.hash, checkpoint.events, checkpoint.ok, checkpoint.problem) == (
        seq, digest, seq, True, None)

    await _append(runtime, 3)
    second = await housekeeping(now=NOW.add(days=1))
    assert (second["audit_full"], second["audit_events_checked"], second["audit_head_seq"]) == (0, 3, seq + 3)
    third = await housekeeping(now=NOW.add(days=2))
    assert (third["audit_full"], third["audit_events_checked"]) == (0, 0)
    on_demand = await housekeeping(now=NOW.add(days=2, hours=1), full=True)
    assert (on_demand["audit_full"], on_demand["audit_events_checked"]) == (1, seq + 3)
    weekly = await housekeeping(now=NOW.add(days=10))  # the last full check is more than 7 days old
    assert weekly["audit_full"] == 1
    assert [c.events for c in await _checkpoints(runtime)] == [seq, 3, 0, seq + 3, seq + 3]


def _tamper(runtime, settings, statement: str) -> None:
    """Change the audit table outside duly, as a DBA would: drop the append-only triggers first (as
    tests/store/test_audit.py does), then run `statement`."""
    url = settings.resolved_database_url
    drops = (["DROP TRIGGER IF EXISTS audit_event_no_update", "DROP TRIGGER IF EXISTS audit_event_no_delete"]
             if is_sqlite(url) else ["DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event"])
    engine = sync_engine_for(url)
    try:
        with engine.begin() as connection:
            for sql in [*drops, statement]:
                connection.execute(text(sql))
    finally:
        engine.dispose()


async def _admin_mails(runtime) -> list[OutboxRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(OutboxRow).where(OutboxRow.event == "audit_broken"))).scalars())


async def test_a_tampered_chain_is_recorded_told_to_admins_once_and_fails_the_run(
        runtime, settings, prefect_harness, mail):
    await _append(runtime, 4)
    await housekeeping(now=NOW)
    await _append(runtime, 4)
    edited = (await _head(runtime))[0] - 1  # after the checkpoint: the daily check sees it
    _tamper(runtime, settings, f"UPDATE audit_event SET data = '{{\"n\": 99}}' WHERE seq = {edited}")

    with pytest.raises(AuditChainBroken, match=f"edited at event {edited}"):
        await housekeeping(now=NOW.add(days=1))
    state = await housekeeping(now=NOW.add(days=2), return_state=True)
    assert state.is_failed()

    broken = [c for c in await _checkpoints(runtime) if not c.ok]
    assert len(broken) == 2 and all(f"edited at event {edited}" in (c.problem or "") for c in broken)
    [told] = await _admin_mails(runtime)
    assert (told.recipient_id, told.event_key) == ("admin", f"audit_broken:{edited}:edited:admin")
    async with runtime.sessions() as session:
        actions = list((await session.execute(select(AuditEventRow.action).where(
            AuditEventRow.action == "audit.chain_broken"))).scalars())
    assert actions == ["audit.chain_broken"]
    await deliver(now=NOW.add(days=2))
    [message] = list_caught(mail.maildir, recipient="admin@hospital.example")
    assert message.subject == f"审计链校验失败：第 {edited} 条事件被修改，请立即核查"
    assert "duly audit verify" in message.text and f"{runtime.public_url}/api/audit/head" in message.text


async def test_the_checkpoint_event_itself_is_checked_and_older_edits_need_the_full_check(
        runtime, settings, prefect_harness):
    await _append(runtime, 6)
    await housekeeping(now=NOW)
    checkpoint_seq = (await _head(runtime))[0]
    _tamper(runtime, settings, "UPDATE audit_event SET actor_id = 'someone.else' WHERE seq = 2")
    quiet = await housekeeping(now=NOW.add(days=1))  # before the checkpoint: the daily check cannot see it
    assert (quiet["audit_full"], quiet["audit_events_checked"]) == (0, 0)
    with pytest.raises(AuditChainBroken, match="edited at event 2"):
        await housekeeping(now=NOW.add(days=1, hours=1), full=True)

    _tamper(runtime, settings, f"UPDATE audit_event SET action = 'thing.undone' WHERE seq = {checkpoint_seq}")
    with pytest.raises(AuditChainBroken, match=f"edited at event {checkpoint_seq}"):
        await housekeeping(now=NOW.add(days=2))
    assert {m.event_key for m in await _admin_mails(runtime)} == {
        "audit_broken:2:edited:admin", f"audit_broken:{checkpoint_seq}:edited:admin"}


async def test_deleted_events_after_the_checkpoint_are_found(runtime, settings, prefect_harness):
    await _append(runtime, 3)
    await housekeeping(now=NOW)
    await _append(runtime, 3)
    seq, _ = await _head(runtime)
    _tamper(runtime, settings, f"DELETE FROM audit_event WHERE seq = {seq - 1}")
    with pytest.raises(AuditChainBroken, match=f"deleted at event {seq}"):
        await housekeeping(now=NOW.add(days=1))
