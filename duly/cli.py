"""The `duly` command."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="duly: approvals and reporting deadlines from written regulations.")


@app.command()
def check(paths: Annotated[list[Path], typer.Argument(help="policy files or folders")],
          as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
          organisation: Annotated[Path | None, typer.Option(
              help="organisation file for the people checks (default: the profile's organisation.yaml, "
                   "else the demo organisation)")] = None) -> None:
    """Check policies (and holiday-year files such as config/holidays/2027.yaml); print every problem as
    file:line:col with a hint and exit 1 if there is any."""
    from duly.checking import check_paths

    report = check_paths(paths, organisation=organisation)
    if as_json:
        typer.echo(json.dumps({
            "ok": report.ok,
            "problems": [p.as_dict() for p in report.problems],
            "policies": [{"id": p.id, "kind": p.policy.kind, "profile": p.profile, "file": p.source,
                          "hash": p.content_hash} for p in report.policies],
            "holiday_years": [{"file": str(f), "year": y} for f, y in report.holiday_years],
        }, ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            typer.echo(str(problem), err=True)
        for p in report.policies:
            typer.echo(f"ok  {p.source}  ({p.policy.kind} {p.id})")
        for f, year in report.holiday_years:
            typer.echo(f"ok  {f}  (holiday arrangement {year})")
        errors = sum(p.severity == "error" for p in report.problems)
        if report.problems:
            typer.echo(f"{errors} error(s), {len(report.problems) - errors} warning(s)", err=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def run() -> None:
    """Start everything on this machine: database, policies, demo organisation, mail catcher, Prefect
    server, scheduler and the web API on http://127.0.0.1:8000."""
    from duly.embedded import run_embedded

    run_embedded()


@app.command()
def serve(prepare: Annotated[bool, typer.Option(
              "--prepare", help="first migrate the database, store new policy versions and seed the organisation "
                                "(once per release, on one replica)")] = False,
          prepare_only: Annotated[bool, typer.Option("--prepare-only", help="prepare the database, then exit")] = False,
          host: Annotated[str | None, typer.Option(help="listen address (default: DULY_HOST)")] = None,
          port: Annotated[int | None, typer.Option(help="listen port (default: DULY_PORT)")] = None) -> None:
    """Scaled mode: serve one API replica (web API and pages) with no scheduler, Prefect server or mail
    catcher; run as many as needed behind a load balancer."""
    from config.settings import Settings
    from duly.serve import run_replica

    settings = Settings()
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    run_replica(settings, prepare_first=prepare, prepare_only=prepare_only)


