"""`deliver`: drain the notification outbox."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from notifications.delivery import deliver_due


@flow(name="deliver")
async def deliver(now: datetime | None = None, batch_size: int = 100, max_batches: int = 50) -> dict[str, int]:
    ctx = await current()
    logger = get_run_logger()
    totals = {"claimed": 0, "sent": 0, "retrying": 0, "dead": 0}
    for _ in range(max_batches):
        report = await deliver_due(ctx.runtime, ctx.delivery, now=now or clock.now(), batch_size=batch_size)
        for key in totals:
            totals[key] += getattr(report, key)
        if report.claimed < batch_size:
            break
    logger.info("deliver: %s", totals)
    return totals
