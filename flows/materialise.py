"""`materialise-obligations`: bring open obligations in line with changed policies and holidays, then
expand calendar policies into obligation rows for the coming periods."""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.obligations import materialise_policy
from store.reschedule import reschedule_policy


@flow(name="materialise-obligations")
async def materialise_obligations(now: datetime | None = None, months_ahead: int = 2, since: date | None = None,
                                  until: date | None = None) -> dict[str, int]:
    """Each obligation's periods (of its own recurrence) that overlap the month before `now` (or `since`)
    … `months_ahead` months after `now` (or `until`: e.g. a whole year on demand).

    Obligations already due before `now` are not created unless `since` asks for them (a first run
    must not flood people with "overdue" for periods they reported on paper). First, open obligations
    whose policy version or holiday calendar changed get their new due dates (store.reschedule).
    """
    ctx = await current()
    await ctx.runtime.refresh()  # uploads taken by another process since the last run
    now = pendulum.instance(now or clock.now())
    logger = get_run_logger()
    local = now.in_timezone(ctx.runtime.timezone)
    first = since or local.subtract(months=1).date().replace(day=1)
    last = until or local.add(months=months_ahead).date()
    if last < first:
        raise ValueError(f"until ({last}) is before the first day materialised ({first})")
    totals = {"created": 0, "existing": 0, "skipped": 0, "moved": 0, "orphaned": 0}
    calendars = ctx.runtime.registry.calendars()
    for done, (version_id, loaded) in enumerate(calendars, start=1):
        async with ctx.runtime.write() as session:
            moved = await reschedule_policy(session, ctx.runtime, version_id=version_id, loaded=loaded, now=now)
        async with ctx.runtime.write() as session:
            result = await materialise_policy(
                session, ctx.runtime, version_id=version_id, loaded=loaded, first=first, last=last, now=now,
                not_due_before=None if since else now)
        logger.info("%d/%d %s: %s; rescheduled %d, left %d the version no longer has", done, len(calendars),
                    loaded.id, result, moved.moved, moved.orphaned)
        if result.unknown_owners:
            logger.warning("%s: no such department in the organisation, nothing materialised for it: %s",
                           loaded.id, ", ".join(result.unknown_owners))
        totals["created"] += result.created
        totals["existing"] += result.existing
        totals["skipped"] += result.skipped
        totals["moved"] += moved.moved
        totals["orphaned"] += moved.orphaned
    logger.info("materialised %s … %s: %s", first, last, totals)
    return totals
