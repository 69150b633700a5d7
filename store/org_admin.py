"""Organisation administration: departments and people changed by an administrator.

Every change is checked against the whole organisation before anything is written: the changed
snapshot must not add a problem (`Organisation.problems()`: a head who is not a person, a person in a
department that does not exist; and here also a head or leader in charge who is deactivated, since
approver rules skip inactive people and would then reach nobody, and the last active administrator
losing the role). A refused change stores nothing.
Each change is audited with the values before and after (never a password hash).

There is no deletion: a person leaves by `active: false` (they cannot sign in; steps already assigned
to them stay, but approver resolution and lint skip inactive people).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.org import Department, Organisation, Person
from store.audit import append_audit
from store.errors import ConflictError, InvalidInputError, NotFoundError
from store.organisation import load_organisation
from store.registry import PolicyRegistry
from store.tables import DepartmentRow, PersonRow

ADMIN_ROLE = "admin"
DEPARTMENT_FIELDS = ("name", "head", "leader_in_charge")
PERSON_FIELDS = ("name", "department", "title", "email", "roles", "lang", "active")


# --- checks -----------------------------------------------------------------------------------------------

def organisation_problems(org: Organisation) -> list[str]:
    """`Organisation.problems()` plus references to deactivated people (who can no longer act), and an
    organisation left without an active administrator."""
    found = org.problems()
    for d in org.departments.values():
        for what, pid in (("head", d.head), ("leader_in_charge", d.leader_in_charge)):
            person = org.people.get(pid) if pid else None
            if person is not None and not person.active:
                found.append(f"department {d.code}: {what} {pid!r} is deactivated")
    if not any(org.people[pid].active for pid in org.with_role(ADMIN_ROLE)):
        found.append(f"role {ADMIN_ROLE}: no active person holds it (nobody could administer duly)")
    return found


def _refuse_new_problems(before: Organisation, after: Organisation) -> None:
    """Problems that were there before the change are not this change's fault; new ones refuse it."""
    old = set(organisation_problems(before))
    new = [p for p in organisation_problems(after) if p not in old]
    if new:
        grouped: dict[str, list[str]] = {}
        for problem in new:
            subject, _, message = problem.partition(": ")
            grouped.setdefault(subject, []).append(message)
        raise InvalidInputError("the change would leave the organisation inconsistent; nothing was stored",
                                {subject: "; ".join(messages) for subject, messages in grouped.items()})


def _validated(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInputError("invalid values", {".".join(str(p) for p in e["loc"]): e["msg"]
                                                   for e in exc.errors()}) from None


def _replaced(org: Organisation, *, departments: Iterable[Department] = (),
              people: Iterable[Person] = ()) -> Organisation:
    new_departments = dict(org.departments) | {d.code: d for d in departments}
    new_people = dict(org.people) | {p.id: p for p in people}
    return Organisation.of(org.name, new_departments.values(), new_people.values())


# --- departments ------------------------------------------------------------------------------------------

def department_values(row: DepartmentRow) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, "head": row.head_id, "leader_in_charge": row.leader_in_charge_id}


async def list_departments(session: AsyncSession, *, limit: int, offset: int) -> tuple[int, list[DepartmentRow]]:
    count = (await session.execute(select(func.count()).select_from(DepartmentRow))).scalar_one()
    rows = (await session.execute(select(DepartmentRow).order_by(DepartmentRow.code)  # type: ignore[arg-type]
                                  .limit(limit).offset(offset))).scalars()
    return count, list(rows)


async def create_department(session: AsyncSession, values: dict[str, Any], *, actor_id: str,
                            now: datetime) -> DepartmentRow:
    department: Department = _validated(Department, values)
    if await session.get(DepartmentRow, department.code) is not None:
        raise ConflictError(f"department {department.code!r} exists already; change it with PATCH")
    org = await load_organisation(session)
    _refuse_new_problems(org, _replaced(org, departments=[department]))
    row = DepartmentRow(code=department.code, name=department.name, head_id=department.head,
                        leader_in_charge_id=department.leader_in_charge)
    session.add(row)
    await session.flush()
    await _audit(session, "department.create", "department", row.code, None, department_values(row), actor_id, now)
    return row


async def update_department(session: AsyncSession, code: str, changes: dict[str, Any], *, actor_id: str,
                            now: datetime) -> DepartmentRow:
    row = await session.get(DepartmentRow, code)
    if row is None:
        raise NotFoundError(f"no department {code!r}")
    before = department_values(row)
    department: Department = _validated(Department, before | {k: v for k, v in changes.items()
                                                               if k in DEPARTMENT_FIELDS})
    org = await load_organisation(session)
    _refuse_new_problems(org, _replaced(org, departments=[department]))
    row.name, row.head_id, row.leader_in_charge_id = department.name, department.head, department.leader_in_charge
    await session.flush()
    after = department_values(row)
    if after != before:
        await _audit(session, "department.update", "department", code, before, after, actor_id, now)
    return row


