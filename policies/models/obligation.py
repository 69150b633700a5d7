"""One obligation of a `kind: calendar` policy: the keys it may set, and how they are put together.

Rules (each one has a test in tests/policies/test_calendar_policy.py):

- Every key of an obligation (recurrence, weekday, due, at, inclusive, non_working_day, owner, review,
  lead_time, attachments, remind, escalate, note, trigger, count_event_day) may be set under `defaults`;
  an obligation's own key wins. (The older `override:` block is still read as the obligation's own keys;
  a key set both there and directly is an error.)
- `weekday: friday` is short for `due: friday of this week`; a level that sets both is an error.
- An obligation's `owner` names its departments; its `role`, when not given, is the one under `defaults`.
- With `trigger: EVENT` the obligation is event-relative: its `due` must be an event rule ("within 5
  working days", "same day", "next day") and it has no recurrence of its own. Without a trigger, `due`
  must be a period rule or `{with: ID}`, and the recurrence defaults to monthly.
- `{with: ID}` names another period-based obligation of the same policy; following `with` must not
  come back to where it started.
- A weekday rule ("friday of this week") needs a weekly recurrence (weekly or every N weeks).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import time
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from policies.due import DUE_RULE_SHAPES, DueRule, NonWorkingDayRule, parse_due_rule
from policies.events import EVENT_RULE_SHAPES, EventRule, parse_event_rule
from policies.models.common import SLUG, DepartmentRef, Duration, EscalationRung, ObligationId, Strict
from policies.recurrence import WEEKDAYS, Recurrence, parse_recurrence, parse_weekday

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]
_RELATIVE = ("requester", "approver", "owner")
_WORD = re.compile(r"[a-z][a-z0-9_]*")
_NAME = re.compile(SLUG)


class Owner(Strict):
    """The departments that owe the obligation (one obligation row each); `role` says who in each is
    reminded (without a role, the department's head)."""

    department: DepartmentRef | None = None
    departments: tuple[DepartmentRef, ...] | None = None
    role: str | None = Field(default=None, pattern=SLUG)

    @model_validator(mode="after")
    def _one_way_to_name_departments(self) -> Owner:
        if (self.department is None) == (self.departments is None):
            raise ValueError("name the owner with exactly one of department, departments")
        codes = self.codes
        if not codes:
            raise ValueError("departments: list at least one department code")
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"departments: {twice[0]!r} is listed twice")
        relative = [c for c in codes if c in _RELATIVE]
        if relative:
            raise ValueError(f"{relative[0]!r} is a relative name; an owner is a department code such as performance")
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        """The owning department codes, in the order written."""
        return (self.department,) if self.department is not None else tuple(self.departments or ())


class Attachment(Strict):
    """A kind of attachment a submission must carry, e.g. `paper_copy_sealed` (盖章纸质件, seed D-017)."""

    kind: str
    label: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @field_validator("kind")
    @classmethod
    def _a_word(cls, value: str) -> str:
        if not _WORD.fullmatch(value):
            raise ValueError(f"an attachment kind is a lower-case word such as paper_copy_sealed, got {value!r}")
        return value


