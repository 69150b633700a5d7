"""`duly deploy`: register the flows as deployments with schedules on a Prefect server (scaled mode).

Each deployment is `<flow>/<deployment name>` on the process work pool (created when missing); its code is
found by path (`flow.from_source(<project folder>, "flows/x.py:func")`), so every worker machine needs the
project at that path. Deploying again updates the deployments in place.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from config.settings import PACKAGE_ROOT, Settings
from flows.deployments import DeploymentSpec


class PrefectNotReachableError(RuntimeError):
    """No Prefect server is configured, or it does not answer."""


def prefect_api_url(settings: Settings) -> str:
    """The Prefect API to use (DULY_PREFECT__API_URL, else PREFECT_API_URL); it must answer /health.

    Also exports it as PREFECT_API_URL for this process and its children: call this before importing
    prefect, which reads its settings once."""
    url = (settings.prefect.api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/")
    if not url:
        raise PrefectNotReachableError(
            "no Prefect server configured: set DULY_PREFECT__API_URL (or PREFECT_API_URL) to the API of the "
            "server started with `prefect server start`, e.g. http://prefect.internal:4200/api")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            if answer.status == 200:
                os.environ["PREFECT_API_URL"] = url
                return url
            problem = f"HTTP {answer.status}"
    except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: not a URL at all
        problem = str(getattr(exc, "reason", exc))
    raise PrefectNotReachableError(
        f"cannot reach the Prefect server at {url} ({problem}): start it (`prefect server start`) or set "
        "DULY_PREFECT__API_URL / PREFECT_API_URL to its API URL, which ends in /api")


@dataclass(frozen=True)
class Outcome:
    spec: DeploymentSpec
    status: str
    """registered | absent (this version has no such file) | failed (it does not load)"""
    name: str = ""
    """`flow/deployment` once registered"""
    schedule: str = ""
    note: str = ""


def code_dir(settings: Settings) -> Path:
    return (settings.prefect.code_dir or PACKAGE_ROOT).resolve()


async def ensure_process_pool(name: str) -> bool:
    """Create the process work pool `name` if it is missing; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            try:
                await client.create_work_pool(WorkPoolCreate(
                    name=name, type="process", description="duly flows (duly worker)",
                    base_job_template=ProcessWorker.get_default_base_job_template()))
            except ObjectAlreadyExists:  # another `duly deploy` or `duly worker` made it meanwhile
                return False
            return True
    if pool.type != "process":
        raise RuntimeError(f"work pool {name!r} exists with type {pool.type!r}, duly needs a process pool: set "
                           f"DULY_PREFECT__WORK_POOL to another name, or delete it (prefect work-pool delete {name})")
    return False


async def deploy_one(spec: DeploymentSpec, settings: Settings, source: Path) -> Outcome:
    from prefect.flows import Flow

    pool, name, zone = settings.prefect.work_pool, settings.prefect.deployment_name, settings.timezone
    if not (source / spec.path).is_file():
        return Outcome(spec, "absent", note=f"{spec.path} is not in {source} (this version has no such flow)")
    try:
        flow = await Flow.afrom_source(source=str(source), entrypoint=spec.entrypoint)
    except Exception as exc:  # the file does not import, or has no such flow: say which and go on
        return Outcome(spec, "failed", note=f"cannot load {spec.entrypoint}: {type(exc).__name__}: {exc}")
    deployment = await flow.ato_deployment(
        name=name, schedules=[spec.schedule(zone)], parameters=dict(spec.parameters), work_pool_name=pool,
        description=spec.description, tags=["duly"])
    await deployment.aapply(work_pool_name=pool)
    note = ""
    if flow.name != spec.flow_name:
        note = (f"flows/deployments.py calls this flow {spec.flow_name!r} but it is {flow.name!r}: fix flow_name "
                "there, or nudge_deployment will not find it")
    return Outcome(spec, "registered", name=f"{flow.name}/{name}", schedule=spec.describe_schedule(zone), note=note)


def report_lines(outcomes: list[Outcome], *, asked: set[str]) -> tuple[list[str], bool]:
    """One line per deployment, and whether all went well: a deployment absent from this version is only
    skipped, unless it was asked for by name (--only)."""
    width = max((len(o.name) for o in outcomes), default=0)
    lines, ok = [], True
    for o in outcomes:
        if o.status == "registered":
            lines.append(f"registered  {o.name:<{width}}  {o.schedule:<33}  {o.spec.entrypoint}")
            if o.note:
                lines.append(f"  warning: {o.note}")
            continue
        failed = o.status == "failed" or o.spec.key in asked
        ok = ok and not failed
        lines.append(f"{'FAILED' if failed else 'skipped':<10}  {o.spec.key}: {o.note}")
    return lines, ok


async def deploy(settings: Settings, specs: list[DeploymentSpec]) -> tuple[list[str], list[Outcome]]:
    """Create the work pool if needed and register `specs`; returns notes and one outcome per spec.
    Call prefect_api_url(settings) first."""
    notes: list[str] = []
    pool = settings.prefect.work_pool
    if await ensure_process_pool(pool):
        notes.append(f"created the process work pool {pool!r}")
    source = code_dir(settings)
    notes.append(f"code: {source} (every worker machine needs the project at this path)")
    return notes, [await deploy_one(spec, settings, source) for spec in specs]
