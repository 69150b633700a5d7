"""Helpers shared by the benchmarks (not a benchmark: `make bench` runs it and it prints nothing).

- `database(kind)`: a fresh SQLite file, or a PostgreSQL database of our own on 127.0.0.1:5432 (created and
  dropped here; `DULY_BENCH_POSTGRES_URL` names another server).
- `bench_settings(url, data_dir)`: Settings as tests/conftest.py builds them (demo organisation, shipped
  hospital policies), without a scheduler or a Prefect server.
- `PeakMemory`: the process's peak resident set size (VmHWM in /proc/self/status, the figure getrusage
  reports as ru_maxrss), reset per phase by writing 5 to /proc/self/clear_refs (Linux); where that is not
  possible, ru_maxrss since the process started. `run_in_child` runs a bulk load in a forked process, so
  what the load keeps (SQLite's page cache, freed memory the allocator does not return) does not inflate
  the figures of the phase measured after it.
- `sqlite_instant` / `bulk_sqlite` / `copy_postgres`: bulk loading with the drivers themselves (executemany,
  COPY), bypassing the ORM; secondary indexes are dropped for the load and built again after it.
- `print_table`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.settings import Settings  # noqa: E402

# as in pyproject's pytest settings: SQLModel nags about session.execute(), which the store uses on purpose
warnings.filterwarnings("ignore", message="(?s).*session.exec", category=DeprecationWarning)

POSTGRES_URL = os.environ.get("DULY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def db_kinds(choice: str) -> list[str]:
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


def common_arguments(parser: argparse.ArgumentParser, *, scale: int) -> None:
    parser.add_argument("--scale", type=int, default=scale, help=f"default {scale:,}")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured phase, print the top 25")


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A new, empty database of `kind`; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="duly-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'duly.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"duly_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(url: str, data_dir: Path, *, extra_policies: Sequence[Path] = ()) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, demo=True,
                    policy_paths=[ROOT / "policies" / "library" / "hospital", *extra_policies],
                    scheduler={"enabled": False}, prefect={"mode": "external"})


def plain_url(url: str) -> str:
    """The URL for psycopg.connect (no SQLAlchemy driver name)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PeakMemory:
    """Peak RSS of this process in MB, per phase when the kernel lets us reset it."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.method = ("peak RSS (VmHWM, reset per phase)" if self.resettable
                       else "peak RSS (getrusage ru_maxrss, since process start)")

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._reset()

    def peak_mb(self) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_child(function: Callable[..., object], *args: Any) -> float:
    """Run `function(*args)` in a forked child process (so its memory stays out of this process's figures);
    returns the child's peak RSS in MB. Close pooled connections (engine.dispose()) before calling."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        memory = PeakMemory()
        try:
            function(*args)
            send.send(("ok", memory.peak_mb()))
        except BaseException as exc:  # reported to the parent, which raises
            send.send(("error", f"{type(exc).__name__}: {exc}"))

    process = context.Process(target=child)
    process.start()
    status, value = receive.recv()
    process.join()
    if status != "ok":
        raise RuntimeError(f"the child process failed: {value}")
    return float(value)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def sqlite_instant(value: datetime) -> str:
    """An instant as SQLAlchemy stores UTCDateTime on SQLite (naive UTC, microseconds always written)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url

    path = make_url(url).database
    assert path
    return path


def bulk_sqlite(url: str, loads: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
                chunk: int = 50_000) -> None:
    """INSERT every row of each (table, columns, rows) with executemany, in one transaction. The tables'
    secondary indexes are dropped first and created again (verbatim, from sqlite_master) afterwards: one
    sort per index instead of a B-tree insert per row."""
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # room for the tables' pages: with the default 2 MB cache one big transaction writes the same pages
        # into the WAL again and again (measured: a 760 MB WAL after 3 minutes at 10^6 obligations)
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("BEGIN IMMEDIATE")
        tables = [table for table, _, _ in loads]
        indexes = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(tables))})", tables).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for table, columns, rows in loads:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= chunk:
                    conn.executemany(sql, batch)
                    batch.clear()
            if batch:
                conn.executemany(sql, batch)
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def copy_postgres(url: str, loads: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
                  after: Sequence[str] = ()) -> None:
    """COPY every row of each (table, columns, rows), then run `after` (setval, ANALYZE), in one transaction.
    Indexes that back no constraint are dropped first and created again (from pg_indexes) afterwards."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        with conn.cursor() as cur:
            tables = [table for table, _, _ in loads]
            indexes = cur.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                "WHERE c.conname = i.indexname)", [tables]).fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for table, columns, rows in loads:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for _, definition in indexes:
                cur.execute(definition)
            for statement in after:
                cur.execute(statement)
        conn.commit()


def load_note() -> str:
    """The machine's load average: the figures are wall times, and other processes share the cores."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}")
    print(line)
    for n, row in enumerate(cells):
        aligned = (c.rjust(w) if n and i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print(" | ".join(aligned))
        if n == 0:
            print(line)
    print(line)
