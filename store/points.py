"""Points (积分) from reporting outcomes: each calendar policy with a `points:` rule scores each of its
owner departments per half-year (policies/points.py holds the rule; this reads the outcomes from rows).

An obligation's outcome: handed in and accepted → `on_time`, or `late` when it was late; still open or
late once its due time has passed → `missing` (it becomes `late` if handed in later); waived, under review
or not yet due → not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pendulum
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.models import CalendarPolicy
from policies.points import Outcome, PointsTally, half_year_points
from policies.recurrence import Period, period_from_key
from store.errors import InvalidInputError
from store.runtime import Runtime
from store.tables import ObligationRow


@dataclass(frozen=True)
class PolicyPoints:
    policy_id: str
    policy_title: str
    tally: PointsTally


def half_year(key: str) -> Period:
    try:
        return period_from_key(key, "half-yearly")
    except ValueError:
        raise InvalidInputError(f"not a half-year: {key!r}", {"half": "like 2026-H2"}) from None


def outcome_of(row: ObligationRow, *, tz: str, now: datetime) -> Outcome | None:
    """The row's result for points (module docstring), or None when it does not count (yet)."""
    if row.state == "submitted":
        result = "late" if row.late else "on_time"
    elif row.state in ("open", "late") and row.due_at <= now:
        result = "missing"
    else:
        return None
    return Outcome(department=row.owner_department, obligation=row.obligation_key, period=row.period_key,
                   due_on=pendulum.instance(row.due_at).in_timezone(tz).date(), result=result)


async def points(session: AsyncSession, runtime: Runtime, *, half: Period, now: datetime,
                 departments: set[str] | None = None) -> list[PolicyPoints]:
    """Each scored policy's tally per owner department (only `departments` when given) for the half-year."""
    found: list[PolicyPoints] = []
    for _, loaded in runtime.registry.calendars():
        policy = loaded.policy
        assert isinstance(policy, CalendarPolicy)
        if policy.points is None:
            continue
        owners = sorted({code for spec in policy.obligations for code in policy.rules_for(spec).owner.codes})
        if departments is not None:
            owners = [code for code in owners if code in departments]
        if not owners:
            continue
        start = pendulum.datetime(half.start.year, half.start.month, half.start.day, tz=policy.timezone)
        end = pendulum.datetime(half.end.year, half.end.month, half.end.day, tz=policy.timezone).add(days=1)
        rows = (await session.execute(select(ObligationRow).where(
            ObligationRow.policy_id == policy.id, ObligationRow.owner_department.in_(owners),  # type: ignore[attr-defined]
            ObligationRow.due_at >= start, ObligationRow.due_at < end))).scalars()
        outcomes = [o for o in (outcome_of(r, tz=policy.timezone, now=now) for r in rows) if o is not None]
        found.extend(PolicyPoints(policy.id, policy.title,
                                  half_year_points(policy.points, outcomes, department=code, half=half))
                     for code in owners)
    return found
