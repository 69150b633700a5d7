"""What the shell needs to apply decisions: the database, the calendar, the policies, the zone.

Built once by the entry point (`duly run`, a worker, a test) from Settings and passed down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from policies.calendar import WorkCalendar
from policies.loader import load_policies
from store.db import create_engine_for, is_sqlite, session_factory
from store.holiday_years import load_calendar
from store.registry import PolicyRegistry


@dataclass
class Runtime:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    """Sessions for writing (on SQLite every transaction takes the write lock at BEGIN)."""
    calendar: WorkCalendar
    registry: PolicyRegistry
    timezone: str = "Asia/Shanghai"
    public_url: str = "http://127.0.0.1:8000"
    sqlite: bool = True
    settings: Settings | None = field(default=None, repr=False)
    _write_lock: Any = field(default_factory=contextlib.nullcontext, repr=False)

    def __post_init__(self) -> None:
        if self.sqlite:
            self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a writing transaction, committed on exit (rolled back on an exception).

        On SQLite, writers of this process queue on an asyncio lock first: first come, first served,
        instead of SQLite's busy handler polling for the file lock, which starves some writers under
        load. BEGIN IMMEDIATE and the busy timeout still order writers of other processes."""
        async with self._write_lock:
            async with self.sessions() as session, session.begin():
                yield session

    def read_sessions(self) -> AsyncSession:
        """A session for reading only. (Measured: a second, non-locking SQLite engine for reads made
        HTTP filings and decisions 20-40 % slower under 16 clients, so reads share the engine.)"""
        return self.sessions()

    async def refresh(self) -> None:
        """Read the calendar and the current policy versions again from the database: an upload taken by
        another process (an API replica) is seen here from now on."""
        if self.settings is None:
            return
        async with self.read_sessions() as session:
            self.calendar = await load_calendar(session, self.settings.holidays_dir)
            await self.registry.load_current(session)

    async def close(self) -> None:
        await self.engine.dispose()


async def build_runtime(settings: Settings, *, sync_policies_now: object | None = None) -> Runtime:
    """Connect, load the calendar (the shipped holiday files plus the years uploaded to the database), and
    load the policies (from files when `sync_policies_now` is an instant: new versions are stored;
    otherwise the current versions are read from the database)."""
    url = settings.resolved_database_url
    engine = create_engine_for(url)
    runtime = Runtime(engine=engine, sessions=session_factory(engine),
                      calendar=WorkCalendar.from_directory(settings.holidays_dir),
                      registry=PolicyRegistry(), timezone=settings.timezone,
                      public_url=settings.public_url, sqlite=is_sqlite(url), settings=settings)
    async with runtime.write() as session:
        runtime.calendar = await load_calendar(session, settings.holidays_dir)
        if sync_policies_now is not None:
            await runtime.registry.sync(session, load_policies(settings.policy_paths, unique_ids="all"),
                                        now=sync_policies_now)  # type: ignore[arg-type]
        else:
            await runtime.registry.load_current(session)
    return runtime
