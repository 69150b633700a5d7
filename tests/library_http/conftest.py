"""One shipped organisation profile served over HTTP: its policies and its organisation.yaml (demo passwords),
migrated, seeded, its calendar policies materialised for a fixed instant, and uvicorn on loopback.

The `library_server` fixture is module-scoped and parametrised indirectly by `(profile, database)`, so pytest
groups the tests of one profile and starts each profile's server once."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pendulum
import pytest
import pytest_asyncio

from config.settings import Settings
from notifications.catcher import free_port
from policies.org import Organisation
from store.organisation import read_organisation_file
from tests.serving import serve_app

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"
DEMO_PASSWORD = "duly-demo"
# Obligations are materialised as the daily flow would on this morning, for this window.
MATERIALISE_NOW = pendulum.datetime(2026, 12, 1, 1, 0, tz="Asia/Shanghai")
MATERIALISE_FIRST = date(2026, 12, 1)
MATERIALISE_LAST = date(2027, 1, 31)
POSTGRES_URL = os.environ.get("DULY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class LibraryServer:
    profile: str
    url: str
    settings: Settings
    runtime: object  # store.runtime.Runtime of the test's side (its own engine), for reading the database
    org: Organisation
    uploads: list[int] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return LIBRARY / self.profile

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, DEMO_PASSWORD), timeout=30)


def _postgres_copy(template: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"duly_lib_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), name


def _drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _materialise(runtime: object) -> None:
    from store.obligations import materialise_policy

    for version_id, loaded in runtime.registry.calendars():  # type: ignore[attr-defined]
        async with runtime.write() as session:  # type: ignore[attr-defined]
            await materialise_policy(session, runtime, version_id=version_id, loaded=loaded,  # type: ignore[arg-type]
                                     first=MATERIALISE_FIRST, last=MATERIALISE_LAST, now=MATERIALISE_NOW)




@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def library_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                         ) -> AsyncIterator[LibraryServer]:
    from duly.bootstrap import prepare

    profile, database = request.param
    tmp = tmp_path_factory.mktemp(f"{profile}-{database}")
    dropped: str | None = None
    if database == "sqlite":
        path = tmp / "duly.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url, dropped = _postgres_copy(request.getfixturevalue("postgres_template"))
    folder = LIBRARY / profile
    settings = Settings(data_dir=tmp / "data", database_url=url, demo=True, policy_paths=[folder],
                        organisation_file=folder / "organisation.yaml",
                        smtp={"mode": "smtp", "host": "127.0.0.1", "port": free_port(), "security": "none"},
                        scheduler={"enabled": False}, prefect={"mode": "external"})
    runtime = await prepare(settings, now=pendulum.now("UTC"))
    await _materialise(runtime)
    seed = read_organisation_file(folder / "organisation.yaml")
    org = Organisation.of(seed.organisation, seed.departments, seed.people)
    try:
        with serve_app(settings, settings.maildir) as (base, _):
            yield LibraryServer(profile=profile, url=base, settings=settings, runtime=runtime, org=org)
    finally:
        await runtime.close()
        if dropped:
            _drop_postgres(dropped)
