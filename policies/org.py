"""The organisation as the core sees it: a frozen snapshot of people and departments.

The database holds the organisation; the shell hands the core a snapshot. Policies refer to roles and
departments, and the core resolves them to people here, with a reason for every choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class Department(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str
    head: str | None = None
    leader_in_charge: str | None = None


class Person(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    department: str
    title: str = ""
    email: str | None = None
    roles: tuple[str, ...] = ()
    lang: str = "zh-CN"
    active: bool = True


class OrganisationFile(BaseModel):
    """The seed file format (config/demo-organisation.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    organisation: str
    departments: list[Department]
    people: list[Person]


@dataclass(frozen=True)
class Organisation:
    """A read-only snapshot; look-ups by id and by role."""

    name: str
    departments: dict[str, Department]
    people: dict[str, Person]
    _by_role: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, name: str, departments: Iterable[Department], people: Iterable[Person]) -> Organisation:
        people_map = {p.id: p for p in people}
        by_role: dict[str, list[str]] = {}
        for p in people_map.values():
            for role in p.roles:
                by_role.setdefault(role, []).append(p.id)
        return cls(name=name, departments={d.code: d for d in departments}, people=people_map,
                   _by_role={r: tuple(sorted(ids)) for r, ids in by_role.items()})

    def with_role(self, role: str) -> tuple[str, ...]:
        return self._by_role.get(role, ())

    def department_of(self, person_id: str) -> Department | None:
        person = self.people.get(person_id)
        return self.departments.get(person.department) if person else None

    def label(self, person_id: str) -> str:
        """"刘洋 liu.yang": how a person is named in traces and explanations."""
        person = self.people.get(person_id)
        return f"{person.name} {person.id}" if person else person_id

    def department_label(self, code: str) -> str:
        """"综合管理部 (general)"."""
        department = self.departments.get(code)
        return f"{department.name} ({code})" if department else code

    def superior_of(self, person_id: str) -> tuple[str, str] | None:
        """The person's superior and why, or None at the top.

        Rule: the head of the person's department; when the person is that head (or the department has
        no head), the department's leader in charge (分管领导). Nobody is their own superior.
        """
        department = self.department_of(person_id)
        if department is None:
            return None
        where = self.department_label(department.code)
        if department.head and department.head != person_id:
            return department.head, f"head of {where}"
        if department.leader_in_charge and department.leader_in_charge != person_id:
            return department.leader_in_charge, f"leader in charge (分管领导) of {where}"
        return None

    def problems(self) -> list[str]:
        """References that point nowhere (a head who is not a person, a person in no department)."""
        found = []
        for d in self.departments.values():
            for what, pid in (("head", d.head), ("leader_in_charge", d.leader_in_charge)):
                if pid is not None and pid not in self.people:
                    found.append(f"department {d.code}: {what} {pid!r} is not a person")
        for p in self.people.values():
            if p.department not in self.departments:
                found.append(f"person {p.id}: department {p.department!r} does not exist")
        return found
