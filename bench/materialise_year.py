"""Materialising a year of reporting calendars: D departments × 50 obligations (prints figures; not pass/fail).

A generated calendar policy (`bench-year-calendar`, written to a temporary file and loaded with the shipped
hospital profile, as `duly run` loads policy files) lists 50 obligations owed by D generated departments
(default 500: `bench-d001` …, added to the demo organisation), with the recurrences and due rules of the
shipped library:
- 30 monthly: 13 × `day 15 of next month` (the municipal monthly reports), 7 × `day 5 of next month` moved to
  the next working day, 5 × `day 10 of next month`, 5 × `last day of this month` (it-operations-calendar);
- 8 quarterly: 5 × `day 10 of the first month of next quarter`, 3 × `{with: M-01}` (D-014's coupling);
- 4 weekly: `friday of this week` at 17:00, moved before a holiday (the weekly plans of P12);
- 2 half-yearly: `day 15 of next month`;
- 6 yearly: 3 × `January 20 of next year`, `March 20 of next year`, `December 31 of this year`,
  `end of the first quarter of next year`;
reminded 3 working days before (weekly: 1), escalated at the due instant to the leader in charge, and for
the 13 monthly reports a second rung 2 working days later to the department head.

The run is the materialise flow's (flows/materialise.py with `since`): each current calendar policy in its
own transaction, store.obligations.materialise_policy over 2026-01-01 … 2026-12-31 at
`now` = 2026-01-01 00:00 (Asia/Shanghai), `not_due_before` None. It runs twice; the second run must
create nothing.

Usage: python bench/materialise_year.py [--departments 500] [--db sqlite|postgresql|both] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pendulum  # noqa: E402
from _seed import PeakMemory, Stopwatch, bench_settings, database, db_kinds, load_note, print_table  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from duly.bootstrap import prepare  # noqa: E402
from store.obligations import materialise_policy  # noqa: E402
from store.reschedule import reschedule_policy  # noqa: E402
from store.runtime import Runtime  # noqa: E402
from store.tables import AuditEventRow, DepartmentRow, ObligationRow, ThresholdRow  # noqa: E402

TZ = "Asia/Shanghai"
NOW = pendulum.datetime(2026, 1, 1, tz=TZ)
FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
POLICY_ID = "bench-year-calendar"
MIX = "30 monthly, 8 quarterly, 4 weekly, 2 half-yearly, 6 yearly"


def department_codes(n: int) -> list[str]:
    return [f"bench-d{i:03d}" for i in range(1, n + 1)]


def policy_yaml(departments: list[str]) -> str:
    """The generated calendar policy (see the module docstring)."""
    lines = [
        "kind: calendar",
        f"id: {POLICY_ID}",
        "title: 基准测试年度报表日历",
        f"timezone: {TZ}",
        "defaults:",
        "  recurrence: monthly",
        "  due: day 15 of next month",
        '  at: "23:59:59"',
        "  inclusive: true",
        "  non_working_day: keep",
        f"  owner: {{departments: [{', '.join(departments)}], role: statistician}}",
        "  remind: [3 working days]",
        "  escalate: [{notify: {leader_in_charge_of: owner}}]",
        "obligations:",
    ]
    n = 0

    def add(prefix: str, count: int, extra: str) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            lines.append(f"  - {{id: {prefix}-{n:02d}, title: 报表{n:02d}{', ' + extra if extra else ''}}}")

    add("M", 13, "escalate: [{notify: {leader_in_charge_of: owner}}, "
                 "{after: 2 working days, notify: {head_of: owner}}]")
    add("M", 7, "due: day 5 of next month, non_working_day: next_working_day")
    add("M", 5, "due: day 10 of next month")
    add("M", 5, "due: last day of this month")
    add("Q", 5, "recurrence: quarterly, due: day 10 of the first month of next quarter")
    add("Q", 3, "recurrence: quarterly, due: {with: M-01}")
    add("W", 4, 'recurrence: weekly, due: friday of this week, at: "17:00", non_working_day: before_holiday, '
                "remind: [1 working day]")
    add("H", 2, "recurrence: half-yearly")
    add("Y", 3, "recurrence: yearly, due: January 20 of next year")
    add("Y", 1, "recurrence: yearly, due: March 20 of next year")
    add("Y", 1, "recurrence: yearly, due: December 31 of this year")
    add("Y", 1, "recurrence: yearly, due: end of the first quarter of next year")
    assert n == 50
    return "\n".join(lines) + "\n"


@dataclass
class Run:
    seconds: float = 0.0
    created: int = 0
    existing: int = 0
    skipped: int = 0
    peak_mb: float = 0.0
    reschedule_seconds: float = 0.0
    """Of `seconds`: comparing the open obligations with the current version and calendar."""
    moved: int = 0


@dataclass
class Figures:
    db: str
    departments: int
    first: Run
    again: Run
    obligations: int = 0
    thresholds: int = 0
    audit_events: int = 0


async def materialise_like_the_flow(runtime: Runtime) -> Run:
    """flows/materialise.py's loop with `since` = FIRST (it asks for not_due_before None): the check of open
    obligations against the current version and calendar (store.reschedule), then the expansion."""
    run = Run()
    clock = Stopwatch()
    for version_id, loaded in runtime.registry.calendars():
        check = Stopwatch()
        async with runtime.write() as session:
            moved = await reschedule_policy(session, runtime, version_id=version_id, loaded=loaded, now=NOW)
        run.reschedule_seconds += check.seconds
        run.moved += moved.moved
        async with runtime.write() as session:
            result = await materialise_policy(session, runtime, version_id=version_id, loaded=loaded,
                                              first=FIRST, last=LAST, now=NOW, not_due_before=None)
        if result.unknown_owners:
            raise SystemExit(f"{loaded.id}: unknown owners {result.unknown_owners[:5]}")
        run.created += result.created
        run.existing += result.existing
        run.skipped += result.skipped
    run.seconds = clock.seconds
    return run


async def run_one(kind: str, departments: int, profile: bool, memory: PeakMemory) -> Figures:
    codes = department_codes(departments)
    with database(kind) as url, tempfile.TemporaryDirectory(prefix="duly-bench-data-") as tmp:
        policy_file = Path(tmp) / f"{POLICY_ID}.yaml"
        policy_file.write_text(policy_yaml(codes), encoding="utf-8")
        runtime = await prepare(bench_settings(url, Path(tmp) / "data", extra_policies=[policy_file]), now=NOW)
        try:
            async with runtime.write() as session:
                session.add_all([DepartmentRow(code=c, name=f"基准科室{c[-3:]}", head_id="feng.xue",
                                               leader_in_charge_id="chen.jing") for c in codes])
            profiler = cProfile.Profile() if profile else None
            memory.reset()
            if profiler:
                profiler.enable()
            first = await materialise_like_the_flow(runtime)
            if profiler:
                profiler.disable()
            first.peak_mb = memory.peak_mb()
            print(f"[{kind}] first run: {first.created:,} obligations in {first.seconds:.1f} s", flush=True)
            memory.reset()
            again = await materialise_like_the_flow(runtime)
            again.peak_mb = memory.peak_mb()
            print(f"[{kind}] re-run: {again.created:,} created, {again.existing:,} existing in "
                  f"{again.seconds:.1f} s", flush=True)
            figures = Figures(db=kind, departments=departments, first=first, again=again)
            async with runtime.sessions() as session:
                figures.obligations = (await session.execute(
                    select(func.count()).select_from(ObligationRow))).scalar_one()
                figures.thresholds = (await session.execute(
                    select(func.count()).select_from(ThresholdRow))).scalar_one()
                figures.audit_events = (await session.execute(select(func.count()).select_from(
                    AuditEventRow).where(AuditEventRow.action == "obligations.materialised"))).scalar_one()
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
                print(out.getvalue())
        finally:
            await runtime.close()
    return figures


def report(all_figures: list[Figures], memory: PeakMemory) -> None:
    headers = ["figure", *[f.db for f in all_figures]]

    def row(label: str, fmt) -> list[str]:  # type: ignore[no-untyped-def]
        return [label, *[fmt(f) for f in all_figures]]

    rows = [
        row("first run, s", lambda f: f"{f.first.seconds:.1f}"),
        row("first run: obligations created", lambda f: f"{f.first.created:,}"),
        row("first run: obligations/s", lambda f: f"{f.first.created / f.first.seconds:,.0f}"),
        row("thresholds in the database", lambda f: f"{f.thresholds:,}"),
        row("first run: peak memory, MB", lambda f: f"{f.first.peak_mb:,.0f}"),
        row("re-run, s", lambda f: f"{f.again.seconds:.1f}"),
        row("re-run: of which the reschedule check, s", lambda f: f"{f.again.reschedule_seconds:.1f}"),
        row("re-run: obligations moved", lambda f: f"{f.again.moved:,}"),
        row("re-run: created / already there", lambda f: f"{f.again.created:,} / {f.again.existing:,}"),
        row("re-run: peak memory, MB", lambda f: f"{f.again.peak_mb:,.0f}"),
        row("obligations in the database", lambda f: f"{f.obligations:,}"),
        row("periods skipped (non_working_day: skip)", lambda f: f"{f.first.skipped:,}"),
        row("audit events obligations.materialised", lambda f: f"{f.audit_events:,}"),
    ]
    print_table(f"materialising 2026 for {all_figures[0].departments:,} departments × 50 obligations ({MIX}) "
                f"plus the hospital profile's calendar (memory: {memory.method} of this process)", headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--departments", type=int, default=500, help="default 500")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile the first run, print the top 30")
    args = parser.parse_args()
    memory = PeakMemory()
    print(f"{args.departments} departments × 50 obligations ({MIX}); {load_note()}", flush=True)
    figures = [asyncio.run(run_one(kind, args.departments, args.profile, memory)) for kind in db_kinds(args.db)]
    bad = [f.db for f in figures if f.again.created]
    report(figures, memory)
    print(load_note())
    if bad:
        raise SystemExit(f"the re-run created obligations on {', '.join(bad)}: materialising is not idempotent")


if __name__ == "__main__":
    main()
