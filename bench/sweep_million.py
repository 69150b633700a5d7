"""Sweep over N open obligations, 5 % of N thresholds due (prints figures; not a pass/fail test).

The database is prepared as tests/conftest.py does (migrations, the shipped hospital policies, the demo
organisation), then seeded in bulk (executemany on SQLite, COPY on PostgreSQL; not the ORM):
N obligations of the shipped calendar policy `municipal-monthly-reports` (D-001 … D-013, owner 绩效办), each
with the thresholds materialising creates (remind-1 three working days before, `due` = mark late, and
escalate-1 at the due instant: policies.escalation.obligation_thresholds on the real working-day calendar).
Due dates are those of real monthly periods (2026-09 … 2027-04); the period key carries a copy number
("2026-10#000123") because the demo profile has one owner and 13 reports, and 10^6 distinct real periods
would span thousands of years.

At `now` = 2026-11-13 12:00 (Asia/Shanghai), 5 % × N thresholds are due:
- 8/9 of them on obligations of period 2026-10 in their reminder window (remind-1 past, due 15 Nov ahead):
  one reminder each, mailed to the statistician;
- 1/9 on obligations of period 2026-09, due 15 Oct and not reported (remind-1 fired earlier): `due` marks
  them late and escalate-1 mails the leader in charge — two thresholds each.
Everything else is ahead of `now`. The sweep is the flow's loop (flows/sweep.py: batches of 50, one
transaction each, at most 500 batches per run) over store.sweep.claim_due + fire_thresholds; a run of the
flow stops at its cap, so the number of runs the flow needs is reported.

Usage: python bench/sweep_million.py [--scale N] [--db sqlite|postgresql|both] [--batch-size 50] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pendulum  # noqa: E402
from _seed import (  # noqa: E402
    PeakMemory,
    Stopwatch,
    bench_settings,
    bulk_sqlite,
    common_arguments,
    copy_postgres,
    database,
    db_kinds,
    load_note,
    print_table,
    run_in_child,
    sqlite_instant,
)
from sqlalchemy import event, func, select, text  # noqa: E402

from duly.bootstrap import prepare  # noqa: E402
from policies.durations import Deadline  # noqa: E402
from policies.escalation import ThresholdPlan, obligation_thresholds  # noqa: E402
from policies.models import CalendarPolicy  # noqa: E402
from policies.recurrence import period_containing  # noqa: E402
from store.runtime import Runtime  # noqa: E402
from store.sweep import claim_due, fire_thresholds  # noqa: E402
from store.tables import AuditEventRow, ObligationRow, OutboxRow, ThresholdRow  # noqa: E402

POLICY = "municipal-monthly-reports"
TZ = "Asia/Shanghai"
NOW = pendulum.datetime(2026, 11, 13, 12, tz=TZ)
SETUP = pendulum.datetime(2026, 9, 1, 9, tz=TZ)
LATE_PERIOD = date(2026, 9, 1)
REMIND_PERIOD = date(2026, 10, 1)
FUTURE_PERIODS = [date(2026, m, 1) for m in (11, 12)] + [date(2027, m, 1) for m in (1, 2, 3, 4)]
FLOW_MAX_BATCHES = 500
OBLIGATION_COLUMNS = ("id", "policy_id", "policy_version_id", "obligation_key", "title", "owner_department",
                      "period_key", "period_start", "period_end", "due_at", "nominal_date", "shift", "provisional",
                      "state", "late", "created_at")
THRESHOLD_COLUMNS = ("id", "subject_type", "subject_id", "key", "action", "rung", "fire_at", "provisional",
                     "state", "fired_at")


@dataclass
class Plan:
    """What one obligation of a period looks like: its row's due fields and its thresholds."""

    period: Any
    due: Any
    thresholds: list[ThresholdPlan]


@dataclass
class Figures:
    db: str
    scale: int
    obligations: int = 0
    thresholds: int = 0
    due_thresholds: int = 0
    seed_s: float = 0.0
    seed_peak_mb: float = 0.0
    sweep_s: float = 0.0
    sweep_peak_mb: float = 0.0
    sweep_start_mb: float = 0.0
    fired: int = 0
    skipped: int = 0
    lost: int = 0
    batches: int = 0
    flow_runs: int = 0
    claim_first_ms: float = 0.0
    claim_mean_ms: float = 0.0
    claim_total_s: float = 0.0
    range_count_ms: float = 0.0
    audit_events: int = 0
    outbox_rows: int = 0
    pending_left: int = 0
    plans: dict[str, list[str]] = field(default_factory=dict)


def due_layout(scale: int) -> tuple[int, int]:
    """(reminder obligations, late obligations) such that reminders + 2 × late = 5 % of `scale`."""
    due = scale // 20
    late = due // 10
    return due - 2 * late, late


