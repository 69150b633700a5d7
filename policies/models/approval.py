"""`kind: approval`: a form and a chain of steps (the steps themselves: policies/models/steps.py).

Form rules checked at load time:
- `choices` goes with (and is required by) `type: choice`; `min`/`max` go with money and number, min ≤ max;
- `kinds` and `paper` go with `type: attachment`; a paper attachment (a sealed paper copy) has no file kinds;
- `max_length` goes with text-like fields (text, choice).
Policy rules: separation of duties (`distinct_approvers`, default true), `withdraw` (撤回:
`until_first_decision` by default, or `never`), and the outcome texts recorded when the request ends.
"""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from policies.models.common import PolicyId, Strict, TimeZone
from policies.models.steps import Step

FieldType = Literal["money", "text", "number", "choice", "date", "person", "department", "attachment"]
ATTACHMENT_KINDS = ("pdf", "image", "word", "excel", "text", "archive", "audio", "video", "other")


class FormField(Strict):
    type: FieldType
    label: str
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = Field(default=2000, ge=1, le=100_000)
    choices: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    paper: bool = False

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in ATTACHMENT_KINDS:
                close = difflib.get_close_matches(kind, ATTACHMENT_KINDS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"unknown attachment kind {kind!r}; {hint}(kinds: {', '.join(ATTACHMENT_KINDS)})")
        if value is not None and not value:
            raise ValueError("`kinds` lists at least one kind (leave it out to accept any kind)")
        return value

    @model_validator(mode="after")
    def _keys_fit_the_type(self) -> FormField:
        given = self.model_fields_set
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice field needs `choices`")
        misplaced = [k for k, types in (("choices", ("choice",)), ("min", ("money", "number")),
                                        ("max", ("money", "number")), ("kinds", ("attachment",)),
                                        ("paper", ("attachment",)), ("max_length", ("text", "choice")))
                     if k in given and self.type not in types]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} does not apply to a {self.type} field")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.paper and self.kinds:
            raise ValueError("a paper attachment (a sealed paper copy) has no file `kinds`")
        return self


class SeparationOfDuties(Strict):
    """`distinct_approvers`: someone who decided one step is not asked at another (the requester is
    never an approver, whatever this says)."""

    distinct_approvers: bool = True


class ApprovedOutcome(Strict):
    allows: str = Field(min_length=1, max_length=500)


class RejectedOutcome(Strict):
    record: str = Field(min_length=1, max_length=500)


class Outcomes(Strict):
    """What an outcome means, recorded with it: what approval allows, what a rejection leaves on record."""

    approved: ApprovedOutcome | None = None
    rejected: RejectedOutcome | None = None


def validation_context(data: Any) -> dict[str, Any]:
    """What validating a policy needs besides its own data: the kind, the form's fields and their types,
    and the step ids in order (so a step can check its send-back targets and its id)."""
    form = data.get("form") if isinstance(data, dict) else None
    steps = data.get("steps") if isinstance(data, dict) else None
    types = {str(k): str(v.get("type")) for k, v in form.items() if isinstance(v, dict)} if isinstance(form, dict) \
        else {}
    ids = [str(s.get("id")) for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    return {"kind": data.get("kind") if isinstance(data, dict) else None,
            "form_fields": frozenset(str(k) for k in form) if isinstance(form, dict) else frozenset(),
            "form_types": types, "step_ids": ids}


class ApprovalPolicy(Strict):
    kind: Literal["approval"]
    id: PolicyId
    title: str
    description: str = ""
    timezone: TimeZone = "Asia/Shanghai"
    form: dict[str, FormField]
    steps: tuple[Step, ...] = Field(min_length=1, max_length=50)
    separation_of_duties: SeparationOfDuties = SeparationOfDuties()
    withdraw: Literal["until_first_decision", "never"] = "until_first_decision"
    outcomes: Outcomes = Outcomes()

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError if there is none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def distinct_approvers(self) -> bool:
        return self.separation_of_duties.distinct_approvers

