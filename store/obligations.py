"""Materialise reporting obligations: one row per (policy, obligation, owner, period), with thresholds.

Each period-based obligation is expanded over the periods of its own recurrence (daily … yearly, every N
weeks/months) and for each of its owner departments; event-relative obligations (`trigger:`) are not
materialised by period. Idempotent: rows that exist are left alone, so running it twice (or concurrently,
thanks to the unique constraint) creates each obligation once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pendulum
from sqlalchemy import insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.due import Period, periods_between
from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.loader import LoadedPolicy
from policies.models import CalendarPolicy
from policies.recurrence import Recurrence
from store.audit import append_audit
from store.runtime import Runtime
from store.tables import DepartmentRow, ObligationRow, ThresholdRow


@dataclass(frozen=True)
class MaterialiseResult:
    created: int
    existing: int
    skipped: int  # periods whose deadline the policy skips (non_working_day: skip)
    unknown_owners: tuple[str, ...] = ()  # owner departments the organisation does not have: no rows for them


def _periods_for(recurrence: Recurrence, *, periods: Sequence[Period] | None, window: tuple[date, date] | None
                 ) -> list[Period]:
    """The obligation's own periods: those overlapping the given periods, or the window."""
    found: dict[str, Period] = {}
    spans = [(p.start, p.end) for p in periods] if periods is not None else [window] if window else []
    for first, last in spans:
        for period in periods_between(first, last, recurrence):
            found.setdefault(period.key, period)
    return list(found.values())


def _utc(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, UTC)


class _Inserts:
    """New obligations and their thresholds, written in chunks with executemany (not one ORM object per row:
    500 departments × 50 reports is some 300,000 obligations and a million thresholds a year). The
    obligations' ids are read back by their unique key; their thresholds follow. (Measured on PostgreSQL
    with psycopg: a multi-row INSERT … RETURNING costs three times executemany plus the read-back.)"""

    CHUNK = 2_000

    def __init__(self, session: AsyncSession, policy_id: str) -> None:
        self.session = session
        self.policy_id = policy_id
        self.pending: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    async def add(self, obligation: dict[str, Any], thresholds: list[dict[str, Any]]) -> None:
        self.pending.append((obligation, thresholds))
        if len(self.pending) >= self.CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        table = ObligationRow.__table__  # type: ignore[attr-defined]
        await self.session.execute(insert(table), [obligation for obligation, _ in self.pending])
        keys = {(o["obligation_key"], o["owner_department"], o["period_key"]) for o, _ in self.pending}
        found = await self.session.execute(
            select(table.c.id, table.c.obligation_key, table.c.owner_department, table.c.period_key).where(
                table.c.policy_id == self.policy_id, table.c.obligation_key.in_({k for k, _, _ in keys}),
                table.c.owner_department.in_({o for _, o, _ in keys}), table.c.period_key.in_({p for _, _, p in keys})))
        ids = {(key, owner, period): id_ for id_, key, owner, period in found}
        rows = [{**threshold, "subject_id": ids[o["obligation_key"], o["owner_department"], o["period_key"]]}
                for o, thresholds in self.pending for threshold in thresholds]
        if rows:
            await self.session.execute(insert(ThresholdRow.__table__), rows)  # type: ignore[attr-defined]
        self.pending.clear()


async def materialise_policy(session: AsyncSession, runtime: Runtime, *, version_id: int, loaded: LoadedPolicy,
                             now: datetime, periods: Sequence[Period] | None = None,
                             first: date | None = None, last: date | None = None,
                             not_due_before: datetime | None = None) -> MaterialiseResult:
    """Create the obligations of one calendar policy (due on or after `not_due_before`) for each obligation's
    periods that overlap `first` … `last` or are due within it, or that overlap one of `periods`.

    Nobody is told here (unlike an event's obligation, which sends `obligation_opened`): calendar obligations
    are created months ahead, and their reminders and the daily digest tell people when it matters."""
    policy = loaded.policy
    assert isinstance(policy, CalendarPolicy)
    if (periods is None) == (first is None or last is None):
        raise ValueError("give either periods or first and last")
    window = (first, last) if first is not None and last is not None else None
    planned: dict[tuple[str, str], Period] = {}
    for spec in policy.obligations:
        rules = policy.rules_for(spec)
        if rules.recurrence is not None:
            planned.update(((spec.id, p.key), p) for p in _periods_for(rules.recurrence, periods=periods,
                                                                        window=window))
    today = pendulum.instance(now).in_timezone(policy.timezone).date()
    if window is not None and max(window[0], today) <= window[1]:
        # also a period that ended long ago but falls due from today to the window's end (a yearly compilation
        # due "in the first quarter of next year" when the system starts in February)
        planned.update(((o.obligation.id, o.period.key), o.period)
                       for o in policy.occurrences(runtime.calendar, max(window[0], today), window[1]))
    keys = sorted({p.key for p in planned.values()})
    existing = {tuple(r) for r in (await session.execute(
        select(ObligationRow.obligation_key, ObligationRow.owner_department, ObligationRow.period_key).where(
            ObligationRow.policy_id == policy.id, ObligationRow.period_key.in_(keys))))}  # type: ignore[attr-defined]
    departments = set((await session.execute(select(DepartmentRow.code))).scalars())
    batch = _Inserts(session, policy.id)
    created_at = _utc(now)
    created = skipped = already = 0
    created_periods: set[str] = set()
    unknown: set[str] = set()
    for (obligation_id, _), period in planned.items():
        rules = policy.rules_for(obligation_id)
        owners = [o for o in rules.owner.codes if (obligation_id, o, period.key) not in existing]
        already += len(rules.owner.codes) - len(owners)
        unknown.update(o for o in owners if o not in departments)
        owners = [o for o in owners if o in departments]
        if not owners:
            continue
        due = policy.due_for(obligation_id, period, runtime.calendar)
        if due.at is None:
            skipped += 1
            continue
        if not_due_before is not None and due.at < not_due_before:
            continue
        spec = policy.obligation(obligation_id)
        # the same for every owner: computed once per obligation and period (instants as stdlib UTC datetimes,
        # which the UTC column type converts much faster than pendulum's)
        thresholds = [dict(subject_type="obligation", key=plan.key, action=plan.action, rung=plan.rung,
                           fire_at=_utc(plan.fire_at), provisional=plan.provisional, state="pending")
                      for plan in obligation_thresholds(Deadline(at=due.at, provisional=due.provisional),
                                                        rules.remind, rules.escalate, runtime.calendar,
                                                        tz=policy.timezone)]
        due_at = _utc(due.at)
        for owner in owners:
            await batch.add(dict(policy_id=policy.id, policy_version_id=version_id, obligation_key=obligation_id,
                                 title=spec.title, owner_department=owner, period_key=period.key,
                                 period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                                 due_at=due_at, nominal_date=due.nominal.isoformat(), shift=due.shift,
                                 provisional=due.provisional, state="open", late=False, created_at=created_at),
                            thresholds)
        created += len(owners)
        created_periods.add(period.key)
    await batch.flush()
    if created:
        await append_audit(session, at=now, actor_id=None, action="obligations.materialised",
                           subject_type="policy", subject_id=policy.id,
                           data={"version": version_id, "created": created, "periods": sorted(created_periods)})
    return MaterialiseResult(created=created, existing=already, skipped=skipped,
                             unknown_owners=tuple(sorted(unknown)))