def period_plans(policy: CalendarPolicy, runtime: Runtime) -> dict[str, dict[date, Plan]]:
    """Per obligation key and period: the due date and thresholds materialising computes."""
    plans: dict[str, dict[date, Plan]] = {}
    for spec in policy.obligations:
        rules = policy.rules_for(spec)
        plans[spec.id] = {}
        for start in [LATE_PERIOD, REMIND_PERIOD, *FUTURE_PERIODS]:
            period = period_containing(start, "monthly")
            due = policy.due_for(spec, period, runtime.calendar)
            assert due.at is not None
            thresholds = obligation_thresholds(Deadline(at=due.at, provisional=due.provisional), rules.remind,
                                               rules.escalate, runtime.calendar, tz=policy.timezone)
            assert [t.key for t in thresholds] == ["remind-1", "due", "escalate-1"], thresholds
            plans[spec.id][start] = Plan(period, due, thresholds)
    return plans


def generate(policy: CalendarPolicy, version_id: int, plans: dict[str, dict[date, Plan]], scale: int, *,
             sqlite: bool) -> tuple[Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    """Rows of obligations and of thresholds (ids assigned here, from 1)."""
    reminders, late = due_layout(scale)
    due_obligations = reminders + late
    keys = [spec.id for spec in policy.obligations]
    titles = {spec.id: spec.title for spec in policy.obligations}
    instant = sqlite_instant if sqlite else (lambda d: d)
    boolean = int if sqlite else bool
    created = instant(SETUP)

    def kind_of(i: int) -> date:
        # due obligations spread evenly over the ids; every 9th of them is past due, the others in the reminder window
        n = i * due_obligations // scale
        if i == 0 or n != (i - 1) * due_obligations // scale:
            return LATE_PERIOD if n % 9 == 0 else REMIND_PERIOD
        return FUTURE_PERIODS[i % len(FUTURE_PERIODS)]

    # each (obligation, period) is formatted once: the rows differ only in ids and copy numbers
    rows: dict[tuple[str, date], tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]]]] = {}
    for key, by_period in plans.items():
        for start, plan in by_period.items():
            fired = start == LATE_PERIOD  # remind-1 of a late obligation: the sweep reminded them in October
            head = (policy.id, version_id, key, titles[key], "performance")
            tail = (plan.period.start.isoformat(), plan.period.end.isoformat(), instant(plan.due.at),
                    plan.due.nominal.isoformat(), plan.due.shift, boolean(plan.due.provisional), "open",
                    boolean(False), created)
            thresholds_of = [("obligation", t.key, t.action, t.rung, instant(t.fire_at), boolean(t.provisional),
                              "fired" if fired and t.action == "remind" else "pending",
                              instant(t.fire_at) if fired and t.action == "remind" else None)
                             for t in plan.thresholds]
            rows[key, start] = (head, (plan.period.key,) + tail, thresholds_of)

    def obligations() -> Iterator[tuple[Any, ...]]:
        for i in range(scale):
            key = keys[i % len(keys)]
            head, (period_key, *tail), _ = rows[key, kind_of(i)]
            yield (i + 1, *head, f"{period_key}#{i // len(keys):06d}", *tail)

    def thresholds() -> Iterator[tuple[Any, ...]]:
        tid = 0
        for i in range(scale):
            for subject_type, *rest in rows[keys[i % len(keys)], kind_of(i)][2]:
                tid += 1
                yield (tid, subject_type, i + 1, *rest)

    return obligations(), thresholds()


async def seed(runtime: Runtime, url: str, kind: str, scale: int) -> tuple[int, int, float]:
    """Bulk-load the obligations and thresholds (in a child process); returns the counts and its peak RSS."""
    [(version_id, loaded)] = [(v, p) for v, p in runtime.registry.calendars() if p.id == POLICY]
    policy = loaded.policy
    assert isinstance(policy, CalendarPolicy)
    plans = period_plans(policy, runtime)
    obligations, thresholds = generate(policy, version_id, plans, scale, sqlite=kind == "sqlite")
    loads = [("obligation", OBLIGATION_COLUMNS, obligations), ("threshold", THRESHOLD_COLUMNS, thresholds)]
    await runtime.engine.dispose()  # no pooled connection (nor aiosqlite thread) crosses the fork
    if kind == "sqlite":
        peak = run_in_child(bulk_sqlite, url, loads)
    else:
        after = ["SELECT setval('obligation_id_seq', (SELECT max(id) FROM obligation))",
                 "SELECT setval('threshold_id_seq', (SELECT max(id) FROM threshold))",
                 "ANALYZE obligation", "ANALYZE threshold"]
        peak = run_in_child(copy_postgres, url, loads, after)
    async with runtime.sessions() as session:
        n_obl = (await session.execute(select(func.count()).select_from(ObligationRow))).scalar_one()
        n_thr = (await session.execute(select(func.count()).select_from(ThresholdRow))).scalar_one()
    return n_obl, n_thr, peak


