"""Administration over REST: departments, people, roles, policy upload, holiday-year upload.

Reading the directory (departments, people) is open to everyone signed in (e-mail addresses only to
administrators), and so is reading policies and holiday years; every change, and the role overview,
is for the role `admin` only (403 "administrators only": these are collections, not objects whose
existence could leak). Each change is validated as a whole, audited, and answered inside its transaction.
"""

from __future__ import annotations

import pathlib
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from sqlalchemy import select

from api.auth import CurrentPerson, SessionDep, hash_password
from api.idempotency import Write
from api.schemas_admin import (
    DepartmentCreate,
    DepartmentList,
    DepartmentPublic,
    DepartmentUpdate,
    HolidayYearList,
    HolidayYearPublic,
    HolidayYearSummary,
    PersonCreate,
    PersonEntry,
    PersonList,
    PersonUpdate,
    PolicyDetail,
    PolicyUploaded,
    PolicyVersionPublic,
    PolicyVersionSummary,
    ProblemPublic,
    RoleList,
    RolePublic,
)
from config import clock
from flows.schedule import nudge
from policies.calendar import SHIPPED_HOLIDAYS
from store import holiday_years, org_admin
from store.errors import ForbiddenError, InvalidInputError, NotFoundError
from store.holiday_years import KnownYear
from store.policy_uploads import upload_policy
from store.tables import DepartmentRow, PersonRow, PolicyVersionRow

router = APIRouter(prefix="/api", tags=["administration"])

Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, description="skip this many items")]
PolicyIdPath = Annotated[str, Path(max_length=64, description="policy id, e.g. it-hardware-purchase")]
DepartmentCode = Annotated[str, Path(max_length=64)]
PersonIdPath = Annotated[str, Path(max_length=64)]
Year = Annotated[int, Path(ge=holiday_years.FIRST_YEAR, le=holiday_years.LAST_YEAR, description="e.g. 2027")]

MAX_YAML_BYTES = 1024 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_YAML_BODY = {"requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}}
                                                            for t in ("application/yaml", "text/plain")}}}


def is_admin(person: PersonRow) -> bool:
    return "admin" in person.roles


async def administrator(person: CurrentPerson) -> PersonRow:
    if not is_admin(person):
        raise ForbiddenError("administrators only")
    return person


Admin = Annotated[PersonRow, Depends(administrator)]


async def yaml_text(http: Request) -> str:
    """The raw YAML body: a YAML or plain-text content type, at most 1 MiB, UTF-8."""
    content_type = http.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in YAML_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"send the YAML text as the body with Content-Type: application/yaml, text/yaml or "
                            f"text/plain (got {content_type or 'none'!r})")
    declared = http.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_YAML_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_YAML_BYTES} bytes")
    body = await http.body()
    if len(body) > MAX_YAML_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_YAML_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the body is not UTF-8 text", {"body": f"invalid byte at offset {exc.start}"}) from None
    if "\x00" in text:
        raise InvalidInputError("the body may not contain NUL characters", {"body": "NUL character"})
    return text


# --- departments ------------------------------------------------------------------------------------------

def _department(row: DepartmentRow) -> DepartmentPublic:
    return DepartmentPublic(**org_admin.department_values(row))


@router.get("/departments", response_model=DepartmentList)
async def departments(person: CurrentPerson, session: SessionDep, limit: Limit = 100,
                      offset: Offset = 0) -> DepartmentList:
    """Every department with its head and leader in charge (分管领导), by code."""
    count, rows = await org_admin.list_departments(session, limit=limit, offset=offset)
    return DepartmentList(count=count, items=[_department(r) for r in rows])


@router.post("/departments", status_code=status.HTTP_201_CREATED, response_model=DepartmentPublic)
async def create_department(body: DepartmentCreate, person: Admin, write: Write) -> DepartmentPublic:
    async with write() as session:
        row = await org_admin.create_department(session, body.model_dump(), actor_id=person.id, now=clock.now())
        return write.respond(_department(row), status_code=201)


@router.patch("/departments/{code}", response_model=DepartmentPublic)
async def update_department(code: DepartmentCode, body: DepartmentUpdate, person: Admin,
                            write: Write) -> DepartmentPublic:
    """Change name, head or leader in charge; refused (422, nothing stored) if it breaks the organisation."""
    async with write() as session:
        row = await org_admin.update_department(session, code, body.model_dump(exclude_unset=True),
                                                actor_id=person.id, now=clock.now())
        return write.respond(_department(row))


# --- people -----------------------------------------------------------------------------------------------

