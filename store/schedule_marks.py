"""When each scheduled job last started and how it ended (embedded mode's memory across restarts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import ScheduleMarkRow


async def read_marks(session: AsyncSession) -> dict[str, ScheduleMarkRow]:
    return {row.job: row for row in (await session.execute(select(ScheduleMarkRow))).scalars()}


async def mark_started(session: AsyncSession, job: str, *, now: datetime) -> None:
    row = await session.get(ScheduleMarkRow, job)
    if row is None:
        row = ScheduleMarkRow(job=job, last_started_at=now)
    row.last_started_at, row.last_finished_at, row.last_outcome = now, None, "running"
    session.add(row)


async def mark_finished(session: AsyncSession, job: str, *, now: datetime, ok: bool) -> None:
    row = await session.get(ScheduleMarkRow, job)
    if row is None:  # started before this database was reset: nothing to finish
        return
    row.last_finished_at, row.last_outcome = now, "completed" if ok else "failed"
    session.add(row)
