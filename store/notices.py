"""The context each notification template receives, built from rows (JSON-safe values only)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pendulum

from policies.models import ApprovalPolicy
from store.tables import ObligationRow, PersonRow, RequestRow, StepRow


def to_local(at: datetime | None, tz: str) -> pendulum.DateTime | None:
    """A stored UTC instant in the zone people read it in (None stays None)."""
    return pendulum.instance(at).in_timezone(tz) if at else None


def local_iso(at: datetime | None, tz: str) -> str | None:
    local = to_local(at, tz)
    return local.isoformat() if local else None


def request_context(request: RequestRow, policy: ApprovalPolicy, requester: PersonRow,
                    department_name: str) -> dict[str, Any]:
    # `money` marks the amounts, which the short chat-bot form shows among the key facts
    fields = [{"label": spec.label, "value": _show(request.form.get(name), spec.type), "money": spec.type == "money"}
              for name, spec in policy.form.items() if request.form.get(name) not in (None, "")]
    return {"id": request.id, "title": request.title, "policy_title": policy.title,
            "requester_name": requester.name, "requester_department": department_name, "fields": fields}


def step_context(step: StepRow, tz: str) -> dict[str, Any]:
    return {"title": step.title, "due_at": local_iso(step.due_at, tz), "provisional": step.provisional}


def obligation_context(obligation: ObligationRow, policy_title: str, department_name: str,
                       tz: str) -> dict[str, Any]:
    return {"id": obligation.id, "title": obligation.title, "policy_title": policy_title,
            "period": period_label(obligation), "due_at": local_iso(obligation.due_at, tz),
            "provisional": obligation.provisional, "owner_department": department_name}


def period_label(obligation: ObligationRow) -> str:
    """The period people read: "2026-10", or for a report opened by an event, the event's reference (its
    period key is an internal hash)."""
    return obligation.event_ref or obligation.period_key


def _show(value: Any, kind: str) -> str:
    if kind == "money":
        return f"¥{Decimal(str(value)):,.2f}"
    return str(value)
