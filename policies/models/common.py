"""Shared pieces of the policy language: strictness, ids, time zones, durations, person rules, escalation
rungs.

Person rules (`approvers`, `notify`, `reassign`) name exactly one of:
- `role: R` — everyone with role R; `{role: R, in: D}` only those in department D;
- `head_of: D` — the head of D;  `leader_in_charge_of: D` — the leader in charge (分管领导) of D;
- `superior_of: requester|approver` (+ `levels: n`) — the superior, n levels up;
- `person: id` — a named person;  `field: f` — the person chosen in form field f.
`D` is a department code or a relative name: `requester`, `approver`, `owner` (calendar policies), or
`field:<name>` (the department chosen in a form field). Which relative names a rule may use depends on
where it sits; the approval policy checks that (policies/models/approval.py).
"""

from __future__ import annotations

import difflib
import zoneinfo
from typing import Annotated, Any, Literal

import pendulum
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policies.due import DueRule, parse_due_rule
from policies.durations import WorkingDuration, parse_duration

SLUG = r"^[A-Za-z][A-Za-z0-9_-]*$"
Duration = Annotated[WorkingDuration, BeforeValidator(lambda v: parse_duration(v) if isinstance(v, str) else v)]
Due = Annotated[DueRule, BeforeValidator(lambda v: parse_due_rule(v) if isinstance(v, str) else v)]


