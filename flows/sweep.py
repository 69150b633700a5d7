"""`sweep`: fire every reminder, deadline and escalation threshold that has come due, in batches."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.sweep import claim_due, fire_thresholds


@flow(name="sweep", log_prints=False)
async def sweep(now: datetime | None = None, batch_size: int = 50, max_batches: int = 500) -> dict[str, int]:
    """Each batch is one transaction: a crash leaves a batch wholly applied or not at all."""
    ctx = await current()
    now = now or clock.now()
    logger = get_run_logger()
    totals = {"fired": 0, "skipped": 0, "lost": 0, "batches": 0}
    for _ in range(max_batches):
        async with ctx.runtime.write() as session:
            due = await claim_due(session, ctx.runtime, now=now, limit=batch_size)
            if not due:
                break
            counts = await fire_thresholds(session, ctx.runtime, due, now=now)
        totals["batches"] += 1
        for key, value in counts.items():
            totals[key] += value
        logger.info("batch %d: %s", totals["batches"], counts)
        if len(due) < batch_size:
            break
    logger.info("sweep at %s: %s", now.isoformat(), totals)
    return totals