def _entry(row: PersonRow, *, admin: bool) -> PersonEntry:
    values = org_admin.person_values(row)
    if not admin:
        values.pop("email")
        values.pop("lang")
    return PersonEntry(**values)


@router.get("/people", response_model=PersonList, response_model_exclude_none=True)
async def people(person: CurrentPerson, session: SessionDep,
                 q: Annotated[str | None, Query(max_length=100, description="part of the id or name")] = None,
                 department: Annotated[str | None, Query(max_length=64)] = None,
                 role: Annotated[str | None, Query(max_length=64)] = None,
                 limit: Limit = 100, offset: Offset = 0) -> PersonList:
    """The directory; e-mail addresses and languages are shown to administrators only."""
    count, rows = await org_admin.list_people(session, q=q, department=department, role=role,
                                              limit=limit, offset=offset)
    return PersonList(count=count, items=[_entry(r, admin=is_admin(person)) for r in rows])


@router.get("/people/{person_id}", response_model=PersonEntry, response_model_exclude_none=True)
async def read_person(person_id: PersonIdPath, person: CurrentPerson, session: SessionDep) -> PersonEntry:
    return _entry(await org_admin.get_person(session, person_id), admin=is_admin(person))


@router.post("/people", status_code=status.HTTP_201_CREATED, response_model=PersonEntry)
async def create_person(body: PersonCreate, person: Admin, write: Write) -> PersonEntry:
    """Add a person (with an initial password, hashed with argon2)."""
    password_hash = hash_password(body.password) if body.password else None
    async with write() as session:
        row = await org_admin.create_person(session, body.model_dump(exclude={"password"}),
                                            password_hash=password_hash, actor_id=person.id, now=clock.now())
        return write.respond(_entry(row, admin=True), status_code=201)


@router.patch("/people/{person_id}", response_model=PersonEntry)
async def update_person(person_id: PersonIdPath, body: PersonUpdate, person: Admin, write: Write) -> PersonEntry:
    """Change anything but the id; `password` resets it; `active: false` deactivates (no deletion)."""
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    nulls = {key: "give a value or leave the field out" for key, value in changes.items() if value is None}
    if nulls:
        raise InvalidInputError(f"{', '.join(nulls)} cannot be null", nulls)
    password_hash = hash_password(body.password) if body.password else None
    async with write() as session:
        row = await org_admin.update_person(session, person_id, changes, password_hash=password_hash,
                                            actor_id=person.id, now=clock.now())
        return write.respond(_entry(row, admin=True))


@router.get("/roles", response_model=RoleList)
async def roles(person: Admin, session: SessionDep, http: Request) -> RoleList:
    """The roles people hold and the roles current policies name, with who holds them and which policies
    name them (a role that no active person holds reaches nobody)."""
    found = await org_admin.roles_in_use(session, http.app.state.runtime.registry)
    return RoleList(count=len(found), items=[RolePublic(role=r.role, people=r.people, inactive=r.inactive,
                                                        policies=r.policies) for r in found])


# --- policies ---------------------------------------------------------------------------------------------

@router.post("/policies", status_code=status.HTTP_201_CREATED, response_model=PolicyUploaded,
             openapi_extra=_YAML_BODY, responses={200: {"description": "the same text was stored before"}})
async def upload(http: Request, response: Response, person: Admin, write: Write,
                 dry_run: Annotated[bool, Query(description="check only; store nothing")] = False) -> PolicyUploaded:
    """Upload a policy as YAML text: loaded and linted like `duly check` against the organisation in the
    database (422 with every problem's line and column); stored as a new version and made current (201),
    or, for a text stored before, that version made current again (200). Requests already filed keep
    their version."""
    text = await yaml_text(http)
    runtime = http.app.state.runtime
    async with write() as session:
        result = await upload_policy(session, runtime.registry, text=text, actor_id=person.id,
                                     now=clock.now(), dry_run=dry_run)
        policy = result.loaded.policy
        answer = PolicyUploaded(id=policy.id, kind=policy.kind, title=policy.title, version=result.version_id,
                                content_hash=result.loaded.content_hash, new_version=result.created,
                                dry_run=dry_run, warnings=[ProblemPublic(line=w.line, column=w.column,
                                                                         severity=w.severity, message=w.message,
                                                                         hint=w.hint) for w in result.warnings])
        response.status_code = 201 if result.created else 200
        answer = write.respond(answer, status_code=response.status_code)
    if result.version_id is not None:
        runtime.registry.publish(result.version_id, result.loaded)  # committed: new requests use it now
        if not dry_run:
            nudge(http.app.state.scheduler, "materialise")  # open obligations move to the new version's dates
    return answer


