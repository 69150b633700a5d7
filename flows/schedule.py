"""Embedded mode: APScheduler in the app's lifespan starts the flows on their schedules.

Exactly one process may run this (never a uvicorn with several workers, never API replicas in scaled
mode, where Prefect deployments own the schedules: flows/deployments.py).

What survives a restart (also after kill -9) is in the database, not in APScheduler's memory job store:
each job's last start and outcome (`schedule_mark`). At start-up a calendar job (materialise, digest,
report, housekeeping) whose scheduled time passed while the process was down, or whose last run was cut
off, runs once at once: missed runs coalesce into one. Interval jobs (sweep, deliver) simply run at start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config import clock
from config.settings import SchedulerGroup
from store.runtime import Runtime
from store.schedule_marks import mark_finished, mark_started, read_marks
from store.tables import ScheduleMarkRow

log = logging.getLogger("duly.schedule")


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    flow: str
    """"module:function" of the flow, imported when it first runs (a flow module costs an import)."""
    trigger: BaseTrigger
    kwargs: dict[str, Any] = field(default_factory=dict)
    at_start: bool = False
    """Also runs once when the process starts (a fresh install shows its obligations at once)."""

    @property
    def calendar(self) -> bool:
        """Runs at times of day (a missed time is made up once at start), not every few seconds."""
        return isinstance(self.trigger, CronTrigger)


def scheduled_jobs(config: SchedulerGroup, *, timezone: str) -> list[ScheduledJob]:
    def cron(text: str) -> CronTrigger:
        return CronTrigger.from_crontab(text, timezone=timezone)

    return [
        ScheduledJob("sweep", "flows.sweep:sweep", IntervalTrigger(seconds=config.sweep_seconds, timezone=timezone)),
        ScheduledJob("deliver", "flows.deliver:deliver",
                     IntervalTrigger(seconds=config.deliver_seconds, timezone=timezone)),
        ScheduledJob("materialise", "flows.materialise:materialise_obligations", cron(config.materialise_cron),
                     {"months_ahead": config.materialise_months_ahead}, at_start=True),
        ScheduledJob("digest", "flows.digest:digest", cron(config.digest_cron)),
        ScheduledJob("report", "flows.report:escalation_report", cron(config.report_cron)),
        ScheduledJob("housekeeping", "flows.housekeeping:housekeeping", cron(config.housekeeping_cron)),
    ]


def missed(job: ScheduledJob, mark: ScheduleMarkRow | None, *, now: datetime) -> bool:
    """Did a calendar job miss a run while the process was down (or was its last run cut off)?

    A job that never ran here has missed nothing: a fresh install does not replay history."""
    if not job.calendar or mark is None:
        return False
    if mark.last_outcome == "running":
        return True
    due = job.trigger.get_next_fire_time(None, mark.last_started_at + timedelta(seconds=1))
    return due is not None and due <= now


class FlowScheduler:
    """The jobs on an AsyncIOScheduler; each run leaves its mark in the database."""

    def __init__(self, runtime: Runtime, config: SchedulerGroup) -> None:
        self.runtime = runtime
        self.jobs = {job.id: job for job in scheduled_jobs(config, timezone=runtime.timezone)}
        self.scheduler = AsyncIOScheduler(timezone=runtime.timezone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self._again: dict[str, asyncio.Event] = {}
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self.scheduler.running

    async def start(self, *, now: datetime, paused: bool = False) -> list[str]:
        """Start the schedule (inside the running loop); returns the jobs made up for now."""
        async with self.runtime.read_sessions() as session:
            marks = await read_marks(session)
        caught_up = [job.id for job in self.jobs.values() if missed(job, marks.get(job.id), now=now)]
        for job in self.jobs.values():
            run_now = not job.calendar or job.at_start or job.id in caught_up
            first = now if run_now else job.trigger.get_next_fire_time(None, now)
            self.scheduler.add_job(self.run, job.trigger, args=[job.id], id=job.id, replace_existing=True,
                                   next_run_time=first)
        if caught_up:
            log.info("making up runs missed while stopped: %s", ", ".join(caught_up))
        self.scheduler.start(paused=paused)
        return caught_up

    async def shutdown(self, *, grace_seconds: float = 10.0) -> None:
        """Stop scheduling; let runs under way finish for `grace_seconds`, then cancel them (a sweep batch
        rolls back whole; a cut-off calendar job is made up at the next start)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def run(self, job_id: str) -> None:
        """One run of a job, and again while a nudge arrived during it (the scheduler skips a job that is
        already running, so a nudge then would otherwise wait for the next tick)."""
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            again = self._again.setdefault(job_id, asyncio.Event())
            while True:
                again.clear()
                await self._run_once(self.jobs[job_id])
                if not again.is_set():
                    return
        finally:
            self._running.discard(task)

    async def _run_once(self, job: ScheduledJob) -> None:
        """Calendar jobs leave their mark (interval jobs run every few seconds and at start anyway). A run
        cancelled at shutdown stays marked "running", so the next start makes it up."""
        if job.calendar:
            async with self.runtime.write() as session:
                await mark_started(session, job.id, now=clock.now())
        ok = False
        try:
            module, name = job.flow.split(":")
            await getattr(importlib.import_module(module), name)(**job.kwargs)
            ok = True
        except Exception:  # a failed run is recorded in Prefect and here; the schedule goes on
            log.exception("flow %s failed", job.id)
        if job.calendar:
            async with self.runtime.write() as session:
                await mark_finished(session, job.id, now=clock.now(), ok=ok)

    def nudge(self, job_id: str) -> None:
        """Run a job now (after a decision queued mail) instead of at its next tick."""
        if not self.scheduler.running:
            return
        self._again.setdefault(job_id, asyncio.Event()).set()
        job = self.scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=clock.now())


class Nudger(Protocol):
    """What `nudge` talks to: this process's FlowScheduler, or a replica's DeploymentNudger."""

    def nudge(self, job_id: str) -> None: ...

    async def shutdown(self) -> None: ...


def nudge(scheduler: Nudger | None, job_id: str = "deliver") -> None:
    """Run a job now if this process runs the schedule (embedded mode); otherwise the next tick does."""
    if scheduler is not None:
        scheduler.nudge(job_id)
