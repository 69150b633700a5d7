"""Shared pieces of the policy language: strictness, durations, person rules, escalation rungs."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from policies.due import DueRule, parse_due_rule
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
