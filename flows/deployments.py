"""Scaled mode: every flow as a Prefect deployment, declared as data.

`duly deploy` registers these on a Prefect server (`<flow name>/<deployment name>`, run by a process work
pool); the server's scheduler creates the runs and `duly worker` processes run them. Schedules are in the
settings' time zone (Asia/Shanghai by default). Embedded mode does not use this module (flows/schedule.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from config.settings import SchedulerGroup

log = logging.getLogger("duly.deployments")


@dataclass(frozen=True)
class DeploymentSpec:
    key: str
    """What `duly deploy --only` and `nudge_deployment` call it."""
    flow_name: str
    """The flow's `@flow(name=...)`: the first half of the deployment's full name."""
    entrypoint: str
    """`path/to/file.py:function`, relative to the project folder."""
    cron: str | None = None
    interval_seconds: float | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError(f"deployment {self.key}: give exactly one of cron and interval_seconds")

    @property
    def path(self) -> str:
        return self.entrypoint.partition(":")[0]

    def every(self, seconds: float) -> DeploymentSpec:
        """The same deployment on an interval schedule instead (e.g. a fast sweep in a test)."""
        return replace(self, cron=None, interval_seconds=seconds)

    def schedule(self, timezone: str) -> Any:
        """The Prefect schedule (prefect.schedules.Cron or Interval) in `timezone`."""
        from prefect.schedules import Cron, Interval

        if self.cron is not None:
            return Cron(self.cron, timezone=timezone)
        assert self.interval_seconds is not None
        # a fixed anchor (not the moment of deploying): deploying again leaves the schedule as it was
        anchor = datetime(2026, 1, 1, tzinfo=ZoneInfo(timezone))
        return Interval(timedelta(seconds=self.interval_seconds), anchor_date=anchor, timezone=timezone)

    def describe_schedule(self, timezone: str) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}' ({timezone})"
        return f"every {self.interval_seconds:g} s"


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec("sweep", "sweep", "flows/sweep.py:sweep", cron="* * * * *",
                   description="fire due reminders, deadlines and escalations (every minute)"),
    DeploymentSpec("deliver", "deliver", "flows/deliver.py:deliver", interval_seconds=30,
                   description="drain the notification outbox (every 30 s)"),
    DeploymentSpec("materialise", "materialise-obligations", "flows/materialise.py:materialise_obligations",
                   cron="0 1 * * *", description="create the coming periods' reporting obligations (01:00 daily)"),
    # Every quarter of an hour: people choose their digest time; cron cannot follow China's working days (调休
    # Saturdays, holiday weekdays), so the digest flow decides from the working-day calendar whether today is one.
    DeploymentSpec("digest", "digest", "flows/digest.py:digest", cron="*/15 * * * *",
                   description="each person's digest on working days, at their chosen time (default 08:30)"),
    DeploymentSpec("escalation-report", "escalation-report", "flows/report.py:escalation_report",
                   cron="0 9 * * 1", description="escalation report for managers (Monday 09:00)"),
    DeploymentSpec("housekeeping", "housekeeping", "flows/housekeeping.py:housekeeping", cron="30 3 * * *",
                   description="audit chain check and clean-up (03:30 daily)"),
)


def from_settings(spec: DeploymentSpec, schedule: SchedulerGroup) -> DeploymentSpec:
    """The deployment on the schedule the settings give (`DULY_SCHEDULER__*`: the same as embedded mode)."""
    crons = {"materialise": schedule.materialise_cron, "digest": schedule.digest_cron,
             "escalation-report": schedule.report_cron, "housekeeping": schedule.housekeeping_cron}
    if spec.key in crons:
        parameters = {"months_ahead": schedule.materialise_months_ahead} if spec.key == "materialise" else {}
        return replace(spec, cron=crons[spec.key], parameters=MappingProxyType(parameters))
    seconds = {"sweep": schedule.sweep_seconds, "deliver": schedule.deliver_seconds}[spec.key]
    if spec.cron == "* * * * *" and seconds == 60:
        return spec  # on the minute, as cron
    return spec.every(seconds)


def select(only: list[str] | None = None, *, sweep_seconds: float | None = None,
           schedule: SchedulerGroup | None = None) -> list[DeploymentSpec]:
    """The deployments named in `only` (all when empty), in declaration order, on the `schedule` of the
    settings when given; `sweep_seconds` puts the sweep on an interval schedule. Raises ValueError naming an
    unknown key and the known ones."""
    known = {spec.key: spec for spec in DEPLOYMENTS}
    wanted = set(only or known)
    unknown = sorted(wanted - known.keys())
    if unknown:
        raise ValueError(f"unknown deployment(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    chosen = [spec for spec in DEPLOYMENTS if spec.key in wanted]
    if schedule is not None:
        chosen = [from_settings(spec, schedule) for spec in chosen]
    if sweep_seconds is not None:
        chosen = [spec.every(sweep_seconds) if spec.key == "sweep" else spec for spec in chosen]
    return chosen


def full_name(key_or_name: str, deployment_name: str = "duly") -> str:
    """`sweep` → `sweep/duly`; a full `flow/deployment` name is returned as it is."""
    if "/" in key_or_name:
        return key_or_name
    spec = next((s for s in DEPLOYMENTS if s.key == key_or_name), None)
    if spec is None:
        raise ValueError(f"unknown deployment {key_or_name}: choose from {', '.join(s.key for s in DEPLOYMENTS)}")
    return f"{spec.flow_name}/{deployment_name}"


async def nudge_deployment(name: str, *, deployment_name: str = "duly") -> bool:
    """Ask the Prefect server for a run of deployment `name` (a key such as `deliver`, or `flow/deployment`)
    now, with `run_deployment(..., timeout=0)`: it does not wait, a worker picks the run up (scaled mode).
    Failures are logged, never raised: the schedule runs it soon anyway. Needs PREFECT_API_URL in this
    process's environment. Returns whether the run was created."""
    from prefect.deployments import arun_deployment

    try:
        target = full_name(name, deployment_name)
        await arun_deployment(target, timeout=0, as_subflow=False)
    except Exception:  # a nudge is an optimisation; the caller's work is already committed
        log.warning("could not nudge deployment %s; its schedule will run it", name, exc_info=True)
        return False
    return True


class DeploymentNudger:
    """The API's nudge in scaled mode (`duly serve`): after a decision queued mail, ask the Prefect server
    for a `deliver` run now instead of at its next tick. At most one nudge per job every `min_gap_seconds`
    (a burst of decisions asks once; each run is a worker process, which costs seconds), sent in the
    background: the API never waits on Prefect."""

    def __init__(self, *, deployment_name: str = "duly", min_gap_seconds: float = 10.0) -> None:
        self.deployment_name, self.min_gap = deployment_name, min_gap_seconds
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        self.sent = 0
        """Nudges sent (not counting those a recent one made unnecessary)."""

    def nudge(self, job_id: str) -> None:
        key = {"report": "escalation-report"}.get(job_id, job_id)
        now = time.monotonic()
        if now - self._last.get(key, -self.min_gap) < self.min_gap:
            return
        self._last[key] = now
        self.sent += 1
        task = asyncio.get_running_loop().create_task(nudge_deployment(key, deployment_name=self.deployment_name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