async def claim_plan(runtime: Runtime, batch_size: int) -> list[str]:
    """The plan of claim_due's statement as the driver receives it: one claim is run (and rolled back) to
    capture it, then EXPLAINed (on PostgreSQL with ANALYZE, also rolled back)."""
    captured: dict[str, Any] = {}

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "statement" not in captured and "FROM threshold" in statement and "ORDER BY threshold.fire_at" in statement:
            captured.update(statement=statement, parameters=parameters)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", before)
    try:
        async with runtime.sessions() as session, session.begin():
            await claim_due(session, runtime, now=NOW, limit=batch_size)
            await session.rollback()
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", before)
    async with runtime.sessions() as session:
        conn = await session.connection()
        if runtime.sqlite:
            rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + captured["statement"],
                                               captured["parameters"])).all()
            return [str(r[-1]) for r in rows]
        rows = (await conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + captured["statement"],
                                           captured["parameters"])).all()
        await session.rollback()  # EXPLAIN ANALYZE of a FOR UPDATE claim locked rows: let them go
        return [str(r[0]) for r in rows]


async def range_count(runtime: Runtime) -> tuple[int, float, list[str]]:
    """The whole due range through the partial index: count(*) of pending thresholds at or before NOW."""
    query = (select(func.count()).select_from(ThresholdRow)
             .where(ThresholdRow.state == "pending", ThresholdRow.fire_at <= NOW))  # type: ignore[arg-type]
    async with runtime.sessions() as session:
        started = time.perf_counter()
        count = (await session.execute(query)).scalar_one()
        elapsed = time.perf_counter() - started
    sql = "SELECT count(*) FROM threshold WHERE state = 'pending' AND fire_at <= :now"
    now = sqlite_instant(NOW) if runtime.sqlite else NOW
    async with runtime.sessions() as session:
        if runtime.sqlite:
            plan = [str(r[-1]) for r in (await session.execute(text("EXPLAIN QUERY PLAN " + sql), {"now": now}))]
        else:
            plan = [str(r[0]) for r in (await session.execute(text("EXPLAIN (COSTS OFF) " + sql), {"now": now}))]
    return count, elapsed, plan


async def sweep_like_the_flow(runtime: Runtime, figures: Figures, *, batch_size: int) -> None:
    """flows/sweep.py's loop, run again while a run stops at its cap (as the every-minute schedule would)."""
    claim_times: list[float] = []
    while True:
        batches = 0
        for _ in range(FLOW_MAX_BATCHES):
            async with runtime.write() as session:
                started = time.perf_counter()
                due = await claim_due(session, runtime, now=NOW, limit=batch_size)
                claim_times.append(time.perf_counter() - started)
                if not due:
                    break
                counts = await fire_thresholds(session, runtime, due, now=NOW)
            batches += 1
            figures.fired += counts["fired"]
            figures.skipped += counts["skipped"]
            figures.lost += counts["lost"]
            if len(due) < batch_size:
                break
        if batches:
            figures.flow_runs += 1
        figures.batches += batches
        if batches < FLOW_MAX_BATCHES:
            break
    figures.claim_first_ms = claim_times[0] * 1000
    figures.claim_total_s = sum(claim_times)
    figures.claim_mean_ms = figures.claim_total_s / len(claim_times) * 1000


async def run_one(kind: str, scale: int, batch_size: int, profile: bool, memory: PeakMemory) -> Figures:
    figures = Figures(db=kind, scale=scale)
    with database(kind) as url, tempfile.TemporaryDirectory(prefix="duly-bench-data-") as tmp:
        runtime = await prepare(bench_settings(url, Path(tmp)), now=SETUP)
        try:
            clock = Stopwatch()
            figures.obligations, figures.thresholds, figures.seed_peak_mb = await seed(runtime, url, kind, scale)
            figures.seed_s = clock.seconds
            print(f"[{kind}] seeded {figures.obligations:,} obligations, {figures.thresholds:,} thresholds "
                  f"in {figures.seed_s:.1f} s", flush=True)

            figures.due_thresholds, count_s, count_plan = await range_count(runtime)
            figures.range_count_ms = count_s * 1000
            figures.plans["count of the due range"] = count_plan

            figures.plans[f"claim_due (as executed, LIMIT {batch_size})"] = await claim_plan(runtime, batch_size)
            profiler = cProfile.Profile() if profile else None
            memory.reset()
            figures.sweep_start_mb = memory.peak_mb()
            clock = Stopwatch()
            if profiler:
                profiler.enable()
            await sweep_like_the_flow(runtime, figures, batch_size=batch_size)
            if profiler:
                profiler.disable()
            figures.sweep_s = clock.seconds
            figures.sweep_peak_mb = memory.peak_mb()
            async with runtime.sessions() as session:
                figures.audit_events = (await session.execute(
                    select(func.count()).select_from(AuditEventRow))).scalar_one()
                figures.outbox_rows = (await session.execute(
                    select(func.count()).select_from(OutboxRow))).scalar_one()
                figures.pending_left = (await session.execute(
                    select(func.count()).select_from(ThresholdRow).where(
                        ThresholdRow.state == "pending", ThresholdRow.fire_at <= NOW))).scalar_one()  # type: ignore[arg-type]
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
                print(out.getvalue())
        finally:
            await runtime.close()
    return figures


