"""Recompute the due dates of open obligations after a policy version or a holiday year changed.

Which obligations: those still open or late (a report handed in, under review or waived keeps the date it
had: that date is history). Each is recomputed with its policy's current version and the current calendar:
by its period, or from its event for an event-relative obligation. Obligations of one policy share a due
date per (obligation, period) and per event, so the check reads one row per group and only touches the
groups whose date, provisional flag or version changed.

A moved obligation:
- takes the new date, shift, provisional flag and version; `obligation.rescheduled` in the audit trail says
  from what to what, and why (the policy version, the calendar, or both);
- gets its thresholds planned again: its pending ones are cancelled, and the new plan's are added under a
  new round suffix (`due@2`), except a threshold whose key already fired for an instant that has passed
  (a reminder sent yesterday is not sent again because the deadline moved by a day into the past; one whose
  new instant is still ahead fires again, for the new date);
- if it was late and its new due date is still ahead, it is open again (no longer late).
An obligation whose period or obligation the new version no longer has is left as it is and counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.due import DueDate
from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.events import due_after_event
from policies.loader import LoadedPolicy
from policies.models import CalendarPolicy
from policies.recurrence import periods_between
from store.audit import append_audit
from store.event_obligations import add_thresholds
from store.runtime import Runtime
from store.tables import ObligationRow, ThresholdRow

OPEN_STATES = ("open", "late")


@dataclass(frozen=True)
class RescheduleResult:
    checked: int = 0
    """Groups of open obligations compared (one per obligation and period, or per event)."""
    moved: int = 0
    """Obligations whose due date, provisional flag or policy version changed."""
    orphaned: int = 0
    """Open obligations the current version no longer has (left as they are)."""


async def reschedule_policy(session: AsyncSession, runtime: Runtime, *, version_id: int, loaded: LoadedPolicy,
                            now: datetime) -> RescheduleResult:
    """Bring the open obligations of one calendar policy in line with `version_id` and the calendar."""
    policy = loaded.policy
    assert isinstance(policy, CalendarPolicy)
    groups = (await session.execute(
        select(ObligationRow.obligation_key, ObligationRow.period_key, ObligationRow.period_start,
               ObligationRow.period_end, ObligationRow.event_at, ObligationRow.due_at, ObligationRow.provisional,
               ObligationRow.policy_version_id, func.count())
        .where(ObligationRow.policy_id == policy.id, ObligationRow.state.in_(OPEN_STATES))  # type: ignore[attr-defined]
        .group_by(ObligationRow.obligation_key, ObligationRow.period_key, ObligationRow.period_start,
                  ObligationRow.period_end, ObligationRow.event_at, ObligationRow.due_at, ObligationRow.provisional,
                  ObligationRow.policy_version_id))).all()
    moved = orphaned = 0
    for key, period_key, start, end, event_at, due_at, provisional, old_version, count in groups:
        due = _due_now(policy, runtime, key, period_key, date.fromisoformat(start), date.fromisoformat(end),
                       event_at)
        if due is None or due.at is None:
            orphaned += count
            continue
        if due.at == due_at and due.provisional == provisional and old_version == version_id:
            continue
        rows = (await session.execute(select(ObligationRow).where(
            ObligationRow.policy_id == policy.id, ObligationRow.obligation_key == key,
            ObligationRow.period_key == period_key, ObligationRow.state.in_(OPEN_STATES),  # type: ignore[attr-defined]
            ObligationRow.due_at == due_at, ObligationRow.policy_version_id == old_version)
            .with_for_update())).scalars().all()
        for row in rows:
            await _move(session, runtime, policy, row, due, version_id=version_id, now=now)
        moved += len(rows)
    return RescheduleResult(checked=len(groups), moved=moved, orphaned=orphaned)


def _due_now(policy: CalendarPolicy, runtime: Runtime, key: str, period_key: str, start: date, end: date,
             event_at: datetime | None) -> DueDate | None:
    """The obligation's due date under the current version and calendar (None: the version lacks it)."""
    if key not in {spec.id for spec in policy.obligations}:
        return None
    rules = policy.rules_for(key)
    if event_at is not None:
        return due_after_event(event_at, rules, runtime.calendar, policy.timezone) if rules.trigger else None
    if rules.recurrence is None:
        return None
    period = next((p for p in periods_between(start, end, rules.recurrence) if p.key == period_key), None)
    return policy.due_for(key, period, runtime.calendar) if period is not None else None


async def _move(session: AsyncSession, runtime: Runtime, policy: CalendarPolicy, row: ObligationRow, due: DueDate,
                *, version_id: int, now: datetime) -> None:
    assert due.at is not None
    why = "policy" if row.policy_version_id != version_id else "calendar"  # a new version may also meet a
    # changed calendar; the dates are recomputed with both, and the version is the reason given
    before = {"due_at": row.due_at.isoformat(), "provisional": row.provisional, "version": row.policy_version_id}
    row.due_at, row.nominal_date, row.shift = due.at, due.nominal.isoformat(), due.shift
    row.provisional, row.policy_version_id = due.provisional, version_id
    reopened = row.state == "late" and due.at > now
    if reopened:
        row.state, row.late = "open", False
    session.add(row)
    rounds = await _replan(session, runtime, policy, row, due, now=now)
    await append_audit(session, at=now, actor_id=None, action="obligation.rescheduled", subject_type="obligation",
                       subject_id=row.id or 0,
                       data={"from": before, "to": {"due_at": due.at.isoformat(), "provisional": due.provisional,
                                                    "version": version_id},
                             "because": why, "reopened": reopened, "thresholds_round": rounds})


async def _replan(session: AsyncSession, runtime: Runtime, policy: CalendarPolicy, row: ObligationRow,
                  due: DueDate, *, now: datetime) -> int:
    """Cancel the pending thresholds and plan the new ones (module docstring); returns the round number."""
    assert due.at is not None
    existing = (await session.execute(select(ThresholdRow.key, ThresholdRow.state, ThresholdRow.fire_at).where(
        ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == row.id))).all()
    fired: dict[str, list[datetime]] = defaultdict(list)
    rounds = 1
    for key, state, fire_at in existing:
        base, _, round_ = key.partition("@")
        rounds = max(rounds, int(round_) if round_.isdigit() else 1)
        if state == "fired":
            fired[base].append(fire_at)
    await session.execute(update(ThresholdRow).where(
        ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == row.id,
        ThresholdRow.state == "pending").values(state="cancelled", fired_at=now))
    rules = policy.rules_for(row.obligation_key)
    plans = obligation_thresholds(Deadline(at=due.at, provisional=due.provisional), rules.remind, rules.escalate,
                                  runtime.calendar, tz=policy.timezone)
    done = frozenset(plan.key for plan in plans if plan.key in fired and plan.fire_at <= now)
    add_thresholds(session, row, Deadline(at=due.at, provisional=due.provisional), rules, runtime,
                   tz=policy.timezone, suffix=f"@{rounds + 1}", skip_keys=done)
    return rounds + 1
