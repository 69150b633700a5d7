"""Thresholds: the instants at which an open item is reminded, marked late or escalated, and what a rung does.

Each threshold has a stable `key` per item ("remind-1", "due", "escalate-1", ...). The shell stores
them as rows and fires each one once (compare-and-set on the row), so a sweep that runs twice or
crashes midway never fires a threshold twice.

Rules:
- An approval step is reminded `remind` before its SLA deadline ("remind-n"); a reminder that would fall
  at or before the moment the step opened is dropped (the SLA is shorter than the reminder).
- An approval step escalates along its ladder: rung n fires at the SLA deadline plus the rung's `after`
  (measured from the SLA deadline on the working-day calendar), and does its one action: notify the people
  of its rule, reassign the step's undecided places to them, or decide the step as the system.
- An obligation is reminded `remind` before its due instant, is marked late at the due instant, and
  escalates along its ladder from the due instant.
- Counting back: `n working days` before → 09:00 local on the n-th working day before the deadline's day;
  `n hours on working days` → elapsed hours counted back only through working days; `n working hours` →
  counted back only through 09:00–17:00 of working days; calendar days and hours → plain subtraction.
- A reminder that would fire after the due instant, or for an item no longer open, does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol

import pendulum

from policies.calendar import WorkCalendar
from policies.chain_state import Decision, RequestState
from policies.chain_verbs import decide_by_system, reassign_step
from policies.durations import Deadline, WorkingDuration, add_duration
from policies.models import ApprovalPolicy, EscalationRung, LadderRung
from policies.models.common import RungAction
from policies.org import Organisation
from policies.routing import Context, resolve

Action = Literal["remind", "mark_late", "escalate"]
REMINDER_TIME = time(9, 0)
WORKING_HOURS = (time(9), time(17))
_MAX_SCAN_DAYS = 3660


class _Rung(Protocol):
    @property
    def after(self) -> WorkingDuration | None: ...


@dataclass(frozen=True)
class ThresholdPlan:
    key: str
    action: Action
    fire_at: pendulum.DateTime  # UTC
    rung: int | None = None
    provisional: bool = False


def ladder_thresholds(rungs: Sequence[_Rung], start: Deadline, calendar: WorkCalendar,
                      *, tz: str) -> list[ThresholdPlan]:
    """One `escalate-n` threshold per rung, at `start` plus the rung's `after`."""
    plans = []
    for n, rung in enumerate(rungs, start=1):
        at = start if rung.after is None else add_duration(start.at, rung.after, calendar, tz=tz)
        plans.append(ThresholdPlan(f"escalate-{n}", "escalate", _utc(at.at), rung=n - 1,
                                   provisional=start.provisional or at.provisional))
    return plans


def step_thresholds(rungs: Sequence[LadderRung | EscalationRung], sla_deadline: Deadline, calendar: WorkCalendar,
                    *, tz: str, reminders: Sequence[WorkingDuration] = (),
                    opened_at: datetime | None = None) -> list[ThresholdPlan]:
    """Thresholds of an approval step whose SLA ends at `sla_deadline`: `remind-n` before it (none at or
    before `opened_at`), then the ladder."""
    plans = []
    for n, before in enumerate(reminders, start=1):
        at = reminder_at(sla_deadline.at, before, calendar, tz=tz)
        if opened_at is None or at > opened_at:
            plans.append(ThresholdPlan(f"remind-{n}", "remind", _utc(at), provisional=sla_deadline.provisional))
    return plans + ladder_thresholds(rungs, sla_deadline, calendar, tz=tz)


def obligation_thresholds(due: Deadline, reminders: Sequence[WorkingDuration],
                          rungs: Sequence[EscalationRung], calendar: WorkCalendar,
                          *, tz: str) -> list[ThresholdPlan]:
    """Reminders before `due`, the `due` threshold (mark late) at it, and the escalation ladder."""
    plans = [ThresholdPlan(f"remind-{n}", "remind", _utc(reminder_at(due.at, r, calendar, tz=tz)),
                           provisional=due.provisional)
             for n, r in enumerate(reminders, start=1)]
    plans.append(ThresholdPlan("due", "mark_late", _utc(due.at), provisional=due.provisional))
    plans.extend(ladder_thresholds(rungs, due, calendar, tz=tz))
    return plans