def report(all_figures: list[Figures], memory: PeakMemory, batch_size: int) -> None:
    for f in all_figures:
        print(f"\n[{f.db}] query plans:")
        for name, lines in f.plans.items():
            print(f"  {name}:")
            for line in lines:
                print(f"    {line}")
        flagged = [line for lines in f.plans.values() for line in lines if "ix_threshold_pending" in line]
        print(f"  partial index ix_threshold_pending used: {'yes' if flagged else 'NO'}")
    headers = ["figure", *[f.db for f in all_figures]]

    def row(label: str, fmt: Any) -> list[str]:
        return [label, *[fmt(f) for f in all_figures]]

    rows = [
        row("open obligations seeded", lambda f: f"{f.obligations:,}"),
        row("thresholds seeded", lambda f: f"{f.thresholds:,}"),
        row("seed (bulk insert + indexes), s", lambda f: f"{f.seed_s:.1f}"),
        row("seed rows/s", lambda f: f"{(f.obligations + f.thresholds) / f.seed_s:,.0f}"),
        row("due thresholds (range count)", lambda f: f"{f.due_thresholds:,}"),
        row("count of the due range, ms", lambda f: f"{f.range_count_ms:.1f}"),
        row(f"sweep wall time (batches of {batch_size}), s", lambda f: f"{f.sweep_s:.1f}"),
        row("thresholds fired / skipped / lost", lambda f: f"{f.fired:,} / {f.skipped:,} / {f.lost:,}"),
        row("thresholds/s", lambda f: f"{(f.fired + f.skipped) / f.sweep_s:,.0f}" if f.sweep_s else "-"),
        row("ms per threshold", lambda f: f"{f.sweep_s / max(f.fired + f.skipped, 1) * 1000:.2f}"),
        row("batches (transactions)", lambda f: f"{f.batches:,}"),
        row(f"flow runs at the cap ({FLOW_MAX_BATCHES} × {batch_size})", lambda f: f"{f.flow_runs}"),
        row("claim_due (range scan + lock): first, ms", lambda f: f"{f.claim_first_ms:.2f}"),
        row("claim_due mean, ms", lambda f: f"{f.claim_mean_ms:.2f}"),
        row("claim_due share of sweep", lambda f: f"{f.claim_total_s / f.sweep_s:.1%}" if f.sweep_s else "-"),
        row("audit events / outbox rows written", lambda f: f"{f.audit_events:,} / {f.outbox_rows:,}"),
        row("due thresholds left pending", lambda f: f"{f.pending_left:,}"),
        row("peak memory, seed (its own process), MB", lambda f: f"{f.seed_peak_mb:,.0f}"),
        row("memory at the sweep's start, MB", lambda f: f"{f.sweep_start_mb:,.0f}"),
        row("peak memory, sweep, MB", lambda f: f"{f.sweep_peak_mb:,.0f}"),
    ]
    print_table(f"sweep over {all_figures[0].scale:,} open obligations, 5 % due "
                f"(memory: {memory.method} of this process; PostgreSQL's own memory not included)",
                headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser, scale=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50, help="the flow's default: 50")
    args = parser.parse_args()
    memory = PeakMemory()
    reminders, late = due_layout(args.scale)
    runs = math.ceil((reminders + 2 * late) / (FLOW_MAX_BATCHES * args.batch_size))
    print(f"scale {args.scale:,}: {reminders:,} reminders + {late:,} late obligations × 2 = "
          f"{reminders + 2 * late:,} due thresholds; now = {NOW.isoformat()}; expect ~{runs} flow runs; "
          f"{load_note()}", flush=True)
    figures = [asyncio.run(run_one(kind, args.scale, args.batch_size, args.profile, memory))
               for kind in db_kinds(args.db)]
    report(figures, memory, args.batch_size)
    print(load_note())


if __name__ == "__main__":
    main()
