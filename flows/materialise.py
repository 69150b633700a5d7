"""`materialise-obligations`: expand calendar policies into obligation rows for the coming periods."""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.obligations import materialise_policy


@flow(name="materialise-obligations")
async def materialise_obligations(now: datetime | None = None, months_ahead: int = 2,
                                  since: date | None = None) -> dict[str, int]:
    """Each obligation's periods (of its own recurrence) that overlap the month before `now` (or `since`)
    … `months_ahead` months after `now`.

    Obligations already due before `now` are not created unless `since` asks for them (a first run
    must not flood people with "overdue" for periods they reported on paper).
    """
    ctx = await current()
    now = pendulum.instance(now or clock.now())
    logger = get_run_logger()
    local = now.in_timezone(ctx.runtime.timezone)
    first = since or local.subtract(months=1).date().replace(day=1)
    last = local.add(months=months_ahead).date()
    totals = {"created": 0, "existing": 0, "skipped": 0}
    for version_id, loaded in ctx.runtime.registry.calendars():
        async with ctx.runtime.write() as session:
            result = await materialise_policy(
                session, ctx.runtime, version_id=version_id, loaded=loaded, first=first, last=last, now=now,
                not_due_before=None if since else now)
        logger.info("%s: %s", loaded.id, result)
        if result.unknown_owners:
            logger.warning("%s: no such department in the organisation, nothing materialised for it: %s",
                           loaded.id, ", ".join(result.unknown_owners))
        totals["created"] += result.created
        totals["existing"] += result.existing
        totals["skipped"] += result.skipped
    return totals
