"""`digest`: each person's daily digest of what waits for them (store/digests.py), on working days only, at
the person's own time (person.digest_at): the flow runs every quarter of an hour and serves whoever's time has
come and has no digest for today yet."""

from __future__ import annotations

from datetime import datetime

import pendulum
from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.digests import HORIZON_WORKING_DAYS, due_for_digest, gather_digests, queue_digests


@flow(name="digest")
async def digest(now: datetime | None = None, horizon_working_days: int = HORIZON_WORKING_DAYS,
                 batch_size: int = 200) -> dict[str, int]:
    """Queue one digest per person with something pending whose digest time has passed, once per local day: a
    re-run the same day queues nothing new (the outbox key names the day). On a day off (weekend, statutory
    holiday) nothing is sent, and notifications held for digests wait for the next working day."""
    ctx = await current()
    now = pendulum.instance(now or clock.now())
    logger = get_run_logger()
    day = now.in_timezone(ctx.runtime.timezone).date()
    totals = {"working_day": 1, "people": 0, "queued": 0, "already_queued": 0}
    if not ctx.runtime.calendar.is_working_day(day):
        why = ctx.runtime.calendar.holiday_name(day) or "weekend"
        logger.info("digest: %s is not a working day (%s): no digests today", day, why)
        return {**totals, "working_day": 0}
    async with ctx.runtime.read_sessions() as session:
        due, done = await due_for_digest(session, now=now, tz=ctx.runtime.timezone)
        digests = await gather_digests(session, ctx.runtime, now=now, horizon_working_days=horizon_working_days,
                                       only=due - done) if due - done else []
    for start in range(0, len(digests), batch_size):
        async with ctx.runtime.write() as session:
            totals["queued"] += await queue_digests(session, ctx.runtime, digests[start:start + batch_size],
                                                    day=day, now=now)
    totals["already_queued"] = len(done) + len(digests) - totals["queued"]
    totals["people"] = len(digests) + len(done)
    logger.info("digest for %s: %s", day, totals)
    return totals
