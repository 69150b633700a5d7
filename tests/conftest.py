"""Shared fixtures: real databases (SQLite, and PostgreSQL when reachable), a real SMTP server,
the Prefect test harness, and the app served by uvicorn on loopback."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from notifications.catcher import MailCatcher, free_port

POSTGRES_URL = os.environ.get("DULY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("DULY_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "not here"; the reason is shown in the skip
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"


_PG_PROBLEM = _postgres_reachable()


def pytest_report_header(config: pytest.Config) -> str:
    return f"duly: PostgreSQL tests {'run against ' + POSTGRES_URL if not _PG_PROBLEM else 'skip: ' + _PG_PROBLEM}"


def _postgres_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _fresh_postgres_database(template: str | None = None) -> tuple[str, str]:
    import psycopg

    name = f"duly_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return _postgres_url(name), name


def _drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _require_postgres() -> None:
    if _PG_PROBLEM:
        if REQUIRE_POSTGRES:
            pytest.fail(f"DULY_REQUIRE_POSTGRES=1 but {_PG_PROBLEM}")
        pytest.skip(_PG_PROBLEM)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; tests get copies (migrating costs ~0.5 s a test)."""
    from store.db import migrate

    path = tmp_path_factory.mktemp("template") / "duly.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session; tests get `CREATE DATABASE … TEMPLATE` copies."""
    from store.db import migrate

    _require_postgres()
    url, name = _fresh_postgres_database()
    migrate(url)
    yield name
    _drop_postgres_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database of each kind for one test, migrated to the newest schema and otherwise empty."""
    if request.param == "sqlite":
        path = tmp_path / "duly.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    _require_postgres()
    url, name = _fresh_postgres_database(template=request.getfixturevalue("postgres_template"))
    yield url
    _drop_postgres_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, truly empty database of each kind (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    _require_postgres()
    url, name = _fresh_postgres_database()
    yield url
    _drop_postgres_database(name)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (it costs 6-9 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[MailCatcher]:
    """A real SMTP server on loopback storing what it receives in a Maildir."""
    catcher = MailCatcher(tmp_path / "mail", host="127.0.0.1", port=free_port())
    catcher.start()
    yield catcher
    catcher.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mail: MailCatcher) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, demo=True,
                    smtp={"mode": "smtp", "host": mail.host, "port": mail.port, "security": "none"},
                    scheduler={"enabled": False}, prefect={"mode": "external"})


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[object]:
    """Migrated database with the shipped policies and the demo organisation; flows use it."""
    from config import clock
    from duly.bootstrap import prepare
    from flows import runtime as flow_runtime

    rt = await prepare(settings, now=clock.now())
    flow_runtime.use(rt, flow_runtime.delivery_settings(settings))
    yield rt
    flow_runtime.clear()
    await rt.close()


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def client(self, user: str | None, password: str = "duly-demo") -> httpx.Client:
        auth = (user, password) if user else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)


@pytest.fixture
def live_server(runtime: object, settings: Settings, mail: MailCatcher) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free loopback port, in its own thread and event loop."""
    from tests.serving import serve_app

    with serve_app(settings, mail.maildir) as (url, _):
        yield LiveServer(url=url, settings=settings)
