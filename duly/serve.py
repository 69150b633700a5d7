"""`duly serve`: one API replica of the scaled mode — the web API and pages, nothing else.

No APScheduler (whatever DULY_SCHEDULER__ENABLED says: Prefect deployments own the schedules), no Prefect
server, no mail catcher; any number of replicas behind a load balancer. The database is prepared (migrated,
policies stored, organisation seeded) only with `--prepare`: once per release, on one machine, so that
replicas starting together do not race on the schema.
"""

from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy.exc import DBAPIError

from config import clock
from config.settings import Settings
from duly.bootstrap import prepare
from store.runtime import Runtime, build_runtime


async def open_runtime(settings: Settings, *, prepare_first: bool) -> Runtime:
    if prepare_first:
        return await prepare(settings, now=clock.now())
    try:
        return await build_runtime(settings)
    except DBAPIError as exc:  # a missing table, or no server: name the fix
        raise SystemExit(f"duly serve: the database is not ready ({type(exc.orig).__name__}): start it, check "
                         "DULY_DATABASE_URL, and prepare it once with `duly serve --prepare`") from None


async def serve(settings: Settings, *, prepare_first: bool) -> None:
    import uvicorn

    from api.app import create_app

    runtime = await open_runtime(settings, prepare_first=prepare_first)
    if not runtime.registry.current_ids():
        print("duly serve: warning: no policies in the database; run `duly serve --prepare` once", file=sys.stderr)
    from flows.deployments import DeploymentNudger

    nudger = DeploymentNudger(deployment_name=settings.prefect.deployment_name) if settings.prefect.api_url else None
    app = create_app(runtime, scheduler=None, maildir=None, nudger=nudger)
    print(f"duly serve: API replica on http://{settings.host}:{settings.port} (no scheduler)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, workers=1,
                                           log_level="info", lifespan="on"))
    try:
        await server.serve()
    finally:
        await runtime.close()


def run_replica(settings: Settings, *, prepare_first: bool, prepare_only: bool = False) -> None:
    if settings.prefect.api_url:  # for nudges (flows.deployments.nudge_deployment); prefect reads it at import
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url
    if prepare_only:
        async def _prepare() -> None:
            runtime = await prepare(settings, now=clock.now())
            await runtime.close()

        asyncio.run(_prepare())
        print(f"duly serve: database prepared ({_shown(settings)})", flush=True)
        return
    try:
        asyncio.run(serve(settings, prepare_first=prepare_first))
    except KeyboardInterrupt:
        pass


def _shown(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
