"""Decisions per second through HTTP with a real database (not a pass/fail test; prints figures).

Files N IT-purchase requests, then approves them with 16 concurrent clients (each call with an
Idempotency-Key, as a careful client sends) against uvicorn on
loopback: SQLite (WAL) always, PostgreSQL when DULY_BENCH_POSTGRES_URL or the local server answers.
Usage: python bench/decisions_http.py [N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app  # noqa: E402
from config import clock  # noqa: E402
from config.settings import Settings  # noqa: E402
from duly.bootstrap import prepare  # noqa: E402
from notifications.catcher import free_port  # noqa: E402

CLIENTS = 16


def serve(settings: Settings, port: int, ready: threading.Event, holder: dict) -> None:
    async def main() -> None:
        runtime = await prepare(settings, now=clock.now())
        server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                               log_level="warning"))
        holder["server"] = server
        loop_task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        ready.set()
        await loop_task
        await runtime.close()

    asyncio.run(main())


async def run(url: str, n: int) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, auth=("huang.lei", "duly-demo"), limits=limits, timeout=60) as filer, \
            httpx.AsyncClient(base_url=url, auth=("liu.yang", "duly-demo"), limits=limits, timeout=60) as approver:
        sem = asyncio.Semaphore(CLIENTS)

        async def file(i: int) -> tuple[int, int]:
            async with sem:
                r = await filer.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                            "form": {"items": f"bench {i}", "amount": "1000"}},
                                     headers={"Idempotency-Key": f"file-{i}"})
                r.raise_for_status()
                body = r.json()
                return body["id"], body["steps"][0]["id"]

        started = time.perf_counter()
        pairs = await asyncio.gather(*(file(i) for i in range(n)))
        filed = time.perf_counter() - started

        async def approve(pair: tuple[int, int]) -> None:
            async with sem:
                r = await approver.post(f"/api/requests/{pair[0]}/steps/{pair[1]}/decision", json={"verb": "approve"},
                                        headers={"Idempotency-Key": f"approve-{pair[0]}"})
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(approve(p) for p in pairs))
        decided = time.perf_counter() - started
    return n / filed, n / decided


def bench(label: str, database_url: str, data_dir: Path, n: int) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url, demo=True, smtp={"mode": "smtp"},
                        scheduler={"enabled": False}, prefect={"mode": "external"})
    port, ready, holder = free_port(), threading.Event(), {}
    thread = threading.Thread(target=serve, args=(settings, port, ready, holder), daemon=True)
    thread.start()
    ready.wait(60)
    filed, decided = asyncio.run(run(f"http://127.0.0.1:{port}", n))
    holder["server"].should_exit = True
    thread.join(10)
    print(f"{label:<11} {n} requests, {CLIENTS} clients: filing {filed:7.1f}/s   decisions {decided:7.1f}/s")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{tmp}/bench.db", Path(tmp), n)
    pg = os.environ.get("DULY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        name = f"duly_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL  skipped: {exc}")
        return
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench("PostgreSQL", pg.rsplit("/", 1)[0] + f"/{name}", Path(tmp), n)
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
