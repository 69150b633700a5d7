"""`kind: calendar`: reporting obligations with recurrences, due rules, owners, reviews and points.

An obligation's keys and how `defaults` fill them: policies/models/obligation.py. Here: the policy, and
the due dates it gives.

- ``due_for(obligation, period)``: a period rule is computed by policies/due.py; ``{with: ID}`` takes the
  due instant (and its nominal date, shift and provisional flag) of obligation ID for ID's period that
  contains this period's last day, and adds this obligation's own lead time.
- ``occurrences(first, last)``: every period-based obligation × owner department × period whose due
  date (in the policy's zone) lies in ``first`` … ``last``, ordered by obligation then period; periods
  whose deadline the policy skips (``non_working_day: skip``) and event-relative obligations are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from policies.calendar import WorkCalendar
from policies.due import DueDate, DueRule, due_for_period, with_lead_time
from policies.models.common import PolicyId, Strict, TimeZone
from policies.models.obligation import (
    Attachment,
    CoupledDue,
    ObligationOverride,
    ObligationRules,
    ObligationSettings,
    ObligationSpec,
    Owner,
    Problems,
    coupling_problems,
    resolve_obligation,
)
from policies.points import PointsRule
from policies.recurrence import Period, period_containing, periods_between

__all__ = ["Attachment", "CalendarPolicy", "CoupledDue", "ObligationOverride", "ObligationRules",
           "ObligationSettings", "ObligationSpec", "Occurrence", "Owner"]

_SHIFT_SLACK = 45  # days a non-working-day rule can move a date: longer than any holiday block


@dataclass(frozen=True)
class Occurrence:
    """One obligation owed by one department for one period, and when it is due (a computed value: a
    dataclass, since its parts are validated models already and a year may hold 10^5 of them)."""

    obligation: ObligationSpec
    rules: ObligationRules
    owner: str
    period: Period
    due: DueDate


def _detail(loc: tuple[str | int, ...], msg: str, kind: str = "calendar_rule", given: Any = None,
            hint: str | None = None) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, "{reason}", {"reason": msg, "hint": hint}), loc=loc,
                            input=given)


def _resolve_all(defaults: ObligationSettings, specs: list[tuple[int, ObligationSpec]],
                 ids: list[str]) -> tuple[Problems, dict[str, ObligationRules]]:
    problems: Problems = []
    resolved: dict[str, ObligationRules] = {}
    for index, spec in specs:
        rules = resolve_obligation(defaults, spec, index, problems)
        if rules is not None:
            resolved[spec.id] = rules
    problems += coupling_problems(specs, resolved, ids)
    return list(dict.fromkeys(problems)), resolved


def _problems_of_raw(data: Any) -> Problems:
    """The rule problems of the obligations that are well formed, when others are not (best effort: nothing
    when `defaults` itself is malformed, since every obligation depends on it)."""
    if not isinstance(data, dict) or not isinstance(data.get("obligations"), list):
        return []
    try:
        defaults = ObligationSettings.model_validate(data.get("defaults") or {})
    except ValidationError:
        return []
    specs: list[tuple[int, ObligationSpec]] = []
    for index, item in enumerate(data["obligations"]):
        try:
            specs.append((index, ObligationSpec.model_validate(item)))
        except ValidationError:
            continue
    ids = [str(item.get("id")) for item in data["obligations"] if isinstance(item, dict)]
    if len(set(ids)) != len(ids):
        return []
    return _resolve_all(defaults, specs, ids)[0]


class CalendarPolicy(Strict):
    kind: Literal["calendar"]
    id: PolicyId
    title: str
    description: str = ""
    timezone: TimeZone = "Asia/Shanghai"
    defaults: ObligationSettings = ObligationSettings()
    obligations: tuple[ObligationSpec, ...] = Field(min_length=1)
    points: PointsRule | None = None
    _rules: dict[str, ObligationRules] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ModelWrapValidatorHandler[CalendarPolicy]) -> CalendarPolicy:
        """When some keys are malformed, still check how the well-formed obligations fit together, so a file's
        problems are all reported in one go."""
        try:
            return handler(data)
        except ValidationError as exc:
            more = _problems_of_raw(data)
            if not more:
                raise
            errors = [_detail(e["loc"], e["msg"], e["type"], e["input"], (e.get("ctx") or {}).get("hint"))
                      for e in exc.errors()]
            raise ValidationError.from_exception_data(cls.__name__, errors + [_detail(loc, msg) for loc, msg in more]
                                                      ) from None

    @model_validator(mode="after")
    def _resolve(self) -> CalendarPolicy:
        ids = [o.id for o in self.obligations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"obligation ids used more than once: {', '.join(dupes)}")
        problems, self._rules = _resolve_all(self.defaults, list(enumerate(self.obligations)), ids)
        if problems:
            # One error per problem, each at its own place in the file (the loader maps loc → line:col).
            raise ValidationError.from_exception_data(type(self).__name__, [_detail(loc, msg) for loc, msg in problems])
        return self

    def obligation(self, obligation_id: str) -> ObligationSpec:
        """The obligation named ``obligation_id`` (KeyError if there is none)."""
        for spec in self.obligations:
            if spec.id == obligation_id:
                return spec
        raise KeyError(obligation_id)

    def rules_for(self, obligation: ObligationSpec | str) -> ObligationRules:
        """The rules ``obligation`` follows: its own keys over `defaults` (policies/models/obligation.py)."""
        return self._rules[obligation if isinstance(obligation, str) else obligation.id]

    def due_for(self, obligation: ObligationSpec | str, period: Period, calendar: WorkCalendar) -> DueDate:
        """When ``obligation`` is due for ``period`` (module docstring); ValueError for an event-relative one."""
        rules = self.rules_for(obligation)
        if isinstance(rules.due, CoupledDue):
            target = self.rules_for(rules.due.with_)
            assert target.recurrence is not None  # load-time check: `with` names a period-based obligation
            coupled = self.due_for(rules.due.with_, period_containing(period.end, target.recurrence), calendar)
            return with_lead_time(coupled, rules.lead_time, calendar, self.timezone)
        if not isinstance(rules.due, DueRule):
            name = obligation if isinstance(obligation, str) else obligation.id
            raise ValueError(f"{name} is due after each {rules.trigger} event, not per period")
        return due_for_period(period, rules.due, calendar, at_time=rules.at, inclusive=rules.inclusive,
                              non_working_day=rules.non_working_day, lead_time=rules.lead_time, tz=self.timezone)

    def occurrences(self, calendar: WorkCalendar, first: date, last: date) -> Iterator[Occurrence]:
        """Every obligation × owner × period due from ``first`` to ``last`` (module docstring)."""
        for spec in self.obligations:
            rules = self.rules_for(spec)
            if rules.recurrence is None:
                continue
            before, after = self._reach(rules)
            # a period's due lies within [end - before, end + after]: look only at periods that can land inside
            for period in periods_between(first - timedelta(days=after), last + timedelta(days=before),
                                          rules.recurrence):
                due = self.due_for(spec, period, calendar)
                if due.at is None or not first <= due.at.date() <= last:
                    continue
                for owner in rules.owner.codes:
                    yield Occurrence(obligation=spec, rules=rules, owner=owner, period=period, due=due)

    def _reach(self, rules: ObligationRules) -> tuple[int, int]:
        """How many days before / after its period's last day an obligation can be due, generously."""
        rule = rules.due
        if isinstance(rule, CoupledDue):
            target = self.rules_for(rule.with_)
            before, after = self._reach(target)
            return before + 366, after + 366  # the target's period may be up to a year longer
        assert isinstance(rule, DueRule)
        span = {"day_of_month": 31, "day_of_quarter": 92, "date_of_year": 366}.get(rule.kind, 7)
        return span + _SHIFT_SLACK, span * (rule.offset + 1) + _SHIFT_SLACK
