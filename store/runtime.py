"""What the shell needs to apply decisions: the database, the calendar, the policies, the zone.

Built once by the entry point (`duly run`, a worker, a test) from Settings and passed down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from policies.calendar import WorkCalendar
from policies.loader import load_policies
from store.db import create_engine_for, is_sqlite, session_factory
from store.registry import PolicyRegistry


@dataclass
class Runtime:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    calendar: WorkCalendar
    registry: PolicyRegistry
    timezone: str = "Asia/Shanghai"
    public_url: str = "http://127.0.0.1:8000"
    sqlite: bool = True
    settings: Settings | None = field(default=None, repr=False)

    async def close(self) -> None:
        await self.engine.dispose()


async def build_runtime(settings: Settings, *, sync_policies_now: object | None = None) -> Runtime:
    """Connect, load the calendar, and load the policies (from files when `sync_policies_now` is an
    instant: new versions are stored; otherwise the current versions are read from the database)."""
    url = settings.resolved_database_url
    engine = create_engine_for(url)
    runtime = Runtime(engine=engine, sessions=session_factory(engine),
                      calendar=WorkCalendar.from_directory(settings.holidays_dir),
                      registry=PolicyRegistry(), timezone=settings.timezone,
                      public_url=settings.public_url, sqlite=is_sqlite(url), settings=settings)
    async with runtime.sessions() as session, session.begin():
        if sync_policies_now is not None:
            await runtime.registry.sync(session, load_policies(settings.policy_paths, unique_ids="all"),
                                        now=sync_policies_now)  # type: ignore[arg-type]
        else:
            await runtime.registry.load_current(session)
    return runtime
