"""The `duly` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="duly: approvals and reporting deadlines from written regulations.")


@app.command()
def check(paths: Annotated[list[Path], typer.Argument(help="policy files or folders")],
          as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False) -> None:
    """Check policies (and holiday-year files such as config/holidays/2027.yaml); print every problem as
    file:line:col with a hint and exit 1 if there is any."""
    from duly.checking import check_paths

    report = check_paths(paths)
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
def impact(paths: Annotated[list[Path], typer.Argument(help="policy files or folders about to be loaded")],
           database: Annotated[str | None, typer.Option(help="database URL (default: DULY_DATABASE_URL)")] = None
           ) -> None:
    """Show which running requests and open obligations a change to these policies would affect."""
    import asyncio

    from config.settings import Settings
    from duly.impact import describe, impact_of
    from policies.errors import PolicyError
    from policies.loader import load_policies
    from store.db import create_engine_for, session_factory

    try:
        loaded = load_policies(paths, unique_ids="all")
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    url = database or Settings().resolved_database_url

    async def run() -> list[str]:
        engine = create_engine_for(url)
        try:
            async with session_factory(engine)() as session:
                return [describe(i) for i in await impact_of(session, loaded)]
        finally:
            await engine.dispose()

    for line in asyncio.run(run()):
        typer.echo(line)


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


if __name__ == "__main__":
    app()
