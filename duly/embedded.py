"""`duly run`: the whole product in one process on this machine (the embedded default)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import replace

from config import clock
from config.settings import Settings
from duly.bootstrap import DEMO_PASSWORD, prepare
from duly.prefect_server import PrefectServerError, start_prefect_server, stop


def _log_to_console() -> None:
    """duly's own messages (the schedule's) on the console beside uvicorn's; Prefect logs its runs itself."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger = logging.getLogger("duly")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run_embedded() -> None:
    settings = Settings()
    _log_to_console()
    print(f"duly: data directory {settings.data_dir.resolve()}", flush=True)
    prefect_process = None
    if settings.prefect.mode == "embedded":
        print("duly: starting the Prefect server (first start migrates its database, ~10-20 s) ...", flush=True)
        try:
            prefect_process, api_url = start_prefect_server(settings.data_dir / "prefect", port=settings.prefect.port)
        except PrefectServerError as exc:
            sys.exit(f"duly: {exc}")
        # must be set before prefect is imported: it reads its settings once, at import
        os.environ["PREFECT_API_URL"] = api_url
    elif settings.prefect.api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        pass
    finally:
        if prefect_process is not None:
            _drain_prefect_clients()
            stop(prefect_process)
        print("duly: stopped", flush=True)


def _drain_prefect_clients(timeout: float = 10.0) -> None:
    """Send the flow runs' last logs and events to the Prefect server while it still runs: stopped first,
    Prefect's client threads would retry against it and keep the process from exiting."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


async def _serve(settings: Settings) -> None:
    import uvicorn

    from api.app import create_app
    from flows import runtime as flow_runtime
    from flows.materialise import materialise_obligations
    from notifications.catcher import MailCatcher

    runtime = await prepare(settings, now=clock.now())
    delivery = flow_runtime.delivery_settings(settings)
    catcher = None
    if settings.smtp.mode == "catcher":
        catcher = MailCatcher(settings.maildir, host="127.0.0.1", port=settings.smtp.port)
        try:
            catcher.start()
        except OSError as exc:
            sys.exit(f"duly: cannot start the mail catcher on port {settings.smtp.port}: {exc}; "
                     "set DULY_SMTP__PORT to a free port")
        delivery = replace(delivery, smtp=delivery.smtp.model_copy(
            update={"host": catcher.host, "port": catcher.port, "security": "none"}))
    flow_runtime.use(runtime, delivery)
    if settings.demo:
        # the demo shows last month's reports too, so a late one (and its escalation) is visible at once
        local = clock.now().in_timezone(settings.timezone)
        await materialise_obligations(since=local.subtract(months=1).date().replace(day=1),
                                      months_ahead=settings.scheduler.materialise_months_ahead)
    async def close() -> None:
        if catcher is not None:
            catcher.stop()
        await runtime.close()

    app = create_app(runtime, scheduler=settings.scheduler, maildir=settings.maildir if catcher else None,
                     on_shutdown=close)
    _banner(settings, catcher.port if catcher else None)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, workers=1,
                                           log_level="info", lifespan="on"))
    await server.serve()  # its lifespan's end closes the catcher and the database (`close`)


def _banner(settings: Settings, catcher_port: int | None) -> None:
    url = settings.public_url
    lines = [
        "",
        f"duly is running at {url}   (API docs: {url}/docs)",
        f"  Prefect UI (every flow run):   http://127.0.0.1:{settings.prefect.port}"
        if settings.prefect.mode == "embedded" else "",
        f"  mail catcher: SMTP 127.0.0.1:{catcher_port}; read messages at {url}/api/mail" if catcher_port else "",
        "",
    ]
    if settings.demo:
        lines += [
            f"Demo accounts (password for all: {DEMO_PASSWORD}): sign in at {url}/login, or HTTP Basic from scripts:",
            "  huang.lei     黄磊  信息科 engineer: files requests",
            "  liu.yang      刘洋  综合管理部主任: approves IT purchases up to ¥50,000",
            "  zhao.weidong  赵卫东 财务总监 (CFO): approves IT purchases above ¥50,000",
            "  li.ming       李明  副院长, leader in charge of 综合管理部: gets escalations",
            "  he.jing       何静  绩效办 statistician: owns the 13 monthly reports",
            "  admin         系统管理员: sees everything",
            "",
            "Try:",
            f"  curl -u huang.lei:{DEMO_PASSWORD} -H 'content-type: application/json' \\",
            "       -d '{\"policy\":\"it-hardware-purchase\",\"form\":{\"items\":\"笔记本电脑 10台\","
            f"\"amount\":\"48000\"}}}}' {url}/api/requests",
            f"  curl -u liu.yang:{DEMO_PASSWORD} {url}/api/tasks      # or approve in the browser: {url}/inbox",
            f"  curl -u he.jing:{DEMO_PASSWORD} '{url}/api/obligations?period=2026-11'",
            f"  curl -u huang.lei:{DEMO_PASSWORD} {url}/api/mail",
            "",
            f"Local time now: {clock.now().in_timezone(settings.timezone).format('YYYY-MM-DD HH:mm')}"
            f" ({settings.timezone}). Ctrl-C stops everything.",
        ]
    print("\n".join(line for line in lines if line is not None), flush=True)