@app.command()
def deploy(only: Annotated[list[str] | None, typer.Option(
               "--only", help="deploy only these (repeat): sweep, deliver, materialise, digest, escalation-report, "
                              "housekeeping")] = None,
           sweep_seconds: Annotated[float | None, typer.Option(
               min=1, help="run the sweep every N seconds instead of every minute (tests, demos)")] = None) -> None:
    """Scaled mode: register the flows as deployments with their schedules on the Prefect server
    (DULY_PREFECT__API_URL or PREFECT_API_URL), on the process work pool DULY_PREFECT__WORK_POOL (created
    if missing). Prints one line per deployment; exits 1 if one could not be registered."""
    import asyncio

    from config.settings import Settings
    from duly.deploy import PrefectNotReachableError, deploy, prefect_api_url, report_lines
    from flows.deployments import select

    settings = Settings()
    try:
        specs = select(only, sweep_seconds=sweep_seconds, schedule=settings.scheduler)
        url = prefect_api_url(settings)
    except (ValueError, PrefectNotReachableError) as exc:
        typer.echo(f"duly deploy: error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Prefect server {url}, work pool {settings.prefect.work_pool!r}, time zone {settings.timezone}")
    try:
        notes, outcomes = asyncio.run(deploy(settings, specs))
    except Exception as exc:  # the server refused or went away: say what, not a traceback
        typer.echo(f"duly deploy: error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    lines, ok = report_lines(outcomes, asked=set(only or ()))
    for line in [*notes, *lines]:
        typer.echo(line)
    if not ok:
        typer.echo("duly deploy: error: not every deployment was registered (see FAILED above): fix the flow file, "
                   "or leave it out with --only", err=True)
        raise typer.Exit(1)


@app.command()
def worker(name: Annotated[str | None, typer.Option(help="worker name shown in Prefect (default: generated)")] = None,
           limit: Annotated[int | None, typer.Option(min=1, help="most flow runs at once on this worker")] = None
           ) -> None:
    """Scaled mode: run flows from the process work pool on this machine (a Prefect worker). Needs the Prefect
    server (DULY_PREFECT__API_URL) and the application's DULY_* settings (DULY_DATABASE_URL, DULY_SMTP__*,
    DULY_BASE_URL) in the environment: each flow run reads them. Ctrl-C or SIGTERM stops it."""
    from config.settings import Settings
    from duly.deploy import PrefectNotReachableError
    from duly.worker import WorkerConfigError, run_worker

    try:
        run_worker(Settings(), name=name, limit=limit)
    except (PrefectNotReachableError, WorkerConfigError) as exc:
        typer.echo(f"duly worker: error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def impact(paths: Annotated[list[Path], typer.Argument(help="policy files or folders about to be loaded")],
           database: Annotated[str | None, typer.Option(help="database URL (default: DULY_DATABASE_URL)")] = None
           ) -> None:
    """Show which running requests and open obligations a change to these policies would affect (reads the
    database; exits 1 if it is missing or not migrated)."""
    import asyncio

    from config.settings import Settings
    from duly.impact import DatabaseNotReadyError, describe, impact_on_database
    from policies.errors import PolicyError
    from policies.loader import load_policies
    from store.db import DatabaseURLError

    try:
        loaded = load_policies(paths, unique_ids="all")
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    url = database or Settings().resolved_database_url
    try:
        impacts = asyncio.run(impact_on_database(url, loaded))
    except (DatabaseNotReadyError, DatabaseURLError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in impacts:
        typer.echo(describe(item))


@app.command()
def explain(
    policy: Annotated[str, typer.Argument(help="a policy file, or the id of a policy in --policies")],
    requester: Annotated[str, typer.Option(help="the person filing the request (id)")],
    form: Annotated[list[str] | None, typer.Option("--form", help="a form value as field=value (repeat)")] = None,
    organisation: Annotated[Path | None, typer.Option(help="organisation file (default: the demo one)")] = None,
    policies: Annotated[list[Path] | None, typer.Option(help="where to find a policy named by id")] = None,
    at: Annotated[str | None, typer.Option(help="file at this instant for sample deadlines, 2026-09-30T16:00")] = None,
) -> None:
    """Show the route a request would take: each step, who is asked and why, SLAs and escalations."""
    from duly.explain import run_explain

    lines, code = run_explain(policy, form or [], requester, organisation_file=organisation, policy_paths=policies,
                              at=at)
    for line in lines:
        typer.echo(line, err=code == 2)
    raise typer.Exit(code)


@app.command()
def simulate(
    paths: Annotated[list[Path], typer.Argument(help="policy files or folders")],
    start: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first due date")] = None,
    end: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last due date")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or ics")] = "table",
    organisation: Annotated[Path | None, typer.Option(help="organisation file: check owners, show names")] = None,
) -> None:
    """Every deadline of the calendar policies due from --from to --to (default: this year)."""
    import time

    started = time.perf_counter()  # the whole run, imports and loading included
    from duly.simulate import run_simulate

    output, messages, code = run_simulate(paths, first=start.date() if start else None,
                                          last=end.date() if end else None, fmt=fmt, organisation_file=organisation)
    typer.echo(output, nl=False)
    for line in messages:
        typer.echo(line, err=True)
    typer.echo(f"elapsed {time.perf_counter() - started:.2f} s", err=True)
    raise typer.Exit(code)


db_app = typer.Typer(help="database maintenance")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the configured database to the newest schema."""
    from config.settings import Settings
    from store.db import migrate

    settings = Settings()
    migrate(settings.resolved_database_url)
    typer.echo(f"database at {settings.resolved_database_url} is up to date")


audit_app = typer.Typer(help="the tamper-evident audit trail")
app.add_typer(audit_app, name="audit")
DatabaseOption = Annotated[str | None, typer.Option("--database-url", help="database URL (default: DULY_DATABASE_URL)")]


def _database_url(given: str | None) -> str:
    from config.settings import Settings

    return given or Settings().resolved_database_url


@audit_app.command("verify")
def audit_verify(database_url: DatabaseOption = None,
                 expect_head: Annotated[str | None, typer.Option(
                     help="a head exported earlier (hash, seq:hash, or the JSON of `duly audit head`): "
                          "check it is still in the chain")] = None) -> None:
    """Recompute the audit hash chain; exit 0 if intact, 1 naming the first broken event (2: unreadable)."""
    from duly.audit_cmd import run_verify

    lines, code = run_verify(_database_url(database_url), expect_head)
    for line in lines:
        typer.echo(line, err=code != 0)
    raise typer.Exit(code)


@audit_app.command("head")
def audit_head(database_url: DatabaseOption = None) -> None:
    """Print the chain's head as JSON {seq, hash, at}, to keep outside duly (paper, another system)."""
    from duly.audit_cmd import run_head

    lines, code = run_head(_database_url(database_url))
    for line in lines:
        typer.echo(line, err=code != 0)
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
