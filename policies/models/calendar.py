"""`kind: calendar`: reporting obligations with recurrences and due rules."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from policies.due import NonWorkingDayRule
from policies.models.common import SLUG, DepartmentRef, Due, Duration, EscalationRung, Strict


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
