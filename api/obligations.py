"""Reporting obligations: what is due, when, by whom (the statistics office's calendar)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import pendulum
from fastapi import APIRouter, Query, Request
from sqlalchemy import ColumnElement, func, select, true

from api.auth import CurrentPerson, SessionDep
from api.schemas import ObligationList, ObligationPublic
from store.errors import InvalidInputError
from store.tables import ObligationRow, PersonRow

router = APIRouter(prefix="/api", tags=["obligations"])
SEES_ALL = {"admin", "statistician", "president", "vice_president"}


def visible_obligations(person: PersonRow) -> ColumnElement[bool]:
    """The obligations `person` may see, as a WHERE clause: department staff see their department's;
    the statistics office, leaders and administrators see all."""
    if SEES_ALL & set(person.roles):
        return true()
    return ObligationRow.owner_department == person.department_code  # type: ignore[return-value]


@router.get("/obligations", response_model=ObligationList)
async def list_obligations(
    person: CurrentPerson, session: SessionDep, http: Request,
    department: str | None = None,
    state: Annotated[str | None, Query(pattern="^(open|late|submitted)$")] = None,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    due_from: date | None = None, due_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200, offset: Annotated[int, Query(ge=0)] = 0,
) -> ObligationList:
    """Obligations by due date. Department staff see their department's; the statistics office,
    leaders and administrators see all."""
    tz = http.app.state.runtime.timezone
    if due_from and due_to and due_from > due_to:
        raise InvalidInputError("due_from is after due_to", {"due_from": "must not be after due_to"})
    query = select(ObligationRow).where(visible_obligations(person))
    if department:
        query = query.where(ObligationRow.owner_department == department)
    if state:
        query = query.where(ObligationRow.state == state)
    if period:
        query = query.where(ObligationRow.period_key == period)
    if due_from:
        query = query.where(ObligationRow.due_at >= _start(due_from, tz))
    if due_to:
        query = query.where(ObligationRow.due_at < _start(due_to, tz).add(days=1))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(ObligationRow.due_at, ObligationRow.obligation_key)
                                  .limit(limit).offset(offset))).scalars()
    return ObligationList(count=total, items=[
        ObligationPublic(id=r.id or 0, policy=r.policy_id, obligation=r.obligation_key, title=r.title,
                         owner_department=r.owner_department, period=r.period_key,
                         due_at=pendulum.instance(r.due_at).in_timezone(tz), shift=r.shift,
                         provisional=r.provisional, state=r.state) for r in rows])


def _start(day: date, tz: str) -> pendulum.DateTime:
    return pendulum.instance(datetime.combine(day, time()), tz=tz)
