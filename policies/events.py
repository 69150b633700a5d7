"""Event-relative due rules: obligations that arise when something happens (`trigger: case_created`).

Counting rules (each one has a named test in tests/policies/test_events.py); the event instant is taken
in the policy's zone and its calendar day is "the event day":

- ``within N working days`` (「N个工作日内」): due at ``at`` (default 23:59:59) on the N-th working day
  after the event day. The event day is not counted (seed SC-07: Wednesday 2026-06-10 16:00 + 5 working
  days → 2026-06-17T23:59:59+08:00) unless ``count_event_day: true``, and then only when the event day
  is itself a working day: it is working day 1.
- ``within N days`` (「N天内」, 「N日内」): due at ``at`` on the N-th calendar day after the event day
  (the start day is not counted, as in PRC Civil Code art. 201); with ``count_event_day: true`` the event
  day is day 1.
- ``within N hours`` (and ``N hours on working days``, ``N working hours``): the instant that duration
  after the event, counted as policies/durations.py says; ``at``, ``count_event_day`` and
  ``non_working_day`` do not apply to a limit in hours.
- ``same day`` (「当日」): at ``at`` on the event day. ``next day`` (「次日」): at ``at`` on the day after.
- For limits in days the non-working-day rule applies to the last day as it does for period rules
  (``next_working_day`` / ``after_holiday`` give Civil Code art. 203's "a period ending on a holiday
  ends on the day after the holiday"); the default ``keep`` leaves it.
- ``lead_time`` gives an internal deadline before the due instant, as for period rules.
- The result is provisional when any day from the event day to the deadline lies in a year without an
  official holiday arrangement.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import pendulum
from pydantic import BaseModel, ConfigDict

from policies.calendar import WorkCalendar
from policies.due import DueDate, finish_due, with_lead_time
from policies.durations import WorkingDuration, add_duration, parse_duration

if TYPE_CHECKING:
    from policies.models.calendar import ObligationRules

__all__ = ["EVENT_RULE_SHAPES", "EventRule", "due_after_event", "parse_event_rule"]

EVENT_RULE_SHAPES = ("within N working days, within N days, within N hours, same day, next day; "
                     "in Chinese 5个工作日内, 15天内, 2小时内, 当日, 次日")

_TRADITIONAL = str.maketrans({"當": "当", "個": "个", "內": "内", "時": "时"})
_SAME_DAY = re.compile(r"same day|当日|当天|同日|即日")
_NEXT_DAY = re.compile(r"next day|the day after|次日|翌日|第二天|第2天")


class EventRule(BaseModel):
    """A limit counted from an event: ``within`` a duration, or the ``same_day`` / ``next_day``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["within", "same_day", "next_day"]
    duration: WorkingDuration | None = None
    text: str

    def __str__(self) -> str:
        return self.text


def parse_event_rule(text: str) -> EventRule:
    """Read an event-relative rule (see EVENT_RULE_SHAPES); "within" and "内" are optional."""
    normal = " ".join(unicodedata.normalize("NFKC", text).translate(_TRADITIONAL).lower().split())
    if _SAME_DAY.fullmatch(normal):
        return EventRule(kind="same_day", text=text)
    if _NEXT_DAY.fullmatch(normal):
        return EventRule(kind="next_day", text=text)
    try:
        return EventRule(kind="within", duration=parse_duration(text), text=text)
    except ValueError:
        raise ValueError(f'expected a rule like "within 5 working days", got "{text}" '
                         f"(accepted: {EVENT_RULE_SHAPES})") from None


def due_after_event(event_at: datetime, rules: ObligationRules, calendar: WorkCalendar, tz: str) -> DueDate:
    """When an obligation with ``trigger`` is due after its event at ``event_at`` (module docstring)."""
    if event_at.tzinfo is None or event_at.utcoffset() is None:
        raise ValueError(f"event_at must be time-zone aware, got {event_at!r}")
    rule = rules.due
    if not isinstance(rule, EventRule):
        raise ValueError(f"the due rule {rule} is not relative to an event")
    local = pendulum.instance(event_at).in_timezone(tz)
    event_day = local.date()
    duration = rule.duration
    if duration is not None and duration.unit == "hours":
        deadline = add_duration(local, duration, calendar, tz=tz)
        due = DueDate(at=deadline.at, nominal=deadline.at.date(), shift="none", provisional=deadline.provisional)
        return with_lead_time(due, rules.lead_time, calendar, tz)
    last_day = {"same_day": event_day, "next_day": event_day + timedelta(days=1)}.get(rule.kind)
    if last_day is None:
        assert duration is not None
        counted = rules.count_event_day and (duration.counting == "calendar" or calendar.is_working_day(event_day))
        steps = duration.amount - 1 if counted else duration.amount
        if duration.counting == "calendar":
            last_day = event_day + timedelta(days=steps)
        else:
            last_day = calendar.add_working_days(event_day, steps)
    due = finish_due(last_day, calendar, at_time=rules.at, non_working_day=rules.non_working_day,
                     lead_time=rules.lead_time, tz=tz)
    if due.provisional or not calendar.spans_provisional(event_day, last_day):
        return due
    return due.model_copy(update={"provisional": True})
