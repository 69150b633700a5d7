"""Reporting obligations: what is due, when, by whom (the statistics office's calendar); mark late, waive.

Visibility (store.obligation_access): department staff see their department's obligations; the statistics
office, 绩效办, leaders and administrators see all; anything else answers 404.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import pendulum
from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_reports import (
    LateCreate,
    ObligationDetail,
    ObligationItem,
    ObligationPage,
    ObligationRulesPublic,
    RequiredAttachment,
    ReviewPublic,
    WaiveCreate,
)
from api.submissions import submission_views
from config import clock
from store.errors import InvalidInputError, NotFoundError
from store.notices import to_local
from store.obligation_access import visible_obligation, visible_obligations
from store.obligation_verbs import mark_late, waive
from store.runtime import Runtime
from store.submissions import list_submissions, obligation_rules
from store.tables import ObligationRow, RequestRow, StepRow

router = APIRouter(prefix="/api", tags=["obligations"])
__all__ = ["router", "visible_obligations"]  # pages.py takes the visibility rule from here
STATES = "open|late|under_review|submitted|waived"


@router.get("/obligations", response_model=ObligationPage)
async def list_obligations(
    person: CurrentPerson, session: SessionDep, http: Request,
    department: Annotated[str | None, Query(max_length=64, description="owning department code")] = None,
    owner: Annotated[str | None, Query(max_length=64, description="owning department code (the policy "
                                                                  "language's word; same as department)")] = None,
    state: Annotated[str | None, Query(pattern=f"^({STATES})$")] = None,
    period: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z-]{1,20}$", description="e.g. 2026-10, 2026-Q4")] = None,
    due_from: date | None = None, due_to: date | None = None,
    provisional: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
) -> ObligationPage:
    """Obligations by due date, filtered; `{count, items}` with `count` before paging."""
    tz = http.app.state.runtime.timezone
    if due_from and due_to and due_from > due_to:
        raise InvalidInputError("due_from is after due_to", {"due_from": "must not be after due_to"})
    query = select(ObligationRow).where(visible_obligations(person))
    for code in {c for c in (department, owner) if c}:
        query = query.where(ObligationRow.owner_department == code)
    if state:
        query = query.where(ObligationRow.state == state)
    if period:
        query = query.where(ObligationRow.period_key == period)
    if due_from:
        query = query.where(ObligationRow.due_at >= _start(due_from, tz))
    if due_to:
        query = query.where(ObligationRow.due_at < _start(due_to, tz).add(days=1))
    if provisional is not None:
        query = query.where(ObligationRow.provisional == provisional)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(ObligationRow.due_at, ObligationRow.obligation_key,
                                                 ObligationRow.owner_department, ObligationRow.id)
                                  .limit(limit).offset(offset))).scalars()
    return ObligationPage(count=total, items=[item(r, tz) for r in rows])


def item(row: ObligationRow, tz: str) -> ObligationItem:
    return ObligationItem(id=row.id or 0, policy=row.policy_id, obligation=row.obligation_key, title=row.title,
                          owner_department=row.owner_department, period=row.period_key,
                          due_at=pendulum.instance(row.due_at).in_timezone(tz), shift=row.shift,
                          provisional=row.provisional, state=row.state, late=row.late or row.state == "late",
                          submitted_at=to_local(row.submitted_at, tz), waived_reason=row.waived_reason,
                          event_ref=row.event_ref, event_at=to_local(row.event_at, tz))


@router.get("/obligations/{obligation_id}", response_model=ObligationDetail)
async def read_obligation(obligation_id: RowId, person: CurrentPerson, session: SessionDep,
                          http: Request) -> ObligationDetail:
    """One obligation with its rules, its submissions (newest first) and its review request's state."""
    row = await visible_obligation(session, obligation_id, person)
    return await detail(session, http.app.state.runtime, row)


async def detail(session: AsyncSession, runtime: Runtime, row: ObligationRow) -> ObligationDetail:
    policy, rules = await obligation_rules(session, runtime, row)
    review_title = None
    if rules.review:
        try:
            review_title = runtime.registry.current_approval(rules.review)[1].title
        except NotFoundError:
            review_title = None
    submissions = await list_submissions(session, row.id or 0)
    review = None
    reviewed = next((s for s in submissions if s.review_request_id), None)
    if reviewed is not None:
        request = await session.get(RequestRow, reviewed.review_request_id)
        steps = (await session.execute(select(StepRow.title).where(
            StepRow.request_id == reviewed.review_request_id, StepRow.state == "pending")
            .order_by(StepRow.position))).scalars()  # type: ignore[arg-type]
        if request is not None:
            review = ReviewPublic(request_id=request.id or 0, state=request.state, open_steps=list(steps))
    return ObligationDetail(
        **item(row, runtime.timezone).model_dump(), policy_title=policy.title,
        rules=ObligationRulesPublic(due=str(getattr(rules.due, "text", rules.due)), at=rules.at.isoformat(),
                                    non_working_day=rules.non_working_day,
                                    attachments=[RequiredAttachment(kind=a.kind, label=a.label or a.kind)
                                                 for a in rules.attachments],
                                    review_policy=rules.review, review_policy_title=review_title, note=rules.note),
        review=review, submissions=await submission_views(session, submissions, runtime.timezone))


@router.post("/obligations/{obligation_id}/late", response_model=ObligationItem)
async def mark_obligation_late(obligation_id: RowId, body: LateCreate, person: CurrentPerson, write: Write,
                               http: Request) -> ObligationItem:
    """Mark an open obligation late now (statistician, performance, admin). Already late: 409."""
    async with write() as session:
        row = await mark_late(session, obligation_id=obligation_id, person=person, reason=body.reason,
                              now=clock.now())
        answer = write.respond(item(row, http.app.state.runtime.timezone))
    return answer


@router.post("/obligations/{obligation_id}/waive", response_model=ObligationItem)
async def waive_obligation(obligation_id: RowId, body: WaiveCreate, person: CurrentPerson, write: Write,
                           http: Request) -> ObligationItem:
    """Waive (免报) an open or late obligation with a reason (statistician, performance, admin); its
    reminders and escalations are cancelled."""
    async with write() as session:
        row = await waive(session, obligation_id=obligation_id, person=person, reason=body.reason, now=clock.now())
        answer = write.respond(item(row, http.app.state.runtime.timezone))
    return answer


def _start(day: date, tz: str) -> pendulum.DateTime:
    return pendulum.instance(datetime.combine(day, time()), tz=tz)
