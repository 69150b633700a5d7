"""Migrations build the schema the models describe: from an empty database to head, down to base and up
again, on SQLite and PostgreSQL; Alembic's comparison finds no difference, so models and migrations
cannot drift apart unnoticed."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from store.db import alembic_config, migrate, sync_engine_for


def schema_differences(url: str, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    engine = sync_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "render_as_batch": engine.dialect.name == "sqlite"})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = sync_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = sync_engine_for(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_up_down_and_up_again_leaves_exactly_the_models_schema(empty_database_url: str):
    url = empty_database_url
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert tables(url) == set()
    migrate(url)
    assert current_revision(url) == head
    assert tables(url) == set(SQLModel.metadata.tables)
    assert schema_differences(url) == []

    command.downgrade(alembic_config(url), "base")
    assert current_revision(url) is None
    assert tables(url) == set()

    migrate(url)
    assert current_revision(url) == head
    assert schema_differences(url) == []


def test_after_down_and_up_the_chain_head_is_seeded_and_audit_rows_are_append_only(empty_database_url: str):
    url = empty_database_url
    migrate(url)
    command.downgrade(alembic_config(url), "base")
    migrate(url)
    engine = sync_engine_for(url)
    try:
        with engine.begin() as connection:
            assert connection.execute(text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
            connection.execute(text(
                "INSERT INTO audit_event (seq, at, action, subject_type, subject_id, data, prev_hash, hash) "
                "VALUES (1, '2026-10-08 08:00:00', 'x.y', 'thing', '1', '{}', :genesis, :digest)"),
                {"genesis": "0" * 64, "digest": "a" * 64})
        with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
            connection.execute(text("UPDATE audit_event SET action = 'x.z'"))
        assert "append-only" in str(refused.value)
    finally:
        engine.dispose()


def test_the_comparison_does_notice_a_column_the_migrations_lack(empty_database_url: str):
    """Guards the guard: a model column without a migration is reported."""
    migrate(empty_database_url)
    altered = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(altered)
    altered.tables["idempotency_key"].append_column(Column("undeclared", Integer, nullable=True))
    differences = schema_differences(empty_database_url, altered)
    assert [(d[0], d[2], d[3].name) for d in differences] == [("add_column", "idempotency_key", "undeclared")]
