"""Report submissions over HTTP: hand in a report for an obligation, list an obligation's submissions.

Reviews are decided through the approval routes (/api/requests/{id}/steps/{id}/decision); the submission
follows the review request's end (store.submissions.review_finished).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.attachments import public as attachment_public
from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_reports import SubmissionCreate, SubmissionList, SubmissionPublic
from config import clock
from flows.schedule import nudge
from store.attachments import without_content
from store.notices import to_local
from store.obligation_access import visible_obligation
from store.submissions import count_submissions, list_submissions, submit_report
from store.tables import AttachmentRow, SubmissionRow

router = APIRouter(prefix="/api", tags=["submissions"])


async def submission_views(session: AsyncSession, rows: Sequence[SubmissionRow], tz: str) -> list[SubmissionPublic]:
    ids = [r.id for r in rows]
    files: dict[int, list[AttachmentRow]] = {}
    if ids:
        for a in (await session.execute(select(AttachmentRow).options(without_content()).where(
                AttachmentRow.owner_type == "submission", AttachmentRow.owner_id.in_(ids))  # type: ignore[union-attr]
                .order_by(AttachmentRow.id))).scalars():  # type: ignore[arg-type]
            files.setdefault(a.owner_id or 0, []).append(a)
    return [SubmissionPublic(id=r.id or 0, obligation_id=r.obligation_id, kind=r.kind, corrects=r.corrects_id,
                             submitted_by=r.submitted_by, submitted_at=to_local(r.submitted_at, tz),  # type: ignore[arg-type]
                             note=r.note, late=r.late, state=r.state, review_request_id=r.review_request_id,
                             reviewed_at=to_local(r.reviewed_at, tz),
                             attachments=[attachment_public(a, tz) for a in files.get(r.id or 0, [])])
            for r in rows]


@router.post("/obligations/{obligation_id}/submissions", status_code=status.HTTP_201_CREATED,
             response_model=SubmissionPublic)
async def create_submission(obligation_id: RowId, body: SubmissionCreate, person: CurrentPerson, write: Write,
                            http: Request) -> SubmissionPublic:
    """Hand in a report: its attachments must cover the required kinds (422 lists what is missing). After
    the due time it is a late report (补报); naming an accepted submission in `corrects` makes a correction
    (修报). With a review chain it is under review until the review request ends."""
    runtime = http.app.state.runtime
    async with write() as session:
        row = await submit_report(session, runtime, obligation_id=obligation_id, person=person,
                                  attachment_ids=body.attachments, note=body.note, corrects=body.corrects,
                                  review_form=body.review_form, now=clock.now())
        answer = write.respond((await submission_views(session, [row], runtime.timezone))[0], status_code=201)
    nudge(http.app.state.scheduler)
    return answer


@router.get("/obligations/{obligation_id}/submissions", response_model=SubmissionList)
async def read_submissions(obligation_id: RowId, person: CurrentPerson, session: SessionDep, http: Request,
                           limit: Annotated[int, Query(ge=1, le=500)] = 100,
                           offset: Annotated[int, Query(ge=0)] = 0) -> SubmissionList:
    """The obligation's submissions, newest first (corrections point at what they correct)."""
    await visible_obligation(session, obligation_id, person)
    rows = await list_submissions(session, obligation_id, limit=limit, offset=offset)
    items = await submission_views(session, rows, http.app.state.runtime.timezone)
    return SubmissionList(count=await count_submissions(session, obligation_id), items=items)
