"""The organisation in the database: seeded from a YAML file, read as a core snapshot."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.org import Department, Organisation, OrganisationFile, Person
from store.errors import InvalidInputError
from store.tables import DepartmentRow, PersonRow

EMAIL_DOMAIN = "hospital.example"


def read_organisation_file(path: Path) -> OrganisationFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = OrganisationFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{path}: cannot read the organisation file: {exc}") from None
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise InvalidInputError("\n".join(lines)) from None
    problems = Organisation.of(parsed.organisation, parsed.departments, parsed.people).problems()
    if problems:
        raise InvalidInputError("\n".join(f"{path}: {p}" for p in problems))
    return parsed


async def seed_organisation(session: AsyncSession, org: OrganisationFile, *,
                            password_hash: str | None) -> int:
    """Insert the departments and people that are not there yet; returns how many people were added."""
    existing_departments = set((await session.execute(select(DepartmentRow.code))).scalars())
    for d in org.departments:
        if d.code not in existing_departments:
            session.add(DepartmentRow(code=d.code, name=d.name, head_id=d.head,
                                      leader_in_charge_id=d.leader_in_charge))
    await session.flush()
    existing_people = set((await session.execute(select(PersonRow.id))).scalars())
    added = 0
    for p in org.people:
        if p.id in existing_people:
            continue
        session.add(PersonRow(id=p.id, name=p.name, title=p.title, department_code=p.department,
                              email=p.email or f"{p.id}@{EMAIL_DOMAIN}", roles=list(p.roles), lang=p.lang,
                              active=p.active, password_hash=password_hash))
        added += 1
    await session.flush()
    return added


async def load_organisation(session: AsyncSession, name: str = "") -> Organisation:
    departments = [Department(code=d.code, name=d.name, head=d.head_id, leader_in_charge=d.leader_in_charge_id)
                   for d in (await session.execute(select(DepartmentRow))).scalars()]
    people = [Person(id=p.id, name=p.name, department=p.department_code, title=p.title, email=p.email,
                     roles=tuple(p.roles), lang=p.lang, active=p.active)
              for p in (await session.execute(select(PersonRow))).scalars()]
    return Organisation.of(name, departments, people)


async def people_by_id(session: AsyncSession, ids: set[str]) -> dict[str, PersonRow]:
    if not ids:
        return {}
    rows = (await session.execute(select(PersonRow).where(PersonRow.id.in_(sorted(ids))))).scalars()  # type: ignore[attr-defined]
    return {p.id: p for p in rows}
