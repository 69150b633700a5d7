"""The policy language as typed, frozen models (`kind: approval` and `kind: calendar`).

The reference with an example per feature is docs/policy-language.md. Texts such as SLAs
("24 hours on working days") and due rules ("day 15 of next month") are parsed here, at load time,
so a running system never meets a rule it cannot read.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies.conditions import Condition, compile_condition
from policies.due import DueRule, NonWorkingDayRule, parse_due_rule
from policies.durations import WorkingDuration, parse_duration

SLUG = r"^[A-Za-z][A-Za-z0-9_-]*$"
Duration = Annotated[WorkingDuration, BeforeValidator(lambda v: parse_duration(v) if isinstance(v, str) else v)]
Due = Annotated[DueRule, BeforeValidator(lambda v: parse_due_rule(v) if isinstance(v, str) else v)]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


# --- who: approver and recipient rules ---------------------------------------------------------------

DepartmentRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
"""A department code, or one of the relative names `requester`, `approver`, `owner`."""


class PersonRule(Strict):
    """Exactly one of: a role anywhere in the organisation, the head of a department, the leader in
    charge (分管领导) of a department, a named person, or the person chosen in a form field."""

    role: str | None = None
    head_of: DepartmentRef | None = None
    leader_in_charge_of: DepartmentRef | None = None
    person: str | None = None
    field: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PersonRule:
        given = [k for k in ("role", "head_of", "leader_in_charge_of", "person", "field") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("name exactly one of role, head_of, leader_in_charge_of, person, field"
                             f" (got {', '.join(given) or 'none'})")
        return self

    def describe(self) -> str:
        for key in ("role", "head_of", "leader_in_charge_of", "person", "field"):
            value = getattr(self, key)
            if value:
                return f"{key}: {value}"
        return "?"


class EscalationRung(Strict):
    """After the deadline (+ `after`), notify the people of `notify`. Each rung fires once."""

    after: Duration | None = None
    notify: PersonRule


# --- kind: approval ----------------------------------------------------------------------------------

class FormField(Strict):
    type: Literal["money", "text", "number", "choice", "date", "person", "department"]
    label: str
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = Field(default=2000, ge=1, le=100_000)
    choices: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _choices_for_choice(self) -> FormField:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice field needs `choices`")
        return self


class Step(Strict):
    id: str = Field(pattern=SLUG)
    title: str
    when: Condition | None = None
    approvers: PersonRule
    mode: Literal["any", "all"] = "any"
    sla: Duration
    escalate: tuple[EscalationRung, ...] = ()

    @field_validator("when", mode="before")
    @classmethod
    def _compile_when(cls, value: Any, info: ValidationInfo) -> Any:
        """Compiled against the policy's form (passed as validation context), so a condition on an
        unknown field fails at load time, pointing at the condition."""
        if not isinstance(value, str):
            return value
        fields = (info.context or {}).get("form_fields")
        if fields is None:
            raise ValueError("conditions can only be checked as part of a whole policy")
        return compile_condition(value, frozenset(fields))


def validation_context(data: Any) -> dict[str, Any]:
    """What validating a policy needs besides its own data: the form's field names."""
    form = data.get("form") if isinstance(data, dict) else None
    return {"form_fields": frozenset(str(k) for k in form) if isinstance(form, dict) else frozenset()}


class ApprovalPolicy(Strict):
    kind: Literal["approval"]
    id: str = Field(pattern=SLUG)
    title: str
    description: str = ""
    timezone: str = "Asia/Shanghai"
    form: dict[str, FormField]
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> ApprovalPolicy:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        for step in self.steps:
            if step.approvers.field and step.approvers.field not in self.form:
                raise ValueError(f"step {step.id}: approvers.field {step.approvers.field!r} is not a form field")
        return self


# --- kind: calendar ----------------------------------------------------------------------------------

class Owner(Strict):
    """The department that owes the obligation; `role` narrows who in it is reminded (else its head)."""

    department: DepartmentRef
    role: str | None = None


def _parse_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 12:00 as the sexagesimal number 720
        return time(value // 60 % 24, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
        parts = [int(p) for p in value.split(":")]
        return time(*parts)
    return value


class ObligationRules(Strict):
    """The rules an obligation follows; set once under `defaults`, overridable per obligation."""

    recurrence: Literal["monthly"] = "monthly"
    due: Due
    at: Annotated[time, BeforeValidator(_parse_time)] = time(23, 59, 59)
    inclusive: bool = True
    non_working_day: NonWorkingDayRule = "keep"
    owner: Owner
    remind: tuple[Duration, ...] = ()
    escalate: tuple[EscalationRung, ...] = ()


class ObligationOverride(Strict):
    due: Due | None = None
    at: Annotated[time | None, BeforeValidator(_parse_time)] = None
    inclusive: bool | None = None
    non_working_day: NonWorkingDayRule | None = None
    owner: Owner | None = None


class ObligationSpec(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    title: str
    note: str = ""
    override: ObligationOverride | None = None


class CalendarPolicy(Strict):
    kind: Literal["calendar"]
    id: str = Field(pattern=SLUG)
    title: str
    description: str = ""
    timezone: str = "Asia/Shanghai"
    defaults: ObligationRules
    obligations: tuple[ObligationSpec, ...] = Field(min_length=1)

    def rules_for(self, obligation: ObligationSpec) -> ObligationRules:
        if obligation.override is None:
            return self.defaults
        changes = {k: v for k, v in obligation.override.model_dump(exclude_none=True).items()}
        changes = {k: getattr(obligation.override, k) for k in changes}
        return self.defaults.model_copy(update=changes)

    @model_validator(mode="after")
    def _unique_obligation_ids(self) -> CalendarPolicy:
        ids = [o.id for o in self.obligations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"obligation ids used more than once: {', '.join(dupes)}")
        return self


Policy = ApprovalPolicy | CalendarPolicy
