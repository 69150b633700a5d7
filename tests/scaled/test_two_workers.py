"""Scaled mode end to end: a real Prefect server on PostgreSQL, `duly deploy`, two `duly worker` processes.

The server's scheduler creates the sweep's runs (every 5 s here), the two workers take them, and an approval
whose SLA passed days ago is escalated exactly once however many sweeps ran, on whichever worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from config import clock
from config.settings import Settings
from notifications.catcher import free_port
from tests.conftest import POSTGRES_URL, _postgres_url, _require_postgres

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
DULY = str(Path(sys.executable).with_name("duly"))
WAIT_FOR_SWEEPS = 120.0


class Processes:
    """Every child this test starts, stopped (SIGTERM, then SIGKILL) at the end whatever happens."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, process))
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            self.stop(process)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """A fresh database for the Prefect server (with pg_trgm) and one for the application; dropped after."""
    _require_postgres()
    import psycopg

    names = [f"duly_test_prefect_{uuid.uuid4().hex[:10]}", f"duly_test_app_{uuid.uuid4().hex[:10]}"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(_postgres_url(names[0]), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        yield _postgres_url(names[0]), _postgres_url(names[1])
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _prepare_app_with_an_overdue_purchase(settings: Settings) -> int:
    """Migrate and seed the app database, and file an IT purchase a week ago: its SLA (24 working hours)
    has passed, so its escalation threshold is due now."""
    from duly.bootstrap import prepare
    from store.approvals import file_request
    from store.tables import ThresholdRow

    runtime = await prepare(settings, now=clock.now())
    try:
        async with runtime.write() as session:
            request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                         form={"items": "交换机", "amount": "48000"}, requester_id="huang.lei",
                                         now=clock.now().subtract(days=7))
        async with runtime.sessions() as session:
            due = (await session.execute(select(func.count()).select_from(ThresholdRow).where(
                ThresholdRow.state == "pending", ThresholdRow.fire_at <= clock.now()))).scalar_one()
        assert due == 1, "the purchase filed a week ago should have exactly one threshold due now"
        return request.id or 0
    finally:
        await runtime.close()


async def _escalations(settings: Settings, request_id: int) -> tuple[list[str], list[str], list[str]]:
    from store.runtime import build_runtime
    from store.tables import AuditEventRow, OutboxRow, ThresholdRow

    runtime = await build_runtime(settings)
    try:
        async with runtime.sessions() as session:
            audit = list((await session.execute(select(AuditEventRow.action).where(
                AuditEventRow.subject_type == "request", AuditEventRow.subject_id == str(request_id),
                AuditEventRow.action == "step.escalated"))).scalars())
            mail = list((await session.execute(select(OutboxRow.recipient_id).where(
                OutboxRow.event == "step_escalated"))).scalars())
            thresholds = list((await session.execute(select(ThresholdRow.state))).scalars())
        return audit, mail, thresholds
    finally:
        await runtime.close()


def _wait_for_health(api: str, server: subprocess.Popen[bytes], processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the Prefect server exited:\n" + processes.log("prefect-server")[-3000:]
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the Prefect server did not answer within {timeout:.0f} s:\n"
                + processes.log("prefect-server")[-3000:])


def _sweep_runs(api: str) -> list[dict[str, object]]:
    answer = httpx.post(f"{api}/flow_runs/filter", timeout=10,
                        json={"flows": {"name": {"any_": ["sweep"]}}, "limit": 200})
    answer.raise_for_status()
    return answer.json()


def test_two_workers_run_the_scheduled_sweep_and_escalate_an_overdue_item_once(
        tmp_path: Path, databases: tuple[str, str], processes: Processes, record_property) -> None:
    prefect_db, app_db = databases
    settings = Settings(data_dir=tmp_path / "data", database_url=app_db, demo=False,
                        smtp={"mode": "smtp", "host": "127.0.0.1", "port": free_port()},
                        scheduler={"enabled": False}, prefect={"mode": "external"})
    request_id = asyncio.run(_prepare_app_with_an_overdue_purchase(settings))

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DULY_"))}
    base |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    server_env = base | {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db.replace("postgresql://", "postgresql+asyncpg://", 1),
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",  # default 60: the test would wait for it
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    server = processes.start("prefect-server", [sys.executable, "-m", "duly.prefect_compat", "server", "start",
                                                "--host", "127.0.0.1", "--port", str(port)], server_env)
    _wait_for_health(api, server, processes, timeout=90)

    duly_env = base | {"DULY_PREFECT__API_URL": api, "DULY_PREFECT__MODE": "external",
                       "DULY_DATABASE_URL": app_db, "DULY_DATA_DIR": str(tmp_path / "data"), "DULY_DEMO": "false",
                       "DULY_SMTP__MODE": "smtp", "DULY_SMTP__PORT": str(settings.smtp.port),
                       "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "3"}
    # the workers start while the deployment is registered (each creates the pool if it comes first); one
    # flow run at a time each, so that a backlog of runs does not start a dozen processes on a small machine
    workers = {name: processes.start(name, [DULY, "worker", "--name", name, "--limit", "1"], duly_env)
               for name in ("worker-a", "worker-b")}
    deployed = subprocess.run([DULY, "deploy", "--only", "sweep", "--sweep-seconds", "5"], env=duly_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert re.search(r"registered\s+sweep/duly\s+every 5 s", deployed.stdout), deployed.stdout

    deadline = time.monotonic() + WAIT_FOR_SWEEPS
    completed: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        for name, worker in workers.items():
            assert worker.poll() is None, f"{name} exited:\n" + processes.log(name)[-3000:]
        runs = _sweep_runs(api)
        broken = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
        assert not broken, f"sweep runs failed: {broken[0]['state']}\n" + processes.log("worker-a")[-3000:]
        completed = [r for r in runs if r["state_type"] == "COMPLETED"]
        if len(completed) >= 2:
            break
        time.sleep(1)
    else:
        pytest.fail(f"fewer than 2 sweep runs completed within {WAIT_FOR_SWEEPS:.0f} s ({len(completed)}):\n"
                    + processes.log("worker-a")[-2000:] + processes.log("worker-b")[-2000:])
    for worker in workers.values():
        processes.stop(worker)

    audit, mail, thresholds = asyncio.run(_escalations(settings, request_id))
    assert audit == ["step.escalated"]
    assert mail == ["li.ming"]  # the leader in charge of 综合管理部, told once
    assert thresholds == ["fired"]

    # which worker ran which run (from the workers' own logs): reported, not required
    ran = {name: {r["id"] for r in completed if f"submitting flow run '{r['id']}'" in processes.log(name)}
           for name in workers}
    record_property("sweep_runs_by_worker", {name: len(ids) for name, ids in ran.items()})
    assert all(any(r["id"] in ids for ids in ran.values()) for r in completed), ran
