"""Per-flow-run overhead of Prefect in each mode (not a pass/fail test; prints figures).

A trivial `async` flow calling one `async` task, run N times in one process after a warm-up run, against:
  embedded  `prefect server start` on SQLite, started as `duly run` starts it (duly/prefect_server.py);
  scaled    `prefect server start` on PostgreSQL (duly/prefect_compat.py), when PostgreSQL answers.
Then, on the PostgreSQL server, the same flow as a deployment run by `duly worker` (a process work pool):
K runs one after the other, each from `run_deployment` to Completed, split into the worker's pick-up,
the flow-run process start-up and the run itself. Every run there starts a new Python process.

Usage: python bench/flow_overhead.py [N] [K]      (default N=50, K=5)
PostgreSQL: DULY_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from prefect import flow, task

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("DULY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL = "bench-overhead"


@task
async def add_one(x: int) -> int:
    return x + 1


@flow(name="bench-trivial")
async def trivial(x: int = 1) -> int:
    return await add_one(x)


# --- the measuring child: prefect reads PREFECT_API_URL once, at import, so each server gets a process ----

async def _in_process(n: int) -> dict[str, float]:
    await trivial()  # warm-up: client, flow and task registration
    times = []
    for i in range(n):
        started = time.perf_counter()
        await trivial(i)
        times.append((time.perf_counter() - started) * 1000)
    return {"mean_ms": statistics.fmean(times), "median_ms": statistics.median(times), "n": n}


async def _through_worker(k: int) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.deployments import arun_deployment
    from prefect.flows import Flow

    from duly.deploy import ensure_process_pool

    await ensure_process_pool(POOL)
    source = await Flow.afrom_source(source=str(ROOT), entrypoint="bench/flow_overhead.py:trivial")
    deployment = await source.ato_deployment(name="bench", work_pool_name=POOL)
    await deployment.aapply(work_pool_name=POOL)
    totals, pickup, startup, running = [], [], [], []
    async with get_client() as client:
        for i in range(k + 1):  # the first run warms the worker up and is not counted
            started = time.perf_counter()
            run = await arun_deployment("bench-trivial/bench", parameters={"x": i}, timeout=0, as_subflow=False)
            while True:
                run = await client.read_flow_run(run.id)
                if run.state and run.state.is_final():
                    break
                await asyncio.sleep(0.05)
            elapsed = (time.perf_counter() - started) * 1000
            if not run.state.is_completed():
                raise SystemExit(f"run {run.id} ended {run.state.name}: {run.state.message}")
            states: dict[str, object] = {}
            for state in sorted(await client.read_flow_run_states(run.id), key=lambda s: s.timestamp):
                states.setdefault(state.type.value, state.timestamp)
            if i == 0:
                continue
            totals.append(elapsed)
            pickup.append(_ms(states["SCHEDULED"], states["PENDING"]))
            startup.append(_ms(states["PENDING"], states["RUNNING"]))
            running.append(_ms(states["RUNNING"], states["COMPLETED"]))
    return {"mean_ms": statistics.fmean(totals), "pickup_ms": statistics.fmean(pickup),
            "startup_ms": statistics.fmean(startup), "run_ms": statistics.fmean(running), "n": k}


def _ms(first: object, then: object) -> float:
    return (then - first).total_seconds() * 1000  # type: ignore[operator]


def _child(kind: str, count: int, api_url: str) -> dict[str, float]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    out = subprocess.run([sys.executable, __file__, f"--{kind}", str(count)], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- servers, a worker ------------------------------------------------------------------------------------

def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the Prefect server exited; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"the Prefect server did not answer within {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _postgres_database() -> tuple[str, str] | None:
    """A fresh database for the Prefect server (pg_trgm), or None when PostgreSQL does not answer."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        name = f"duly_bench_prefect_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES).set(database=name)
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return name, url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    except Exception as exc:  # no server: the scaled figures are left out, and the reason printed
        print(f"PostgreSQL not available ({exc}): scaled figures skipped")
        return None


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def embedded(n: int, work: Path) -> None:
    from duly.prefect_server import start_prefect_server, stop
    from notifications.catcher import free_port

    started = time.perf_counter()
    process, url = start_prefect_server(work / "embedded", port=free_port())
    ready = time.perf_counter() - started
    try:
        result = _child("in-process", n, url)
    finally:
        stop(process)
    print(f"embedded (prefect server, SQLite, ready in {ready:.1f} s): async flow + task, n={n}: "
          f"mean {result['mean_ms']:.0f} ms, median {result['median_ms']:.0f} ms per run")


def scaled(n: int, k: int, work: Path) -> None:
    from notifications.catcher import free_port

    database = _postgres_database()
    if database is None:
        return
    name, connection_url = database
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = work / "scaled-server.log"
    env = {**os.environ, "PREFECT_HOME": str(work / "scaled-home"), "PREFECT_API_URL": "",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": connection_url}
    worker = None
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "duly.prefect_compat", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=ROOT, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, server, log)
        ready = time.perf_counter() - started
        result = _child("in-process", n, url)
        print(f"scaled   (prefect server, PostgreSQL, ready in {ready:.1f} s): async flow + task, n={n}: "
              f"mean {result['mean_ms']:.0f} ms, median {result['median_ms']:.0f} ms per run")
        worker_env = {**os.environ, "DULY_PREFECT__API_URL": url, "DULY_PREFECT__WORK_POOL": POOL,
                      "DULY_DATABASE_URL": f"sqlite:///{work / 'unused.db'}", "DULY_SMTP__MODE": "smtp",
                      "PREFECT_HOME": str(work / "worker-home"), "PREFECT_WORKER_QUERY_SECONDS": "1",
                      "PREFECT_WORKER_PREFETCH_SECONDS": "0"}
        duly = str(Path(sys.executable).with_name("duly"))
        worker = subprocess.Popen([duly, "worker", "--limit", "1"], env=worker_env, cwd=ROOT,
                                  stdout=(work / "worker.log").open("wb"), stderr=subprocess.STDOUT)
        result = _child("through-worker", k, url)
        print(f"scaled, deployment run by `duly worker` (process pool, query every 1 s), k={k}: "
              f"mean {result['mean_ms']:.0f} ms from run_deployment to Completed = pick-up "
              f"{result['pickup_ms']:.0f} ms + flow-run process start {result['startup_ms']:.0f} ms + "
              f"run {result['run_ms']:.0f} ms (+ polling)")
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)
        time.sleep(1)
        _drop(name)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("--in-process", "--through-worker"):
        sys.path.insert(0, str(ROOT))
        run = _in_process if sys.argv[1] == "--in-process" else _through_worker
        print(json.dumps(asyncio.run(run(int(sys.argv[2])))))
        return
    args = sys.argv[1:]
    if any(not a.isdigit() for a in args) or len(args) > 2:
        raise SystemExit(__doc__)
    n = int(args[0]) if args else 50
    k = int(args[1]) if len(args) > 1 else 5
    sys.path.insert(0, str(ROOT))
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="duly-bench-flows-") as tmp:
        embedded(n, Path(tmp))
        scaled(n, k, Path(tmp))


if __name__ == "__main__":
    main()
