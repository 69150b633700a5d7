"""Approval requests: file, read, decide; and the approver's inbox ("my tasks")."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import DecisionCreate, RequestCreate, RequestPublic, RowId, StepPublic, TaskList, TaskPublic
from config import clock
from flows.schedule import nudge
from store.approvals import decide, file_request, visible_request
from store.notices import to_local
from store.tables import AssignmentRow, PersonRow, RequestRow, StepRow

router = APIRouter(prefix="/api", tags=["requests"])


async def _public(session: SessionDep, request: RequestRow, tz: str) -> RequestPublic:
    steps = (await session.execute(select(StepRow).where(StepRow.request_id == request.id)
                                   .order_by(StepRow.position)
                                   .execution_options(populate_existing=True))).scalars()  # type: ignore[arg-type]
    return RequestPublic(
        id=request.id or 0, policy=request.policy_id, title=request.title, state=request.state,
        requester=request.requester_id, form=request.form, created_at=to_local(request.created_at, tz),  # type: ignore[arg-type]
        decided_at=to_local(request.decided_at, tz),
        steps=[StepPublic(id=s.id or 0, position=s.position, key=s.step_key, title=s.title, mode=s.mode,
                          state=s.state, assignees=s.assignees, approved_by=s.approved_by,
                          due_at=to_local(s.due_at, tz), provisional=s.provisional,
                          decided_at=to_local(s.decided_at, tz)) for s in steps])


@router.post("/requests", status_code=status.HTTP_201_CREATED, response_model=RequestPublic)
async def create_request(body: RequestCreate, person: CurrentPerson, write: Write, http: Request) -> RequestPublic:
    """File a request under an approval policy; the first step is assigned at once."""
    runtime = http.app.state.runtime
    async with write() as session:
        row = await file_request(session, runtime, policy_id=body.policy, form=body.form,
                                 requester_id=person.id, now=clock.now())
        answer = write.respond(await _public(session, row, runtime.timezone), status_code=201)
    nudge(http.app.state.scheduler)
    return answer


@router.get("/requests/{request_id}", response_model=RequestPublic)
async def read_request(request_id: RowId, person: CurrentPerson, session: SessionDep, http: Request) -> RequestPublic:
    row = await visible_request(session, request_id, person.id)
    return await _public(session, row, http.app.state.runtime.timezone)


@router.post("/requests/{request_id}/steps/{step_id}/decision", response_model=RequestPublic)
async def decide_step(request_id: RowId, step_id: RowId, body: DecisionCreate, person: CurrentPerson,
                      write: Write, http: Request) -> RequestPublic:
    """Approve, or reject with a reason. 409 if the step was already decided (e.g. a concurrent click)."""
    runtime = http.app.state.runtime
    async with write() as session:
        row = await decide(session, runtime, request_id=request_id, step_id=step_id, actor_id=person.id,
                           verb=body.verb, reason=body.reason, now=clock.now())
        answer = write.respond(await _public(session, row, runtime.timezone))
    nudge(http.app.state.scheduler)
    return answer


@router.get("/tasks", response_model=TaskList)
async def my_tasks(person: CurrentPerson, session: SessionDep, http: Request) -> TaskList:
    """Open steps assigned to me, oldest deadline first."""
    tz = http.app.state.runtime.timezone
    now = clock.now()
    rows = (await session.execute(
        select(StepRow, RequestRow, PersonRow)
        .join(AssignmentRow, AssignmentRow.step_id == StepRow.id)
        .join(RequestRow, RequestRow.id == StepRow.request_id)
        .join(PersonRow, PersonRow.id == RequestRow.requester_id)
        .where(AssignmentRow.person_id == person.id, AssignmentRow.open, AssignmentRow.kind == "approver",
               StepRow.state == "pending")
        .order_by(StepRow.due_at, StepRow.id))).all()  # type: ignore[arg-type]
    items = [TaskPublic(request_id=r.id or 0, step_id=s.id or 0, title=r.title, step_title=s.title,
                        requester=p.id, requester_name=p.name, due_at=to_local(s.due_at, tz), provisional=s.provisional,
                        overdue=bool(s.due_at and s.due_at < now)) for s, r, p in rows]
    return TaskList(count=len(items), overdue=sum(i.overdue for i in items), items=items)