def reminder_at(due_at: datetime, before: WorkingDuration, calendar: WorkCalendar, *,
                tz: str) -> pendulum.DateTime:
    """The instant `before` ahead of `due_at`, counted back as the module docstring says."""
    local = pendulum.instance(due_at).in_timezone(tz)
    if before.counting == "working_days" and before.unit == "days":
        day = local.date()
        for _ in range(before.amount):
            day = calendar.previous_working_day(day)
        return pendulum.datetime(day.year, day.month, day.day, REMINDER_TIME.hour, REMINDER_TIME.minute, tz=tz)
    if before.counting == "working_days":
        return _count_back(local, before.amount, calendar, tz, (time(0), None))
    if before.counting == "working_hours":
        return _count_back(local, before.amount, calendar, tz, WORKING_HOURS)
    if before.unit == "days":
        return local.subtract(days=before.amount)
    return local.subtract(hours=before.amount)


def fires(action: Action, *, item_open: bool, now: datetime, due_at: datetime | None) -> bool:
    """Whether a threshold that has come due should act, given the item's state at `now`."""
    if not item_open:
        return False
    if action == "remind":
        return due_at is None or now < due_at
    return True


@dataclass(frozen=True)
class RungEffect:
    """What a fired rung does to an open step: `targets` (with `why`) are told (notify) or take over the
    undecided places (reassign); `decision` is the request's new state for reassign and decide."""

    action: RungAction
    waiting_on: tuple[str, ...]
    targets: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    decision: Decision | None = None


def rung_effect(policy: ApprovalPolicy, state: RequestState, index: int, rung: LadderRung, *,
                org: Organisation, form: dict[str, object] | None = None) -> RungEffect:
    """The effect of `rung` on open step `index`. `approver` in the rule is each undecided assignee; the
    requester and those assignees are never the ones notified. Raises DecisionError when a reassign or
    decide cannot be applied (nobody eligible, the next step has nobody)."""
    waiting = state.steps[index].undecided
    if rung.decide is not None:
        decision = decide_by_system(policy, state, index, rung.decide, rung.reason, org=org)
        return RungEffect("decide", waiting, decision=decision)
    assert rung.rule is not None
    found: dict[str, str] = {}
    for approver in waiting or (None,):
        result = resolve(rung.rule, org, Context(requester=state.requester, approver=approver, form=form))
        for candidate in result.candidates:
            if candidate.person_id != state.requester and candidate.person_id not in waiting:
                found.setdefault(candidate.person_id, candidate.why)
    targets, why = tuple(found), tuple(found.values())
    if rung.notify is not None:
        return RungEffect("notify", waiting, targets, why)
    decision = reassign_step(policy, state, index, targets, org=org)
    taken = decision.after.steps[index].assignees
    return RungEffect("reassign", waiting, tuple(t for t in targets if t in taken),
                      tuple(w for t, w in found.items() if t in taken), decision)


def _count_back(local: pendulum.DateTime, hours: int, calendar: WorkCalendar, tz: str,
                window: tuple[time, time | None]) -> pendulum.DateTime:
    """Go back `hours` counted only inside `window` (None = the midnight ending the day) on working days."""
    remaining = timedelta(hours=hours)
    day = local.date()
    for _ in range(_MAX_SCAN_DAYS):
        if calendar.is_working_day(day):
            opens = _at(day, window[0], tz)
            closes = _at(day + timedelta(days=1), time(0), tz) if window[1] is None else _at(day, window[1], tz)
            closes = min(closes, local)
            if opens < closes:
                available = closes - opens
                if remaining <= available:
                    return (closes.in_timezone("UTC") - remaining).in_timezone(tz)
                remaining -= available
        day -= timedelta(days=1)
    raise ValueError(f"no reminder instant within {_MAX_SCAN_DAYS} days before {local}")


def _at(day: date, clock: time, tz: str) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, clock.hour, clock.minute, clock.second, tz=tz)


def _utc(at: datetime | Deadline) -> pendulum.DateTime:
    value = at.at if isinstance(at, Deadline) else at
    return pendulum.instance(value).in_timezone("UTC")
