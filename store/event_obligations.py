"""Obligations that arise when something happens (`trigger:` in a calendar policy): an accident reported,
a departure confirmed, a case created. Someone reports the event; each current calendar policy's obligation
with that trigger opens for the department concerned, due as policies/events.py counts from the event.

The period of such an obligation is the event: `period_key` is "ev:" and a digest of the reporter's
reference (case number, transfer id), so the unique (policy, obligation, owner, period) key makes reporting
the same event twice open nothing new; `event_ref` keeps the reference itself, `event_at` the instant.
The people responsible for an obligation that opens are told at once (`obligation_opened`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pendulum
from sqlalchemy import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.durations import Deadline
from policies.escalation import obligation_thresholds
from policies.events import due_after_event
from policies.models import CalendarPolicy
from policies.models.obligation import ObligationRules
from store.audit import append_audit
from store.digests import responsible
from store.errors import ForbiddenError, InvalidInputError, NotFoundError
from store.notices import local_iso, obligation_context
from store.obligation_access import SUBMITS_FOR_ANY
from store.outbox import queue_message
from store.runtime import Runtime
from store.tables import DepartmentRow, ObligationRow, PersonRow, ThresholdRow

FUTURE_TOLERANCE = pendulum.duration(minutes=5)
"""An event reported as happening later than this after `now` is refused (a mistyped date, not a clock skew)."""


@dataclass(frozen=True)
class Triggered:
    """One obligation a kind of event opens: the policy version, the obligation and its rules."""

    version_id: int
    policy: CalendarPolicy
    obligation_id: str
    rules: ObligationRules


@dataclass(frozen=True)
class EventReport:
    event: str
    reference: str
    department: str
    occurred_at: datetime
    opened: list[ObligationRow]
    existing: list[ObligationRow]


def period_key_of(reference: str) -> str:
    return "ev:" + hashlib.sha256(reference.encode()).hexdigest()[:16]


def triggered_by(runtime: Runtime, event: str | None = None) -> list[Triggered]:
    """The current policies' obligations opened by `event` (by any event when None), policy by policy."""
    found = []
    for version_id, loaded in runtime.registry.calendars():
        policy = loaded.policy
        assert isinstance(policy, CalendarPolicy)
        for spec in policy.obligations:
            rules = policy.rules_for(spec)
            if rules.trigger is not None and (event is None or rules.trigger == event):
                found.append(Triggered(version_id, policy, spec.id, rules))
    return sorted(found, key=lambda t: (t.policy.id, t.obligation_id))


async def report_event(session: AsyncSession, runtime: Runtime, *, event: str, reference: str,
                       occurred_at: datetime, reporter: PersonRow, now: datetime,
                       department: str | None = None, policy_id: str | None = None) -> EventReport:
    """Open the obligations `event` triggers for `department` (default: the one owner the obligations have,
    else the reporter's own department). Reporting the same reference again opens nothing new."""
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise InvalidInputError("occurred_at needs a time zone", {"occurred_at": "e.g. 2026-06-10T16:00:00+08:00"})
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInputError("the event is in the future",
                                {"occurred_at": f"{occurred_at.isoformat()} is after now ({now.isoformat()})"})
    reference = reference.strip()
    if not reference:
        raise InvalidInputError("a reference is required", {"reference": "the case number or another reference"})
    triggered = [t for t in triggered_by(runtime, event) if policy_id is None or t.policy.id == policy_id]
    if not triggered:
        known = sorted({t.rules.trigger or "" for t in triggered_by(runtime)})
        where = f" in policy {policy_id!r}" if policy_id else ""
        raise NotFoundError(f"no obligation is triggered by {event!r}{where}; events the current policies "
                            f"know: {', '.join(known) or 'none'}")
    owners = sorted({code for t in triggered for code in t.rules.owner.codes})
    chosen = department or (owners[0] if len(owners) == 1 else reporter.department_code)
    if chosen not in owners:
        raise InvalidInputError(f"{event!r} opens obligations for {', '.join(owners)}, not {chosen!r}",
                                {"department": f"one of {', '.join(owners)}"})
    await _require_may_report(session, reporter, chosen)
    key = period_key_of(reference)
    existing = {(r.policy_id, r.obligation_key): r for r in (await session.execute(select(ObligationRow).where(
        ObligationRow.owner_department == chosen, ObligationRow.period_key == key))).scalars()}
    opened: list[ObligationRow] = []
    kept: list[ObligationRow] = []
    for item in triggered:
        if chosen not in item.rules.owner.codes:
            continue
        row = existing.get((item.policy.id, item.obligation_id))
        if row is not None:
            kept.append(row)
            continue
        tz = item.policy.timezone
        due = due_after_event(occurred_at, item.rules, runtime.calendar, tz)
        local_day = pendulum.instance(occurred_at).in_timezone(tz).date().isoformat()
        row = ObligationRow(policy_id=item.policy.id, policy_version_id=item.version_id,
                            obligation_key=item.obligation_id, title=item.policy.obligation(item.obligation_id).title,
                            owner_department=chosen, period_key=key, period_start=local_day, period_end=local_day,
                            due_at=due.at, nominal_date=due.nominal.isoformat(), shift=due.shift,
                            provisional=due.provisional, created_at=now, event_at=occurred_at, event_ref=reference)
        session.add(row)
        await session.flush()
        add_thresholds(session, row, Deadline(at=due.at, provisional=due.provisional), item.rules, runtime, tz=tz)
        await append_audit(session, at=now, actor_id=reporter.id, action="obligation.opened",
                           subject_type="obligation", subject_id=row.id or 0,
                           data={"event": event, "reference": reference, "occurred_at": occurred_at.isoformat(),
                                 "policy": item.policy.id, "obligation": item.obligation_id,
                                 "department": chosen, "due_at": due.at.isoformat()})
        await _notify_opened(session, runtime, row, item, reporter=reporter, occurred_at=occurred_at, now=now)
        opened.append(row)
    return EventReport(event=event, reference=reference, department=chosen, occurred_at=occurred_at,
                       opened=opened, existing=kept)


