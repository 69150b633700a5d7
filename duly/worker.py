"""`duly worker`: a Prefect process worker that runs duly's deployments (scaled mode), on any machine.

The process becomes `prefect worker start --pool <pool> --type process` (exec), so Ctrl-C and SIGTERM stop
it as Prefect does: it stops taking runs, lets the running ones finish, and a second signal kills them.
Each flow run is a child process with this environment, and builds its database connection from the DULY_*
variables (flows.runtime.current): set DULY_DATABASE_URL and the others here, as on the API replicas.
"""

from __future__ import annotations

import os
import signal
import sys

from config.settings import Settings
from duly.deploy import prefect_api_url


class WorkerConfigError(RuntimeError):
    """The environment is not fit for running flows."""


def worker_command(settings: Settings, *, name: str | None = None, limit: int | None = None) -> list[str]:
    """The command line of the Prefect worker (checks the environment first)."""
    if settings.database_url is None:
        raise WorkerConfigError(
            "DULY_DATABASE_URL is not set, so flow runs would use a SQLite file under the data directory of this "
            "machine: set it to the application database (e.g. postgresql://duly@db.internal/duly), with the "
            "other DULY_* settings the API replicas use (DULY_SMTP__*, DULY_BASE_URL, DULY_TIMEZONE)")
    prefect_api_url(settings)
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", settings.prefect.work_pool,
               "--type", "process"]
    if name:
        command += ["--name", name]
    if limit:
        command += ["--limit", str(limit)]
    return command


def warnings(settings: Settings) -> list[str]:
    found = []
    if settings.smtp.mode == "catcher":
        found.append(f"DULY_SMTP__MODE is 'catcher': `deliver` runs on this worker will send mail to "
                     f"{settings.smtp.host}:{settings.smtp.port}, where no catcher runs in scaled mode; set "
                     "DULY_SMTP__MODE=smtp and DULY_SMTP__HOST (and __PORT, __SECURITY, __USERNAME, __PASSWORD)")
    if settings.database_url and settings.database_url.startswith("sqlite"):
        found.append("DULY_DATABASE_URL is SQLite: only workers on this machine can share it; use PostgreSQL for "
                     "workers on several machines")
    return found


def run_worker(settings: Settings, *, name: str | None = None, limit: int | None = None) -> None:
    """Replace this process with the Prefect worker (does not return)."""
    command = worker_command(settings, name=name, limit=limit)
    for line in warnings(settings):
        print(f"duly worker: warning: {line}", file=sys.stderr)
    print(f"duly worker: serving work pool {settings.prefect.work_pool!r} of {os.environ['PREFECT_API_URL']} "
          f"(flows read {_safe_url(settings.database_url or '')})", flush=True)
    sys.stderr.flush()
    # A shell starts `cmd &` with SIGINT ignored, and an ignored signal stays ignored across exec: then
    # Prefect's SIGTERM handler (which sends SIGINT to the worker) would not stop it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.executable, command)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy knows: the worker's flow runs will say so
        return "<unreadable DULY_DATABASE_URL>"
