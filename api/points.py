"""Points (积分): each scored reporting policy's half-year tally per department (store.points)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from api.auth import CurrentPerson, SessionDep
from config import clock
from store.obligation_access import SEES_ALL
from store.points import half_year, points
from store.tables import DepartmentRow

router = APIRouter(prefix="/api", tags=["obligations"])


class PointsPublic(BaseModel):
    policy: str
    policy_title: str
    department: str
    half_year: str
    base: int
    on_time: int = Field(description="obligations handed in on time")
    late: int = Field(description="handed in late")
    missing: int = Field(description="past due and not handed in")
    total: int


@router.get("/points", response_model=list[PointsPublic])
async def list_points(person: CurrentPerson, session: SessionDep, http: Request,
                      half: Annotated[str | None, Query(pattern=r"^\d{4}-H[12]$",
                                                        description="e.g. 2026-H2; default: the current one")] = None,
                      department: Annotated[str | None, Query(max_length=64)] = None) -> list[PointsPublic]:
    """Points of the departments you see: your own, those you head or lead (everyone's for the statistics
    office, 绩效办, leaders and administrators)."""
    runtime = http.app.state.runtime
    now = clock.now()
    local = now.in_timezone(runtime.timezone)
    period = half_year(half or f"{local.year}-H{1 if local.month <= 6 else 2}")
    seen: set[str] | None = None
    if not SEES_ALL & set(person.roles):
        seen = {person.department_code} | set((await session.execute(select(DepartmentRow.code).where(or_(
            DepartmentRow.head_id == person.id, DepartmentRow.leader_in_charge_id == person.id)))).scalars())
    if department is not None:
        seen = {department} & seen if seen is not None else {department}
    found = await points(session, runtime, half=period, now=now, departments=seen)
    return [PointsPublic(policy=p.policy_id, policy_title=p.policy_title, department=p.tally.department,
                         half_year=p.tally.half_year, base=p.tally.base, on_time=p.tally.counts["on_time"],
                         late=p.tally.counts["late"], missing=p.tally.counts["missing"], total=p.tally.total)
            for p in found]