async def _notify_opened(session: AsyncSession, runtime: Runtime, row: ObligationRow, item: Triggered, *,
                         reporter: PersonRow, occurred_at: datetime, now: datetime) -> None:
    """Tell the people responsible (the owner role in the department, or its head; active people only) that
    the report is owed, in the transaction that opened it (event key `obligation:<id>:opened`). Calendar
    obligations get no such message when the materialise flow creates them: they are created months ahead,
    and their reminders (`remind:` thresholds) and the daily digest tell people when it matters."""
    department = await session.get(DepartmentRow, row.owner_department)
    head_id = department.head_id if department else None
    people = {p.id: p for p in (await session.execute(select(PersonRow).where(or_(
        PersonRow.department_code == row.owner_department, PersonRow.id == head_id)))).scalars()}
    targets = [pid for pid in responsible(row.owner_department, item.rules.owner.role, people,
                                          {row.owner_department: head_id})
               if pid in people and people[pid].active]
    tz = item.policy.timezone
    context = {"obligation": obligation_context(row, item.policy.title, department.name if department else "", tz),
               "event": {"name": item.rules.trigger, "reference": row.event_ref,
                         "occurred_at": local_iso(occurred_at, tz), "reporter_name": reporter.name},
               "link": f"{runtime.public_url}/obligations/{row.id}"}
    for person_id in targets:
        await queue_message(session, event_key=f"obligation:{row.id}:opened", event="obligation_opened",
                            recipient=people[person_id], context=context, now=now)


def add_thresholds(session: AsyncSession, row: ObligationRow, deadline: Deadline, rules: ObligationRules,
                   runtime: Runtime, *, tz: str, suffix: str = "",
                   skip_keys: frozenset[str] = frozenset()) -> int:
    """The obligation's reminders, its due threshold and its escalation ladder (keys + `suffix`); a key in
    `skip_keys` is left out. Returns how many were added."""
    added = 0
    for plan in obligation_thresholds(deadline, rules.remind, rules.escalate, runtime.calendar, tz=tz):
        if plan.key in skip_keys:
            continue
        session.add(ThresholdRow(subject_type="obligation", subject_id=row.id or 0, key=plan.key + suffix,
                                 action=plan.action, rung=plan.rung, fire_at=plan.fire_at,
                                 provisional=plan.provisional))
        added += 1
    return added


async def _require_may_report(session: AsyncSession, person: PersonRow, department: str) -> None:
    """Who may submit a department's reports may report its events (store.obligation_access)."""
    if person.department_code == department or SUBMITS_FOR_ANY & set(person.roles):
        return
    row = await session.get(DepartmentRow, department)
    if row is None or row.head_id != person.id:
        raise ForbiddenError(f"only people of department {department!r}, its head, statisticians (statistician) "
                             "or administrators (admin) may report its events")