# --- people -----------------------------------------------------------------------------------------------

def person_values(row: PersonRow) -> dict[str, Any]:
    """What an administrator sees of a person, and what the audit records (no password hash)."""
    return {"id": row.id, "name": row.name, "department": row.department_code, "title": row.title,
            "email": row.email, "roles": list(row.roles), "lang": row.lang, "active": row.active}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_people(session: AsyncSession, *, q: str | None, department: str | None, role: str | None,
                      limit: int, offset: int) -> tuple[int, list[PersonRow]]:
    """The directory, by id; `q` matches id or name (any part, any case). Roles are a JSON list, so the
    role filter runs here rather than in SQL (an organisation has thousands of people, not millions)."""
    query = select(PersonRow).order_by(PersonRow.id)  # type: ignore[arg-type]
    if q:
        pattern = f"%{_escape_like(q)}%"
        query = query.where(or_(PersonRow.id.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
                                PersonRow.name.ilike(pattern, escape="\\")))  # type: ignore[attr-defined]
    if department:
        query = query.where(PersonRow.department_code == department)
    rows = list((await session.execute(query)).scalars())
    if role:
        rows = [p for p in rows if role in p.roles]
    return len(rows), rows[offset:offset + limit]


async def get_person(session: AsyncSession, person_id: str) -> PersonRow:
    row = await session.get(PersonRow, person_id)
    if row is None:
        raise NotFoundError(f"no person {person_id!r}")
    return row


async def create_person(session: AsyncSession, values: dict[str, Any], *, password_hash: str | None,
                        actor_id: str, now: datetime) -> PersonRow:
    person: Person = _validated(Person, values)
    if await session.get(PersonRow, person.id) is not None:
        raise ConflictError(f"person {person.id!r} exists already; change them with PATCH")
    org = await load_organisation(session)
    _refuse_new_problems(org, _replaced(org, people=[person]))
    row = PersonRow(id=person.id, name=person.name, title=person.title, department_code=person.department,
                    email=person.email or "", roles=list(person.roles), lang=person.lang, active=person.active,
                    password_hash=password_hash)
    session.add(row)
    await session.flush()
    data = person_values(row) | {"password_set": password_hash is not None}
    await _audit(session, "person.create", "person", row.id, None, data, actor_id, now)
    return row


async def update_person(session: AsyncSession, person_id: str, changes: dict[str, Any], *,
                        password_hash: str | None, actor_id: str, now: datetime) -> PersonRow:
    """Apply `changes` (fields of PERSON_FIELDS); a `password_hash` replaces the password."""
    row = await get_person(session, person_id)
    before = person_values(row)
    person: Person = _validated(Person, before | {k: v for k, v in changes.items() if k in PERSON_FIELDS})
    org = await load_organisation(session)
    _refuse_new_problems(org, _replaced(org, people=[person]))
    row.name, row.department_code, row.title = person.name, person.department, person.title
    row.email, row.roles, row.lang, row.active = person.email or "", list(person.roles), person.lang, person.active
    if password_hash is not None:
        row.password_hash = password_hash
    await session.flush()
    after = person_values(row)
    if after != before or password_hash is not None:
        action = "person.deactivate" if before["active"] and not after["active"] else "person.update"
        await _audit(session, action, "person", person_id, before,
                     after | {"password_reset": password_hash is not None}, actor_id, now)
    return row


async def _audit(session: AsyncSession, action: str, subject_type: str, subject_id: str,
                 before: dict[str, Any] | None, after: dict[str, Any], actor_id: str, now: datetime) -> None:
    await append_audit(session, at=now, actor_id=actor_id, action=action, subject_type=subject_type,
                       subject_id=subject_id, data={"before": before, "after": after})


# --- roles ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleUse:
    role: str
    people: list[str]  # active holders
    inactive: list[str]  # deactivated holders
    policies: list[str]  # current policies whose rules name the role


def roles_named(model: Any) -> set[str]:
    """Every `role:` a policy's rules name (approvers, escalation rungs, obligation owners ...)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                item = getattr(value, name)
                if name == "role" and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    return found


async def roles_in_use(session: AsyncSession, registry: PolicyRegistry) -> list[RoleUse]:
    """The roles people hold and the roles current policies name (a role no one holds shows with no people:
    a policy that relies on it reaches nobody)."""
    org = await load_organisation(session)
    holders: dict[str, list[Person]] = {}
    for person in sorted(org.people.values(), key=lambda p: p.id):
        for role in person.roles:
            holders.setdefault(role, []).append(person)
    named: dict[str, list[str]] = {}
    for policy_id in sorted(registry.current_ids()):
        _, loaded = registry.current(policy_id)
        for role in roles_named(loaded.policy):
            named.setdefault(role, []).append(policy_id)
    return [RoleUse(role=role, people=[p.id for p in holders.get(role, []) if p.active],
                    inactive=[p.id for p in holders.get(role, []) if not p.active], policies=named.get(role, []))
            for role in sorted(set(holders) | set(named))]