class CoupledDue(BaseModel):
    """`{with: ID}`: due at the same instant as obligation ID for its period that contains this period's
    last day (seed D-014: 「季报、半年报与末月报一起报送」)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    with_: str = Field(alias="with", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

    @property
    def text(self) -> str:
        return f"with {self.with_}"

    def __str__(self) -> str:
        return self.text


DueValue = DueRule | EventRule | CoupledDue


def read_due(value: Any) -> Any:
    """A due rule from its YAML: a text in either grammar (period or event), or `{with: ID}`."""
    if isinstance(value, DueRule | EventRule | CoupledDue):
        return value
    if isinstance(value, dict):
        if set(value) != {"with"}:
            raise ValueError(f"expected {{with: OBLIGATION_ID}}, got the keys {', '.join(map(str, value))}")
        return CoupledDue.model_validate(value)
    if not isinstance(value, str):
        raise ValueError(f'expected a rule like "day 15 of next month" or {{with: OBLIGATION_ID}}, got {value!r}')
    for parse in (parse_due_rule, parse_event_rule):
        try:
            return parse(value)
        except ValueError as problem:
            if not str(problem).startswith("expected a rule like"):
                raise  # the text has a known shape but a bad part (day 32, February 30): say that
    raise ValueError(f'expected a rule like "day 15 of next month", got "{value}" (period rules: {DUE_RULE_SHAPES}; '
                     f"with a trigger: {EVENT_RULE_SHAPES})")


def _parse_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 12:00 as the sexagesimal number 720
        return time(value // 60 % 24, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
        try:
            return time(*(int(p) for p in value.split(":")))
        except ValueError:
            pass
    if isinstance(value, time):
        return value
    raise ValueError(f'expected a time of day such as "12:00" or "23:59:59", got {value!r}')


WallTime = Annotated[time, BeforeValidator(_parse_time)]
DueField = Annotated[DueValue, BeforeValidator(read_due)]
RecurrenceField = Annotated[Recurrence, BeforeValidator(parse_recurrence)]
Weekday = Annotated[int, BeforeValidator(lambda v: parse_weekday(v) if isinstance(v, str) else v), Field(ge=0, le=6)]
SETTINGS = frozenset({"recurrence", "weekday", "due", "at", "inclusive", "non_working_day", "owner", "review",
                      "lead_time", "attachments", "remind", "escalate", "note", "trigger", "count_event_day"})


class ObligationSettings(Strict):
    """The keys an obligation may set itself or take from `defaults` (module docstring)."""

    recurrence: RecurrenceField | None = None
    weekday: Weekday | None = None
    due: DueField | None = None
    at: WallTime | None = None
    inclusive: bool | None = None
    non_working_day: NonWorkingDayRule | None = None
    owner: Owner | None = None
    review: str | None = None
    lead_time: Duration | None = None
    attachments: tuple[Attachment, ...] | None = None
    remind: tuple[Duration, ...] | None = None
    escalate: tuple[EscalationRung, ...] | None = None
    note: str | None = None
    trigger: str | None = None
    count_event_day: bool | None = None

    @field_validator("review", "trigger")
    @classmethod
    def _a_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _NAME.fullmatch(value):
            what = "an approval policy id" if info.field_name == "review" else "an event name"
            raise ValueError(f"expected {what} such as "
                             f"{'external-report-signoff' if info.field_name == 'review' else 'case_created'}, "
                             f"got {value!r}")
        return value

    @field_validator("at")
    @classmethod
    def _wall_time(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("`at` is a wall time in the policy's time zone; write it without an offset")
        return value


ObligationOverride = ObligationSettings
"""The older `override:` block: the same keys as the obligation itself."""


class ObligationSpec(ObligationSettings):
    """One obligation as written: its id and title, and any key of ObligationSettings."""

    id: ObligationId
    title: str = Field(min_length=1)
    override: ObligationSettings | None = None


class ObligationRules(Strict):
    """The rules one obligation follows, after `defaults` and its own keys are put together."""

    recurrence: Recurrence | None
    due: DueValue
    at: time = time(23, 59, 59)
    inclusive: bool = True
    non_working_day: NonWorkingDayRule = "keep"
    owner: Owner
    review: str | None = None
    lead_time: Duration | None = None
    attachments: tuple[Attachment, ...] = ()
    remind: tuple[Duration, ...] = ()
    escalate: tuple[EscalationRung, ...] = ()
    note: str = ""
    trigger: str | None = None
    count_event_day: bool = False

    @property
    def event_relative(self) -> bool:
        return self.trigger is not None

    def missing_attachments(self, kinds: Iterable[str]) -> tuple[Attachment, ...]:
        """The required attachments a submission carrying ``kinds`` lacks (it is incomplete if any)."""
        given = set(kinds)
        return tuple(a for a in self.attachments if a.kind not in given)


# --- putting defaults and an obligation's own keys together -------------------------------------------

_DEFAULTS, _OVERRIDE, _OWN = 0, 1, 2  # how close to the obligation a key is written; the closest wins


def _layers(defaults: ObligationSettings, spec: ObligationSpec,
            index: int) -> list[tuple[ObligationSettings, Loc, int]]:
    layers: list[tuple[ObligationSettings, Loc, int]] = [(defaults, ("defaults",), _DEFAULTS)]
    if spec.override is not None:
        layers.append((spec.override, ("obligations", index, "override"), _OVERRIDE))
    layers.append((spec, ("obligations", index), _OWN))
    return layers


def resolve_obligation(defaults: ObligationSettings, spec: ObligationSpec, index: int,
                       problems: Problems) -> ObligationRules | None:
    """Put `defaults` and obligation ``index``'s own keys together (module docstring); on a problem,
    append it with its location and return None."""
    layers = _layers(defaults, spec, index)
    count = len(problems)
    chosen, own = _choose(layers, spec, index, problems)
    here: Loc = ("obligations", index)
    for key in ("due", "owner"):
        if key not in chosen:
            problems.append((here, f"missing key {key!r} (set it on the obligation or under defaults)"))
    trigger = chosen["trigger"][0] if "trigger" in chosen else None
    recurrence = None if trigger else chosen["recurrence"][0] if "recurrence" in chosen else parse_recurrence("monthly")
    due = _fitting_due(chosen["due"][0] if "due" in chosen else None, trigger, recurrence, own, here, problems)
    if len(problems) > count:
        return None
    values = {name: value for name, (value, _, _) in chosen.items()}
    values.update(due=due, recurrence=recurrence, owner=_owner(layers))
    return ObligationRules.model_validate(values)


def _choose(layers: list[tuple[ObligationSettings, Loc, int]], spec: ObligationSpec, index: int,
            problems: Problems) -> tuple[dict[str, tuple[Any, Loc, int]], dict[str, Loc]]:
    """Each key's closest value with where it is written and its layer; and where the obligation itself
    (or its override) writes each key it sets."""
    if spec.override is not None:
        for name in sorted(SETTINGS & spec.override.model_fields_set & spec.model_fields_set):
            problems.append((("obligations", index, name), f"{name} is set both here and under override"))
    chosen: dict[str, tuple[Any, Loc, int]] = {}
    for layer, loc, level in layers:
        if {"weekday", "due"} <= layer.model_fields_set:
            problems.append(((*loc, "weekday"), "give either weekday or due, not both (weekday: friday is short "
                                                 "for due: friday of this week)"))
        for name in layer.model_fields_set & SETTINGS:
            if getattr(layer, name) is not None:
                chosen[name] = (getattr(layer, name), (*loc, name), level)
    own = {name: where for name, (_, where, level) in chosen.items() if level > _DEFAULTS}
    weekday = chosen.pop("weekday", None)
    if weekday is not None and ("due" not in chosen or weekday[2] > chosen["due"][2]):
        rule = DueRule(kind="weekday", weekday=weekday[0], text=f"{WEEKDAYS[weekday[0]]} of this week")
        chosen["due"] = (rule, weekday[1], weekday[2])
        if weekday[2] > _DEFAULTS:
            own["due"] = weekday[1]
    return chosen, own


def _fitting_due(due: DueValue | None, trigger: str | None, recurrence: Recurrence | None, own: dict[str, Loc],
                 here: Loc, problems: Problems) -> DueValue | None:
    """The due rule, if it fits the kind of obligation: event rules with a trigger, period rules without one;
    "same day" / "next day" read as event rules when there is a trigger."""
    where = own.get("due", here)
    if trigger is not None:
        for key in ("recurrence", "weekday"):
            if key in own:
                problems.append((own[key], f"an obligation with a trigger ({trigger}) has no {key}; "
                                           "it is due relative to each event"))
        if isinstance(due, DueRule) and due.kind in ("same_day", "next_day"):
            return EventRule(kind=due.kind, text=due.text)
        if isinstance(due, DueRule | CoupledDue):
            problems.append((where, f'"{due.text}" counts from a period, but the obligation has a trigger '
                                    f"({trigger}); use an event rule: {EVENT_RULE_SHAPES}"))
        return due
    if "count_event_day" in own:
        problems.append((own["count_event_day"], "count_event_day applies only to an obligation with a trigger"))
    if isinstance(due, EventRule):
        problems.append((where, f'"{due.text}" counts from an event: add `trigger: EVENT_NAME` to the '
                                'obligation, or use a period rule like "day 15 of next month"'))
    elif isinstance(due, DueRule) and due.kind == "weekday" and recurrence is not None and not recurrence.weekly:
        problems.append((where, f'"{due.text}" needs a weekly recurrence (weekly, or every N weeks); '
                                f"this obligation recurs {recurrence}"))
    return due


def _owner(layers: list[tuple[ObligationSettings, Loc, int]]) -> Owner | None:
    """The closest owner, with the role of the closest owner that gives one when it gives none."""
    owners = [layer.owner for layer, _, _ in layers if layer.owner is not None]
    if not owners:
        return None
    top = owners[-1]
    if "role" in top.model_fields_set:
        return top
    role = next((o.role for o in reversed(owners) if "role" in o.model_fields_set), None)
    return top.model_copy(update={"role": role})


def coupling_problems(specs: Sequence[tuple[int, ObligationSpec]], rules: Mapping[str, ObligationRules],
                      ids: Sequence[str]) -> Problems:
    """`{with: ID}` must name a period-based obligation of this policy (``ids``: all of its obligation ids),
    and must not come round in a circle. ``specs`` are the obligations with their index in the file."""
    problems: Problems = []
    for index, spec in specs:
        own = rules.get(spec.id)
        if own is None or not isinstance(own.due, CoupledDue):
            continue
        loc: Loc = ("defaults", "due", "with")
        for layer, where, _ in _layers(ObligationSettings(), spec, index)[1:]:
            if "due" in layer.model_fields_set:
                loc = (*where, "due", "with")
        target = own.due.with_
        if target not in ids:
            close = difflib.get_close_matches(target, ids, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append((loc, f"with: no obligation {target!r} in this policy; {hint}(obligations: "
                                  f"{', '.join(ids)})"))
            continue
        target_rules = rules.get(target)
        if target_rules is not None and target_rules.trigger is not None:
            problems.append((loc, f"with: {target} is due after an event ({target_rules.trigger}), not per period; "
                                  "couple with a period-based obligation"))
            continue
        path = [spec.id]
        while (step := rules.get(path[-1])) is not None and isinstance(step.due, CoupledDue):
            path.append(step.due.with_)
            if path[-1] == spec.id:
                problems.append((loc, f"with: {' → '.join(path)} goes round in a circle; one of them needs a "
                                      "rule of its own"))
                break
            if path[-1] in path[:-1]:
                break  # a circle further on, reported at its own members
    return problems
