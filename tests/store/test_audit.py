"""The audit trail is append-only and hash-chained (DESIGN invariant 6): the database refuses UPDATE and
DELETE (and TRUNCATE on PostgreSQL); when a DBA drops those triggers, verify_chain still names the first
edited, deleted, reordered or inserted event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from store.audit import GENESIS, append_audit, verify_chain
from store.db import create_engine_for, is_sqlite, session_factory, sync_engine_for

T0 = datetime(2026, 10, 8, 8, 0, tzinfo=UTC)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = create_engine_for(url)
        self.sessions = session_factory(self.engine)

    async def append(self, count: int, *, first: int = 1, per_transaction: int = 1) -> None:
        """Events 'thing.done' numbered from `first`, an hour apart, committed `per_transaction` at a time."""
        for start in range(first, first + count, per_transaction):
            async with self.sessions() as session, session.begin():
                for n in range(start, min(start + per_transaction, first + count)):
                    await append_audit(session, at=T0 + timedelta(hours=n), actor_id="huang.lei", action="thing.done",
                                       subject_type="thing", subject_id=n, data={"n": n, "名": "值"})

    async def verify(self, **options):
        async with self.sessions() as session:
            return await verify_chain(session, **options)

    def sql(self, *statements: str) -> None:
        """Run statements outside duly, as a DBA would (autocommitted together)."""
        engine = sync_engine_for(self.url)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    def drop_triggers(self) -> None:
        if is_sqlite(self.url):
            self.sql("DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete")
        else:
            self.sql("DROP TRIGGER audit_event_append_only ON audit_event",
                     "DROP TRIGGER audit_event_no_truncate ON audit_event")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.engine.dispose()


class TestTheDatabaseRefusesChanges:
    @pytest.mark.parametrize("statement", [
        "UPDATE audit_event SET action = 'thing.undone' WHERE seq = 2",
        "UPDATE audit_event SET seq = 99 WHERE seq = 3",
        "DELETE FROM audit_event WHERE seq = 3",
        "DELETE FROM audit_event",
    ])
    async def test_update_and_delete_are_refused(self, db: Database, statement: str):
        await db.append(3)
        with pytest.raises(DBAPIError) as refused:
            db.sql(statement)
        assert "append-only" in str(refused.value)
        report = await db.verify()
        assert report.intact and report.events == 3

    async def test_truncate_is_refused_on_postgresql(self, db: Database):
        if is_sqlite(db.url):
            pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
        await db.append(2)
        with pytest.raises(DBAPIError) as refused:
            db.sql("TRUNCATE audit_event")
        assert "append-only" in str(refused.value)
        assert (await db.verify()).events == 2

    async def test_inserting_still_works(self, db: Database):
        await db.append(4, per_transaction=2)
        report = await db.verify()
        assert report.intact and report.events == 4 and report.head_seq == 4


class TestVerifyChain:
    async def test_an_empty_chain_is_intact(self, db: Database):
        report = await db.verify()
        assert report.intact and report.events == 0 and report.head_hash == GENESIS

    async def test_progress_is_reported_every_n_events_while_streaming(self, db: Database):
        await db.append(25, per_transaction=25)
        seen: list[int] = []
        report = await db.verify(progress=seen.append, every=10, batch=4)
        assert seen == [10, 20]
        assert report.intact and report.events == 25

    async def test_an_edited_event_is_named(self, db: Database):
        await db.append(5)
        db.drop_triggers()
        db.sql("UPDATE audit_event SET data = '{\"n\": 3, \"名\": \"改\"}' WHERE seq = 3")
        broken = (await db.verify()).broken
        assert broken is not None
        assert (broken.seq, broken.kind, broken.action) == (3, "edited", "thing.done")
        assert broken.at == T0 + timedelta(hours=3)
        assert "edited" in broken.detail

    async def test_an_edited_actor_is_named(self, db: Database):
        await db.append(5)
        db.drop_triggers()
        db.sql("UPDATE audit_event SET actor_id = 'someone.else' WHERE seq = 4")
        broken = (await db.verify()).broken
        assert broken is not None and (broken.seq, broken.kind) == (4, "edited")

    async def test_a_deleted_middle_event_is_named(self, db: Database):
        await db.append(5)
        db.drop_triggers()
        db.sql("DELETE FROM audit_event WHERE seq = 3")
        broken = (await db.verify()).broken
        assert broken is not None
        assert (broken.seq, broken.kind) == (4, "deleted")
        assert "event(s) 3 before it are missing" in broken.detail

    async def test_a_deleted_and_renumbered_middle_event_is_named(self, db: Database):
        await db.append(4)
        db.drop_triggers()
        db.sql("DELETE FROM audit_event WHERE seq = 2", "UPDATE audit_event SET seq = 2 WHERE seq = 3",
               "UPDATE audit_event SET seq = 3 WHERE seq = 4", "UPDATE audit_head SET seq = 3")
        broken = (await db.verify()).broken
        assert broken is not None and (broken.seq, broken.kind) == (2, "reordered")

    async def test_a_deleted_last_event_is_named(self, db: Database):
        await db.append(5)
        db.drop_triggers()
        db.sql("DELETE FROM audit_event WHERE seq = 5")
        report = await db.verify()
        assert report.broken is not None
        assert (report.broken.seq, report.broken.kind) == (4, "tail_deleted")
        assert "event(s) 5 after it were deleted" in report.broken.detail
        assert report.events == 4

    async def test_two_swapped_events_are_named(self, db: Database):
        await db.append(5)
        db.drop_triggers()
        db.sql("UPDATE audit_event SET seq = -1 WHERE seq = 2", "UPDATE audit_event SET seq = 2 WHERE seq = 3",
               "UPDATE audit_event SET seq = 3 WHERE seq = -1")
        broken = (await db.verify()).broken
        assert broken is not None
        assert (broken.seq, broken.kind) == (2, "reordered")
        assert broken.at == T0 + timedelta(hours=3)  # the event that was 3 now stands at 2

    async def test_a_tampered_head_is_named(self, db: Database):
        await db.append(3)
        db.sql(f"UPDATE audit_head SET hash = '{'f' * 64}'")
        broken = (await db.verify()).broken
        assert broken is not None and (broken.seq, broken.kind) == (3, "head_tampered")

    async def test_an_event_inserted_beyond_the_head_is_named(self, db: Database):
        await db.append(2)
        db.sql("INSERT INTO audit_event (seq, at, actor_id, action, subject_type, subject_id, data, prev_hash, hash) "
               f"VALUES (3, '2026-10-08 12:00:00', 'x', 'thing.forged', 'thing', '3', '{{}}', '{'0' * 64}', "
               f"'{'e' * 64}')")
        broken = (await db.verify()).broken
        assert broken is not None and (broken.seq, broken.kind) == (3, "inserted")

