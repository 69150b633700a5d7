"""Embedded mode: APScheduler in the app's lifespan starts the flows on their schedules.

Exactly one process may run this (never a uvicorn with several workers, never API replicas in scaled
mode, where Prefect deployments own the schedules). Missed runs after a restart coalesce into one.
"""

from __future__ import annotations

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from config import clock
from config.settings import SchedulerGroup
from flows.deliver import deliver
from flows.materialise import materialise_obligations
from flows.sweep import sweep

log = logging.getLogger("duly.schedule")


async def _run(name: str, coro: object) -> None:
    try:
        await coro  # type: ignore[misc]
    except Exception:  # a failed run is recorded in Prefect; the schedule goes on
        log.exception("flow %s failed", name)


async def run_sweep() -> None:
    await _run("sweep", sweep())


_deliver_again = asyncio.Event()


async def run_deliver() -> None:
    """Deliver, and again while a nudge arrived during the run (the scheduler skips a job that is
    already running, so a nudge then would otherwise wait for the next tick)."""
    while True:
        _deliver_again.clear()
        await _run("deliver", deliver())
        if not _deliver_again.is_set():
            return


async def run_materialise(months_ahead: int) -> None:
    await _run("materialise-obligations", materialise_obligations(months_ahead=months_ahead))


def build_scheduler(config: SchedulerGroup, *, timezone: str) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=timezone,
                                 job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(run_sweep, "interval", seconds=config.sweep_seconds, id="sweep", replace_existing=True)
    scheduler.add_job(run_deliver, "interval", seconds=config.deliver_seconds, id="deliver", replace_existing=True)
    scheduler.add_job(run_materialise, "cron", hour=config.materialise_cron_hour, id="materialise",
                      replace_existing=True, kwargs={"months_ahead": config.materialise_months_ahead})
    # once at start-up as well, so a fresh install shows its obligations at once
    scheduler.add_job(run_materialise, "date", run_date=clock.now(), id="materialise-now", replace_existing=True,
                      kwargs={"months_ahead": config.materialise_months_ahead})
    return scheduler


def nudge(scheduler: AsyncIOScheduler | None, job_id: str = "deliver") -> None:
    """Run a job now (after a decision queued mail) instead of at its next tick."""
    if scheduler is None or not scheduler.running:
        return
    if job_id == "deliver":
        _deliver_again.set()
    job = scheduler.get_job(job_id)
    if job is not None:
        job.modify(next_run_time=clock.now())
