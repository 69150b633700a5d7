"""Resolve a person rule to people in an organisation snapshot, with a human reason for each.

Rules (docs/policy-language.md, "Approver rules"):
- `role: R` — every active person with role R, in id order; `in: D` keeps those in department D.
- `head_of: D` / `leader_in_charge_of: D` — the department's head / leader in charge (分管领导).
- `superior_of: P` (`levels: n`, default 1) — P's superior n times over: the head of P's department, or
  its leader in charge when P is that head (Organisation.superior_of). The people passed on the way need
  not be active (the structure still holds); the one asked must be.
- `person: id` — that person; `field: f` — the person chosen in form field f.
- Department references: a code; `requester` / `approver` (that person's department); `owner` (the
  obligation's owning department); `field:<name>` (the department chosen in a form field).
- Only active people are candidates. When nobody is found, `Resolution.nobody_because` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.models import PersonRule
from policies.org import Organisation

RELATIVE = ("requester", "approver", "owner")


@dataclass(frozen=True)
class Candidate:
    """A person a rule names, and why (e.g. "head of 综合管理部 (general)")."""

    person_id: str
    why: str


@dataclass(frozen=True)
class Resolution:
    candidates: tuple[Candidate, ...]
    nobody_because: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.person_id for c in self.candidates)


@dataclass(frozen=True)
class Context:
    """Who the relative names refer to: the requester, the step's approver, the obligation's owner."""

    requester: str | None = None
    approver: str | None = None
    owner_department: str | None = None
    form: Mapping[str, Any] | None = None


def resolve_people(rule: PersonRule, org: Organisation, context: Context) -> list[Candidate]:
    """The people the rule names in `org`, in a stable order; empty when it names nobody."""
    return list(resolve(rule, org, context).candidates)


def resolve_for_approvers(rule: PersonRule, org: Organisation, context: Context,
                          approvers: Iterable[str]) -> Resolution:
    """Resolve once per approver when the rule refers to `approver` (the union, first reason kept);
    otherwise once."""
    approvers = tuple(approvers)
    if not rule.refers_to("approver"):
        return resolve(rule, org, context)
    if not approvers:
        return Resolution((), "there is no earlier approver to refer to")
    found: dict[str, Candidate] = {}
    reasons: list[str] = []
    for approver in approvers:
        result = resolve(rule, org, Context(context.requester, approver, context.owner_department, context.form))
        for candidate in result.candidates:
            found.setdefault(candidate.person_id, candidate)
        if result.nobody_because:
            reasons.append(result.nobody_because)
    return Resolution(tuple(found.values()), None if found else "; ".join(reasons))


def resolve(rule: PersonRule, org: Organisation, context: Context) -> Resolution:
    """The rule's candidates with reasons, or the reason there are none."""
    if rule.role:
        return _by_role(rule, org, context)
    if rule.person:
        return _active(org, rule.person, "named in the policy")
    if rule.field:
        value = (context.form or {}).get(rule.field)
        if not isinstance(value, str) or not value:
            return Resolution((), f"form field {rule.field} is empty")
        return _active(org, value, f"chosen in form field {rule.field}")
    if rule.superior_of:
        return _superior(rule.superior_of, rule.levels or 1, org, context)
    code, where, problem = _department(rule.head_of or rule.leader_in_charge_of or "", org, context)
    if problem:
        return Resolution((), problem)
    department = org.departments[code]
    if rule.head_of:
        return _active(org, department.head, f"head of {where}", missing=f"{where} has no head")
    return _active(org, department.leader_in_charge, f"leader in charge (分管领导) of {where}",
                   missing=f"{where} has no leader in charge")


def _by_role(rule: PersonRule, org: Organisation, context: Context) -> Resolution:
    role = rule.role or ""
    people = [pid for pid in org.with_role(role) if org.people[pid].active]
    if rule.within is None:
        found = tuple(Candidate(pid, f"has role {role}") for pid in people)
        return Resolution(found, None if found else f"nobody active has role {role}")
    code, where, problem = _department(rule.within, org, context)
    if problem:
        return Resolution((), problem)
    found = tuple(Candidate(pid, f"has role {role} in {where}") for pid in people
                  if org.people[pid].department == code)
    return Resolution(found, None if found else f"nobody active has role {role} in {where}")


def _superior(of: str, levels: int, org: Organisation, context: Context) -> Resolution:
    start = context.requester if of == "requester" else context.approver
    if start is None or start not in org.people:
        return Resolution((), f"the {of} is not known")
    hops: list[str] = []
    current, seen = start, {start}
    for level in range(1, levels + 1):
        found = org.superior_of(current)
        if found is None or found[0] in seen:  # the top, or a loop (a head whose leader is in their department)
            return Resolution((), f"{org.label(current)} has no superior"
                                  + (f" (level {level} of {levels} above the {of})" if levels > 1 else ""))
        current, why = found
        seen.add(current)
        hops.append(f"{org.label(current)}, {why}" if level < levels else why)
    what = "superior" if levels == 1 else f"superior {levels} levels up"
    return _active(org, current, f"{what} of the {of} {org.label(start)}: " + " → ".join(hops))


def _department(ref: str, org: Organisation, context: Context) -> tuple[str, str, str | None]:
    """(code, how to name it, problem): the department a reference points at in this context."""
    if ref in ("requester", "approver"):
        person_id = context.requester if ref == "requester" else context.approver
        department = org.department_of(person_id) if person_id else None
        if department is None:
            return "", "", f"the {ref} belongs to no known department"
        return department.code, f"{org.department_label(department.code)}, the {ref}'s department", None
    if ref == "owner":
        code = context.owner_department or ""
        label = f"{org.department_label(code)}, the owning department"
    elif ref.startswith("field:"):
        name = ref[len("field:"):]
        value = (context.form or {}).get(name)
        if not isinstance(value, str) or not value:
            return "", "", f"form field {name} is empty"
        code, label = value, f"{org.department_label(value)}, chosen in form field {name}"
    else:
        code, label = ref, org.department_label(ref)
    if code not in org.departments:
        return "", "", f"no department {code!r} in the organisation"
    return code, label, None


def _active(org: Organisation, person_id: str | None, why: str, *, missing: str | None = None) -> Resolution:
    if person_id is None:
        return Resolution((), missing or "nobody")
    person = org.people.get(person_id)
    if person is None:
        return Resolution((), f"no person {person_id!r} in the organisation")
    if not person.active:
        return Resolution((), f"{org.label(person_id)} ({why}) is inactive")
    return Resolution((Candidate(person_id, why),))
