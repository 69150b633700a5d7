"""A valid sample form for any approval policy, built from its typed fields, and the requester who may file it.

Every field is filled (optional ones too), inside its limits: money and numbers at 1000 (or 1) clamped into
[min, max]; a choice takes its first option; a date a fixed day; a person the first other person of the
organisation; a department the requester's; an attachment the id of a small PDF uploaded through the API
(a sealed paper copy, `paper: true`, is named as `{name, kind: paper}`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from policies.chain import PlannedStep, RouteError, plan_route
from policies.forms import FormError, validate_form
from policies.models import ApprovalPolicy, FormField
from policies.org import Organisation

SAMPLE_DATE = "2026-12-15"


def sample_value(name: str, spec: FormField, org: Organisation, requester: str, upload: Callable[[], int]) -> Any:
    """One field's sample value (module docstring)."""
    if spec.type in ("money", "number"):
        value = Decimal(1000) if spec.type == "money" else Decimal(1)
        if spec.max is not None:
            value = min(value, spec.max)
        if spec.min is not None:
            value = max(value, spec.min)
        return str(value.quantize(Decimal("0.01"))) if spec.type == "money" else str(value)
    if spec.type == "choice":
        return (spec.choices or ("",))[0]
    if spec.type == "date":
        return SAMPLE_DATE
    if spec.type == "person":
        return next(p for p in sorted(org.people) if p != requester)
    if spec.type == "department":
        return org.people[requester].department
    if spec.type == "attachment":
        if spec.paper:
            return {"name": f"{spec.label}（盖章纸质件）", "kind": "paper"}
        return str(upload())
    return f"{spec.label}（测试）"[:spec.max_length]


def sample_form(policy: ApprovalPolicy, org: Organisation, requester: str,
                upload: Callable[[], int]) -> dict[str, Any]:
    return {name: sample_value(name, spec, org, requester, upload) for name, spec in policy.form.items()}


def first_requester(policy: ApprovalPolicy, org: Organisation
                    ) -> tuple[str, dict[str, Any], list[PlannedStep]] | tuple[None, dict[str, Any], str]:
    """The first person of the organisation (by id) whose sample form the pure core routes, with the form and
    its plan; else (None, the first person's form, the first person's route error). Attachments are left as a
    placeholder id here: the caller uploads the real file once the requester is known."""
    first_error: str | None = None
    first_form: dict[str, Any] = {}
    for person in sorted(org.people):
        form = sample_form(policy, org, person, upload=lambda: 0)
        try:
            plan = plan_route(policy, validate_form(policy, form, org), person, org)
        except RouteError as exc:
            if first_error is None:
                first_error, first_form = str(exc), form
            continue
        except FormError as exc:  # a sample-form bug, not a library finding: fail loudly
            raise AssertionError(f"the sample form of {policy.id} is refused: {exc.problems}") from None
        return person, form, plan
    return None, first_form, first_error or "no people"
