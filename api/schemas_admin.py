"""Bodies and answers of the administration routes: departments, people, roles, policies, holiday years."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas import Body, Text

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64,
                            description="department code: lower-case letter, then letters, digits, _ or -")]
PersonId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64,
                                description="account id, e.g. liu.yang")]
Role = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", max_length=64, description="a role, e.g. cfo")]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
Email = Annotated[Text, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Password = Annotated[Text, Field(min_length=8, max_length=1024, description="at least 8 characters")]
Lang = Literal["zh-CN", "en"]


# --- departments ------------------------------------------------------------------------------------------

class DepartmentCreate(Body):
    code: Code
    name: Name
    head: PersonId | None = None
    leader_in_charge: PersonId | None = Field(default=None, description="分管领导")


class DepartmentUpdate(Body):
    """Only the fields given change; `null` clears head or leader in charge."""

    name: Name | None = None
    head: PersonId | None = None
    leader_in_charge: PersonId | None = None


class DepartmentPublic(BaseModel):
    code: str
    name: str
    head: str | None
    leader_in_charge: str | None


class DepartmentList(BaseModel):
    count: int
    items: list[DepartmentPublic]


# --- people -----------------------------------------------------------------------------------------------

class PersonCreate(Body):
    id: PersonId
    name: Name
    department: Code
    title: Annotated[Text, Field(max_length=200)] = ""
    email: Email
    roles: list[Role] = Field(default_factory=list, max_length=50)
    lang: Lang = "zh-CN"
    active: bool = True
    password: Password | None = Field(default=None, description="initial password (none: cannot sign in yet)")


class PersonUpdate(Body):
    """Only the fields given change; `password` resets the password; `active: false` deactivates."""

    name: Name | None = None
    department: Code | None = None
    title: Annotated[Text, Field(max_length=200)] | None = None
    email: Email | None = None
    roles: list[Role] | None = Field(default=None, max_length=50)
    lang: Lang | None = None
    active: bool | None = None
    password: Password | None = None


class PersonEntry(BaseModel):
    """A person in the directory; `email` only for administrators."""

    id: str
    name: str
    title: str
    department: str
    roles: list[str]
    active: bool
    lang: str | None = None
    email: str | None = None


class PersonList(BaseModel):
    count: int
    items: list[PersonEntry]


class RolePublic(BaseModel):
    role: str
    people: list[str] = Field(description="active people who hold the role")
    inactive: list[str] = Field(description="deactivated people who hold it")
    policies: list[str] = Field(description="current policies whose rules name the role")


class RoleList(BaseModel):
    count: int
    items: list[RolePublic]


# --- policies ---------------------------------------------------------------------------------------------

class ProblemPublic(BaseModel):
    line: int
    column: int
    severity: str
    message: str
    hint: str | None = None


class PolicyUploaded(BaseModel):
    id: str
    kind: str
    title: str
    version: int | None = Field(description="the version now current (None on a dry run)")
    content_hash: str
    new_version: bool = Field(description="false when this text was stored before (or on a dry run)")
    dry_run: bool
    warnings: list[ProblemPublic]


class PolicyVersionSummary(BaseModel):
    version: int
    content_hash: str
    source: str
    loaded_at: datetime
    current: bool


class PolicyVersionPublic(BaseModel):
    id: str
    kind: str
    title: str
    version: int
    content_hash: str
    source: str
    loaded_at: datetime
    current: bool
    text: str


class PolicyDetail(PolicyVersionPublic):
    versions: list[PolicyVersionSummary]


# --- holiday years ----------------------------------------------------------------------------------------

class HolidayYearSummary(BaseModel):
    year: int
    source: Literal["shipped", "uploaded"]
    notice: str = Field(description="the official notice the arrangement copies")
    content_hash: str
    overrides_shipped: bool
    uploaded_by: str | None
    uploaded_at: datetime | None


class HolidayYearList(BaseModel):
    count: int
    items: list[HolidayYearSummary]


class HolidayYearPublic(HolidayYearSummary):
    text: str
