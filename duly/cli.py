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
    """Load and check policies; print every problem as file:line:col and exit 1 if there is any."""
    from policies.errors import PolicyError
    from policies.loader import load_policies

    try:
        loaded = load_policies(paths)
    except PolicyError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": [p.as_dict() for p in exc.problems]},
                                  ensure_ascii=False, indent=2))
        else:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, "policies": [{"id": p.id, "kind": p.policy.kind, "file": p.source,
                                                          "hash": p.content_hash} for p in loaded]},
                              ensure_ascii=False, indent=2))
    else:
        for p in loaded:
            typer.echo(f"ok  {p.source}  ({p.policy.kind} {p.id})")


@app.command()
def run() -> None:
    """Start everything on this machine: database, policies, demo organisation, mail catcher, Prefect
    server, scheduler and the web API on http://127.0.0.1:8000."""
    from duly.embedded import run_embedded

    run_embedded()


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
