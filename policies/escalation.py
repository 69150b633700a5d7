"""Thresholds: the instants at which an open item is reminded, marked late or escalated.

Each threshold has a stable `key` per item ("remind-1", "due", "escalate-1", ...). The shell stores
them as rows and fires each one once (compare-and-set on the row), so a sweep that runs twice or
crashes midway never fires a threshold twice.

Rules:
- An approval step escalates along its ladder: rung n fires at the SLA deadline plus the rung's
  `after` (measured from the SLA deadline on the working-day calendar).
- An obligation is reminded `remind` before its due instant (working days are counted back on the
  working-day calendar; the reminder goes out at 09:00 local on that day), is marked late at the due
  instant, and escalates along its ladder from the due instant.
- A reminder that would fire after the due instant, or for an item no longer open, does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

import pendulum

from policies.calendar import WorkCalendar
from policies.durations import Deadline, WorkingDuration, add_duration
from policies.models import EscalationRung

Action = Literal["remind", "mark_late", "escalate"]
REMINDER_TIME = time(9, 0)


@dataclass(frozen=True)
class ThresholdPlan:
    key: str
    action: Action
    fire_at: pendulum.DateTime  # UTC
    rung: int | None = None
    provisional: bool = False


def ladder_thresholds(rungs: Sequence[EscalationRung], start: Deadline, calendar: WorkCalendar,
                      *, tz: str) -> list[ThresholdPlan]:
    """One `escalate-n` threshold per rung, at `start` plus the rung's `after`."""
    plans = []
    for n, rung in enumerate(rungs, start=1):
        at = start if rung.after is None else add_duration(start.at, rung.after, calendar, tz=tz)
        plans.append(ThresholdPlan(f"escalate-{n}", "escalate", _utc(at.at), rung=n - 1,
                                   provisional=start.provisional or at.provisional))
    return plans


def step_thresholds(rungs: Sequence[EscalationRung], sla_deadline: Deadline, calendar: WorkCalendar,
                    *, tz: str) -> list[ThresholdPlan]:
    """Thresholds of an approval step whose SLA ends at `sla_deadline`."""
    return ladder_thresholds(rungs, sla_deadline, calendar, tz=tz)


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
    """The instant `before` ahead of `due_at`: working days are counted back on the calendar."""
    local = pendulum.instance(due_at).in_timezone(tz)
    if before.counting == "working_days" and before.unit == "days":
        day = local.date()
        for _ in range(before.amount):
            day = calendar.previous_working_day(day)
        return pendulum.datetime(day.year, day.month, day.day, REMINDER_TIME.hour, REMINDER_TIME.minute, tz=tz)
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


def _utc(at: datetime | Deadline) -> pendulum.DateTime:
    value = at.at if isinstance(at, Deadline) else at
    return pendulum.instance(value).in_timezone("UTC")