def _version(row: PolicyVersionRow) -> PolicyVersionPublic:
    return PolicyVersionPublic(id=row.policy_id, kind=row.kind, title=row.title, version=row.id or 0,
                               content_hash=row.content_hash, source=row.source, loaded_at=row.loaded_at,
                               current=row.current, text=row.text)


@router.get("/policies/{policy_id}", response_model=PolicyDetail, tags=["policies"])
async def read_policy(policy_id: PolicyIdPath, person: CurrentPerson, session: SessionDep) -> PolicyDetail:
    """The current version (text included) and every stored version, newest first."""
    rows = list((await session.execute(select(PolicyVersionRow).where(PolicyVersionRow.policy_id == policy_id)
                                       .order_by(PolicyVersionRow.id.desc()))).scalars())  # type: ignore[union-attr]
    if not rows:
        raise NotFoundError(f"no policy {policy_id!r}")
    shown = next((r for r in rows if r.current), rows[0])
    return PolicyDetail(**_version(shown).model_dump(), versions=[
        PolicyVersionSummary(version=r.id or 0, content_hash=r.content_hash, source=r.source,
                             loaded_at=r.loaded_at, current=r.current) for r in rows])


@router.get("/policies/{policy_id}/versions/{version}", response_model=PolicyVersionPublic, tags=["policies"])
async def read_policy_version(policy_id: PolicyIdPath, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                              person: CurrentPerson, session: SessionDep) -> PolicyVersionPublic:
    row = await session.get(PolicyVersionRow, version)
    if row is None or row.policy_id != policy_id:
        raise NotFoundError(f"no version {version} of policy {policy_id!r}")
    return _version(row)


# --- holiday years ----------------------------------------------------------------------------------------

def _holidays_dir(http: Request) -> pathlib.Path:
    settings = http.app.state.runtime.settings
    return settings.holidays_dir if settings is not None else SHIPPED_HOLIDAYS


def _year_summary(known: KnownYear) -> dict[str, object]:
    return {"year": known.year, "source": known.source, "notice": known.notice, "content_hash": known.content_hash,
            "overrides_shipped": known.overrides_shipped, "uploaded_by": known.uploaded_by,
            "uploaded_at": known.uploaded_at}


@router.get("/holidays", response_model=HolidayYearList, tags=["calendar"])
async def holiday_years_known(person: CurrentPerson, session: SessionDep, http: Request) -> HolidayYearList:
    """The years with an official arrangement (other years are provisional: weekdays only, flagged)."""
    years = await holiday_years.known_years(session, _holidays_dir(http))
    items = [HolidayYearSummary(**_year_summary(y)) for _, y in sorted(years.items())]  # type: ignore[arg-type]
    return HolidayYearList(count=len(items), items=items)


@router.get("/holidays/{year}", response_model=HolidayYearPublic, tags=["calendar"])
async def holiday_year(year: Year, person: CurrentPerson, session: SessionDep, http: Request) -> HolidayYearPublic:
    years = await holiday_years.known_years(session, _holidays_dir(http))
    if year not in years:
        raise NotFoundError(f"no arrangement for {year}: its dates are provisional")
    return HolidayYearPublic(**_year_summary(years[year]), text=years[year].text)  # type: ignore[arg-type]


@router.put("/holidays/{year}", response_model=HolidayYearPublic, openapi_extra=_YAML_BODY, tags=["calendar"],
            responses={201: {"description": "the first upload of this year"}})
async def upload_holiday_year(year: Year, http: Request, response: Response, person: Admin,
                              write: Write) -> HolidayYearPublic:
    """Upload one year's arrangement (format of config/holidays/2026.yaml), checked like `duly check`;
    it replaces the shipped file of that year and the calendar is rebuilt at once, so new due dates in
    that year are no longer provisional. Open obligations get their new due dates at the next
    materialise-obligations run (started at once in embedded mode); approval steps keep theirs."""
    text = await yaml_text(http)
    runtime = http.app.state.runtime
    async with write() as session:
        _, created, calendar = await holiday_years.upload_year(
            session, year=year, text=text, directory=_holidays_dir(http), actor_id=person.id,
            now=clock.now())
        known = (await holiday_years.known_years(session, _holidays_dir(http)))[year]
        response.status_code = 201 if created else 200
        answer = write.respond(HolidayYearPublic(**_year_summary(known), text=known.text),  # type: ignore[arg-type]
                               status_code=response.status_code)
    runtime.calendar = calendar  # committed: due dates computed from now on use it
    nudge(http.app.state.scheduler, "materialise")
    return answer
