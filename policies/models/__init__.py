"""The policy language as typed, frozen models (`kind: approval` and `kind: calendar`).

The reference with an example per feature is docs/policy-language.md. Texts such as SLAs
("24 hours on working days") and due rules ("day 15 of next month") are parsed here, at load time,
so a running system never meets a rule it cannot read.
"""

from __future__ import annotations

from policies.models.approval import ApprovalPolicy, FormField, Outcomes, SeparationOfDuties, validation_context
from policies.models.calendar import CalendarPolicy, ObligationOverride, ObligationRules, ObligationSpec, Owner
from policies.models.common import (
    ID_MAX_LENGTH,
    SLUG,
    DepartmentRef,
    Due,
    Duration,
    EscalationRung,
    LadderRung,
    ObligationId,
    PersonRule,
    PolicyId,
    RuleDepartment,
    StepId,
    Strict,
    TimeZone,
)
from policies.models.steps import SendBack, Step

Policy = ApprovalPolicy | CalendarPolicy

__all__ = [
    "ID_MAX_LENGTH", "SLUG", "ApprovalPolicy", "CalendarPolicy", "DepartmentRef", "Due", "Duration", "EscalationRung",
    "FormField", "LadderRung", "ObligationId", "ObligationOverride", "ObligationRules", "ObligationSpec", "Outcomes",
    "Owner", "PersonRule", "Policy", "PolicyId", "RuleDepartment", "SendBack", "SeparationOfDuties", "Step", "StepId",
    "Strict", "TimeZone", "validation_context",
]