def hinted_error(kind: str, message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error whose `hint` the loader prints on its own line below the message."""
    return PydanticCustomError(kind, "{reason}", {"reason": message, "hint": hint})


def _known_zone(value: str) -> str:
    try:
        pendulum.timezone(value)
    except Exception:  # pendulum raises several kinds of error for an unknown name
        close = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=1, cutoff=0.8)
        hint = (f"did you mean {close[0]!r}?" if close else
                "zone names are Region/City as in the IANA time zone database; mainland China is Asia/Shanghai")
        raise hinted_error("time_zone", f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai",
                           hint) from None
    return value


TimeZone = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name (`Asia/Shanghai`), checked at load time: every deadline is computed in it."""

ID_MAX_LENGTH = 64
"""Policy, step and obligation ids are stored in 64-character columns (audit subjects, obligation keys)."""


def _fits_a_column(value: str) -> str:
    if len(value) > ID_MAX_LENGTH:
        raise hinted_error("id_too_long", f"an id has at most {ID_MAX_LENGTH} characters, this one has {len(value)}",
                           "ids are stored with every request, obligation and audit event; shorten it")
    return value


PolicyId = Annotated[str, Field(pattern=SLUG), AfterValidator(_fits_a_column)]
"""A policy's id: a letter, then letters, digits, `-` or `_`; at most 64 characters."""

StepId = PolicyId
"""A step's id: written like a policy id."""

ObligationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$"), AfterValidator(_fits_a_column)]
"""An obligation's id (`D-001`): letters, digits, `-` or `_`; at most 64 characters."""


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


# --- who: approver and recipient rules ---------------------------------------------------------------

DepartmentRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
"""A department code, or one of the relative names `requester`, `approver`, `owner`."""

RuleDepartment = Annotated[str, Field(pattern=r"^(field:[A-Za-z][A-Za-z0-9_-]*|[a-z][a-z0-9_-]*)$")]
"""In a person rule: a department code, `requester`, `approver`, `owner`, or `field:<name>`."""

RELATIVE_DEPARTMENTS = ("requester", "approver", "owner")
RULE_KEYS = ("role", "head_of", "leader_in_charge_of", "superior_of", "person", "field")
SINGLE_PERSON_KEYS = ("head_of", "leader_in_charge_of", "superior_of", "person", "field")


class PersonRule(Strict):
    """Exactly one of role, head_of, leader_in_charge_of, superior_of, person, field (module docstring).

    `in` narrows `role` to one department; `levels` (default 1) says how far up `superior_of` goes:
    `levels: 2` is the manager of the manager.
    """

    role: str | None = Field(default=None, pattern=SLUG)
    within: RuleDepartment | None = Field(default=None, alias="in")
    head_of: RuleDepartment | None = None
    leader_in_charge_of: RuleDepartment | None = None
    superior_of: Literal["requester", "approver"] | None = None
    levels: int | None = Field(default=None, ge=1, le=10)
    person: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    field: str | None = None

    @field_validator("within", "head_of", "leader_in_charge_of")
    @classmethod
    def _known_department_field(cls, value: str | None, info: ValidationInfo) -> str | None:
        """`field:<name>` must name a `department` field of the form; `owner` exists only in calendars."""
        context = info.context or {}
        if value is None or context.get("kind") != "approval":
            return value
        if value == "owner":
            raise ValueError("`owner` is the department that owes a reporting obligation (calendar policies); "
                             "an approval rule uses requester, approver, a department code or field:<name>")
        if value.startswith("field:"):
            _check_form_field(value[len("field:"):], "department", context)
        return value

    @field_validator("field")
    @classmethod
    def _known_person_field(cls, value: str | None, info: ValidationInfo) -> str | None:
        context = info.context or {}
        if value is not None and "form_types" in context:
            _check_form_field(value, "person", context)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PersonRule:
        given = [k for k in RULE_KEYS if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"name exactly one of {', '.join(RULE_KEYS)} (got {', '.join(given) or 'none'})")
        if self.within is not None and not self.role:
            raise ValueError("`in` narrows a role to one department; it goes with `role`")
        if self.levels is not None and not self.superior_of:
            raise ValueError("`levels` counts how far up `superior_of` goes; it goes with `superior_of`")
        return self

    @property
    def key(self) -> str:
        """Which kind of rule this is: role, head_of, leader_in_charge_of, superior_of, person or field."""
        return next(k for k in RULE_KEYS if getattr(self, k))

    @property
    def single_person(self) -> bool:
        """True when the rule can name at most one person (everything but `role`)."""
        return self.key in SINGLE_PERSON_KEYS

    def refers_to(self, relative: str) -> bool:
        """Whether the rule depends on the relative name (`requester`, `approver`, `owner`)."""
        return relative in (self.within, self.head_of, self.leader_in_charge_of, self.superior_of)

    @property
    def form_fields(self) -> frozenset[str]:
        """The form fields the rule reads (`field: f`, or a department `field:<name>`)."""
        refs = (self.within, self.head_of, self.leader_in_charge_of)
        named = {r[len("field:"):] for r in refs if r and r.startswith("field:")}
        return frozenset(named | ({self.field} if self.field else set()))

    def describe(self) -> str:
        key = self.key
        text = f"{key}: {getattr(self, key)}"
        if self.within:
            text += f" in {self.within}"
        if self.levels and self.levels > 1:
            text += f" (levels: {self.levels})"
        return text


def _check_form_field(name: str, expected: str, context: dict[str, Any]) -> None:
    types: dict[str, str] = context.get("form_types", {})
    if name not in types:
        known = ", ".join(types) or "none"
        raise ValueError(f"no form field {name!r} (fields: {known})")
    if types[name] != expected:
        raise ValueError(f"form field {name!r} is a {types[name]} field; this rule needs a {expected} field")


class EscalationRung(Strict):
    """After the deadline (+ `after`), notify the people of `notify`. Each rung fires once.

    The reporting calendar's ladder; an approval step's ladder is made of `LadderRung`s."""

    after: Duration | None = None
    notify: PersonRule


RungAction = Literal["notify", "reassign", "decide"]


class LadderRung(Strict):
    """One rung of an approval step's escalation ladder: at the SLA deadline (+ `after`, counted on the
    working-day calendar) do exactly one of
    - `notify: rule` — tell the people of the rule (督办); the step stays with its assignees;
    - `reassign: rule` — the step's undecided places go to the people of the rule;
    - `decide: approve|reject` — the system decides the step; a rejection needs `reason`.
    """

    after: Duration | None = None
    notify: PersonRule | None = None
    reassign: PersonRule | None = None
    decide: Literal["approve", "reject"] | None = None
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_action(self) -> LadderRung:
        given = [k for k in ("notify", "reassign", "decide") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a rung does exactly one of notify, reassign, decide"
                             f" (got {', '.join(given) or 'none'})")
        if self.reason is not None and self.decide is None:
            raise ValueError("`reason` goes with `decide`")
        if self.decide == "reject" and not (self.reason or "").strip():
            raise ValueError("`decide: reject` needs a `reason` (驳回须填写理由)")
        return self

    @property
    def action(self) -> RungAction:
        return "notify" if self.notify else "reassign" if self.reassign else "decide"

    @property
    def rule(self) -> PersonRule | None:
        return self.notify or self.reassign
