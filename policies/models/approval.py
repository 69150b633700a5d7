"""`kind: approval`: a form and a chain of steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from policies.conditions import Condition, compile_condition
from policies.models.common import SLUG, Duration, EscalationRung, PersonRule, Strict


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
