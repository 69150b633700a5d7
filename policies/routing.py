"""Resolve a person rule (role, head_of, leader_in_charge_of, person, field) to people, with reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.models import PersonRule
from policies.org import Organisation

RELATIVE = ("requester", "approver", "owner")


@dataclass(frozen=True)
class Candidate:
    person_id: str
    why: str


@dataclass(frozen=True)
class Context:
    """Who the relative names refer to: the requester, the step's approver, the obligation's owner."""

    requester: str | None = None
    approver: str | None = None
    owner_department: str | None = None
    form: Mapping[str, Any] | None = None


def resolve_people(rule: PersonRule, org: Organisation, context: Context) -> list[Candidate]:
    """The people the rule names in `org`, in a stable order; empty when it names nobody."""
    if rule.role:
        return [Candidate(pid, f"has role {rule.role}") for pid in org.with_role(rule.role)
                if org.people[pid].active]
    if rule.person:
        person = org.people.get(rule.person)
        return [Candidate(person.id, "named in the policy")] if person and person.active else []
    if rule.field:
        value = (context.form or {}).get(rule.field)
        person = org.people.get(value) if isinstance(value, str) else None
        return [Candidate(person.id, f"chosen in form field {rule.field}")] if person and person.active else []
    department_ref = rule.head_of or rule.leader_in_charge_of
    code = _department_code(department_ref or "", org, context)
    department = org.departments.get(code) if code else None
    if department is None:
        return []
    if rule.head_of:
        pid, why = department.head, f"head of {department.name}"
    else:
        pid, why = department.leader_in_charge, f"leader in charge (分管领导) of {department.name}"
    person = org.people.get(pid) if pid else None
    return [Candidate(person.id, why)] if person and person.active else []


def _department_code(ref: str, org: Organisation, context: Context) -> str | None:
    if ref == "requester":
        dept = org.department_of(context.requester) if context.requester else None
        return dept.code if dept else None
    if ref == "approver":
        dept = org.department_of(context.approver) if context.approver else None
        return dept.code if dept else None
    if ref == "owner":
        return context.owner_department
    return ref
