"""Materialise reporting obligations: one row per (policy, obligation, owner, period), with thresholds.

Each period-based obligation is expanded over the periods of its own recurrence (daily … yearly, every N
weeks/months) and for each of its owner departments; event-relative obligations (`trigger:`) are not
materialised by period. Idempotent: rows that exist are left alone, so running it twice (or concurrently,
thanks to the unique constraint) creates each obligation once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pendulum
from sqlalchemy import select
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


async def materialise_policy(session: AsyncSession, runtime: Runtime, *, version_id: int, loaded: LoadedPolicy,
                             now: datetime, periods: Sequence[Period] | None = None,
                             first: date | None = None, last: date | None = None,
                             not_due_before: datetime | None = None) -> MaterialiseResult:
    """Create the obligations of one calendar policy (due on or after `not_due_before`) for each obligation's
    periods that overlap `first` … `last` or are due within it, or that overlap one of `periods`."""
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
    existing = {(r.obligation_key, r.owner_department, r.period_key) for r in (await session.execute(
        select(ObligationRow).where(ObligationRow.policy_id == policy.id,
                                    ObligationRow.period_key.in_(keys)))).scalars()}  # type: ignore[attr-defined]
    departments = set((await session.execute(select(DepartmentRow.code))).scalars())
    created: list[tuple[ObligationRow, Deadline, str]] = []
    skipped = already = 0
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
        for owner in owners:
            row = ObligationRow(policy_id=policy.id, policy_version_id=version_id, obligation_key=obligation_id,
                                title=spec.title, owner_department=owner, period_key=period.key,
                                period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                                due_at=due.at, nominal_date=due.nominal.isoformat(), shift=due.shift,
                                provisional=due.provisional, created_at=now)
            session.add(row)
            created.append((row, Deadline(at=due.at, provisional=due.provisional), obligation_id))
    await session.flush()  # one round trip for every row's id, which the thresholds refer to
    for row, deadline, obligation_id in created:
        rules = policy.rules_for(obligation_id)
        for plan in obligation_thresholds(deadline, rules.remind, rules.escalate, runtime.calendar,
                                          tz=policy.timezone):
            session.add(ThresholdRow(subject_type="obligation", subject_id=row.id or 0, key=plan.key,
                                     action=plan.action, rung=plan.rung, fire_at=plan.fire_at,
                                     provisional=plan.provisional))
    if created:
        await append_audit(session, at=now, actor_id=None, action="obligations.materialised",
                           subject_type="policy", subject_id=policy.id,
                           data={"version": version_id, "created": len(created),
                                 "periods": sorted({row.period_key for row, _, _ in created})})
    return MaterialiseResult(created=len(created), existing=already, skipped=skipped,
                             unknown_owners=tuple(sorted(unknown)))
