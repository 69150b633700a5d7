"""Materialise reporting obligations: one row per (policy, obligation, owner, period), with thresholds.

Idempotent: rows that exist are left alone, so running it twice (or concurrently, thanks to the unique
constraint) creates each obligation once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.due import Period, due_for_period
from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.loader import LoadedPolicy
from policies.models import CalendarPolicy
from store.audit import append_audit
from store.runtime import Runtime
from store.tables import ObligationRow, ThresholdRow


@dataclass(frozen=True)
class MaterialiseResult:
    created: int
    existing: int
    skipped: int  # periods whose deadline the policy skips (non_working_day: skip)


async def materialise_policy(session: AsyncSession, runtime: Runtime, *, version_id: int, loaded: LoadedPolicy,
                             periods: list[Period], now: datetime, not_due_before: datetime | None = None
                             ) -> MaterialiseResult:
    """Create the obligations of one calendar policy for `periods` (due on or after `not_due_before`)."""
    policy = loaded.policy
    assert isinstance(policy, CalendarPolicy)
    keys = [p.key for p in periods]
    existing = {(r.obligation_key, r.owner_department, r.period_key) for r in (await session.execute(
        select(ObligationRow).where(ObligationRow.policy_id == policy.id,
                                    ObligationRow.period_key.in_(keys)))).scalars()}  # type: ignore[attr-defined]
    created = skipped = already = 0
    for spec in policy.obligations:
        rules = policy.rules_for(spec)
        for period in periods:
            key = (spec.id, rules.owner.department, period.key)
            if key in existing:
                already += 1
                continue
            due = due_for_period(period, rules.due, runtime.calendar, at_time=rules.at, inclusive=rules.inclusive,
                                 non_working_day=rules.non_working_day, tz=policy.timezone)
            if due.at is None:
                skipped += 1
                continue
            if not_due_before is not None and due.at < not_due_before:
                continue
            row = ObligationRow(policy_id=policy.id, policy_version_id=version_id, obligation_key=spec.id,
                                title=spec.title, owner_department=rules.owner.department, period_key=period.key,
                                period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                                due_at=due.at, nominal_date=due.nominal.isoformat(), shift=due.shift,
                                provisional=due.provisional, created_at=now)
            session.add(row)
            await session.flush()
            deadline = Deadline(at=due.at, provisional=due.provisional)
            for plan in obligation_thresholds(deadline, rules.remind, rules.escalate, runtime.calendar,
                                              tz=policy.timezone):
                session.add(ThresholdRow(subject_type="obligation", subject_id=row.id or 0, key=plan.key,
                                         action=plan.action, rung=plan.rung, fire_at=plan.fire_at,
                                         provisional=plan.provisional))
            created += 1
    if created:
        await append_audit(session, at=now, actor_id=None, action="obligations.materialised",
                           subject_type="policy", subject_id=policy.id,
                           data={"version": version_id, "periods": keys, "created": created})
    return MaterialiseResult(created=created, existing=already, skipped=skipped)
