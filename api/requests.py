"""Approval requests: file, list, read, act on them (every verb), their timeline; the approver's inbox
("my tasks") and bulk approval.

The verbs, one route each kind:
- step verbs (approve, reject, 退回 send_back, 转交 transfer, 加签 add_approver), by an assignee of the open
  step or their delegate: `POST /api/requests/{id}/steps/{step_id}/decision` with `{"verb", ...}`;
- request verbs, by the requester: `POST /api/requests/{id}/withdraw` (撤回), `.../resubmit`;
- `POST /api/requests/{id}/comments` (评论), by the requester or anyone who holds or held a place.
Refusals: 422 for a missing reason or bad target, 409 when the step is no longer open (or a concurrent
action won), 403 with `problems.rule` (the core's reason code) for any other rule, 404 for a request the
caller may not see. Bodies never set state, steps, approvers or form values.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select

from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import (
    BulkApprove,
    BulkItemResult,
    BulkResult,
    CommentCreate,
    DecisionCreate,
    ItemError,
    RequestCreate,
    RequestList,
    RequestPublic,
    RequestSummary,
    ResubmitCreate,
    RowId,
    StepPublic,
    TaskList,
    TaskPublic,
    Timeline,
    TimelineEntry,
    WithdrawCreate,
)
from config import clock
from flows.schedule import nudge
from store.approvals import file_request, visible_request
from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from store.notices import to_local
from store.request_lists import list_requests, open_tasks, task_counts
from store.request_verbs import act
from store.tables import RequestRow, StepRow
from store.timeline import language, request_timeline

router = APIRouter(prefix="/api", tags=["requests"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


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
                          decided_at=to_local(s.decided_at, tz), added_by=s.added_by) for s in steps])


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


@router.get("/requests", response_model=RequestList)
async def list_my_requests(person: CurrentPerson, session: SessionDep, http: Request,
                           scope: Literal["mine", "assigned", "all"] = "all",
                           state: Literal["pending", "returned", "approved", "rejected", "withdrawn"] | None = None,
                           policy: Annotated[str | None, Query(max_length=100)] = None,
                           created_from: date | None = None, created_to: date | None = None,
                           limit: Limit = 100, offset: Offset = 0) -> RequestList:
    """Requests I may see, newest first. `scope`: `mine` (I filed), `assigned` (I hold or held a place, or
    was escalated to), `all` (both; an administrator: every request). `created_from`/`created_to` are days
    in the institution's time zone, both included."""
    tz = http.app.state.runtime.timezone
    total, page = await list_requests(session, person=person, scope=scope, state=state, policy=policy,
                                      created_from=created_from, created_to=created_to, tz=tz, limit=limit,
                                      offset=offset)
    return RequestList(count=total, items=[RequestSummary(
        id=r.id or 0, policy=r.policy_id, title=r.title, state=r.state, requester=r.requester_id,
        requester_name=p.name, created_at=to_local(r.created_at, tz), decided_at=to_local(r.decided_at, tz),  # type: ignore[arg-type]
        open_step=open_step) for r, p, open_step in page])


@router.get("/requests/{request_id}", response_model=RequestPublic)
async def read_request(request_id: RowId, person: CurrentPerson, session: SessionDep, http: Request) -> RequestPublic:
    row = await visible_request(session, request_id, person.id, now=clock.now())
    return await _public(session, row, http.app.state.runtime.timezone)


@router.get("/requests/{request_id}/timeline", response_model=Timeline)
async def read_timeline(request_id: RowId, person: CurrentPerson, session: SessionDep, http: Request,
                        lang: Literal["zh-CN", "en"] | None = None, limit: Limit = 100,
                        offset: Offset = 0) -> Timeline:
    """What happened to the request, oldest first, in words: Chinese by default, English with `lang=en`
    or when the caller's language is English; times in the institution's time zone."""
    await visible_request(session, request_id, person.id, now=clock.now())
    entries = await request_timeline(session, request_id, tz=http.app.state.runtime.timezone,
                                     lang=language(lang, person.lang))
    return Timeline(count=len(entries), items=[TimelineEntry(
        seq=e.seq, at=e.at, action=e.action, actor=e.actor, actor_name=e.actor_name, text=e.text, tone=e.tone)
        for e in entries[offset:offset + limit]])


@router.post("/requests/{request_id}/steps/{step_id}/decision", response_model=RequestPublic)
async def decide_step(request_id: RowId, step_id: RowId, body: DecisionCreate, person: CurrentPerson,
                      write: Write, http: Request) -> RequestPublic:
    """Act on the open step: `approve`; `reject` with a `reason`; `send_back` (退回) with a `reason` and
    optionally `to` (requester, previous or an earlier step's key); `transfer` (转交) to a person `to`;
    `add_approver` (加签) with `people` and `position` (before, after, parallel). A delegate may name the
    assignee they act for in `on_behalf_of`. 409 if the step was already decided (e.g. a concurrent click)."""
    return await _act(http, person, write, request_id, verb=body.verb, step_id=step_id, reason=body.reason,
                      to=body.to, people=body.people, position=body.position, on_behalf_of=body.on_behalf_of)


@router.post("/requests/{request_id}/withdraw", response_model=RequestPublic)
async def withdraw_request(request_id: RowId, body: WithdrawCreate, person: CurrentPerson, write: Write,
                           http: Request) -> RequestPublic:
    """撤回: the requester withdraws the request, until the first decision on it (or while it is sent back
    to them), unless the policy says `withdraw: never`. The requester gets a confirmation mail."""
    return await _act(http, person, write, request_id, verb="withdraw", reason=body.reason)


@router.post("/requests/{request_id}/resubmit", response_model=RequestPublic)
async def resubmit_request(request_id: RowId, body: ResubmitCreate, person: CurrentPerson, write: Write,
                           http: Request) -> RequestPublic:
    """The requester sends a request that was sent back to them (退回) on; its first waiting step opens."""
    return await _act(http, person, write, request_id, verb="resubmit")


@router.post("/requests/{request_id}/comments", status_code=status.HTTP_201_CREATED, response_model=RequestPublic)
async def comment_request(request_id: RowId, body: CommentCreate, person: CurrentPerson, write: Write,
                          http: Request) -> RequestPublic:
    """评论: a remark by the requester or anyone who holds or held a place; changes nothing else."""
    return await _act(http, person, write, request_id, verb="comment", reason=body.text, status_code=201)


async def _act(http: Request, person: CurrentPerson, write: Write, request_id: int, *, verb: str,
               status_code: int = 200, **fields: object) -> RequestPublic:
    runtime = http.app.state.runtime
    async with write() as session:
        row = await act(session, runtime, request_id=request_id, actor_id=person.id, verb=verb, now=clock.now(),
                        **fields)  # type: ignore[arg-type]
        answer = write.respond(await _public(session, row, runtime.timezone), status_code=status_code)
    nudge(http.app.state.scheduler)
    return answer


@router.get("/tasks", response_model=TaskList)
async def my_tasks(person: CurrentPerson, session: SessionDep, http: Request, limit: Limit = 100,
                   offset: Offset = 0) -> TaskList:
    """Open steps waiting for me, oldest deadline first: assigned to me, or to an assignee whose delegation
    to me is in force and covers the policy (`delegated_from` names them). The counts cover every task."""
    tz = http.app.state.runtime.timezone
    now = clock.now()
    tasks = await open_tasks(session, person_id=person.id, now=now)
    overdue, today, by_policy = task_counts(tasks, now=now, tz=tz)
    items = [TaskPublic(request_id=t.request.id or 0, step_id=t.step.id or 0, policy=t.request.policy_id,
                        title=t.request.title, step_title=t.step.title, requester=t.requester.id,
                        requester_name=t.requester.name, due_at=to_local(t.step.due_at, tz),
                        provisional=t.step.provisional, overdue=bool(t.step.due_at and t.step.due_at < now),
                        delegated_from=list(t.delegated_from)) for t in tasks[offset:offset + limit]]
    return TaskList(count=len(tasks), overdue=overdue, due_today=today, by_policy=by_policy, items=items)


@router.post("/tasks/approve", response_model=BulkResult)
async def bulk_approve(body: BulkApprove, person: CurrentPerson, write: Write, http: Request) -> BulkResult:
    """批量审批: approve up to 100 open steps, each in its own transaction, answering per item. Each item is
    exactly a single approval (same checks: own request, assignment or delegation, separation of duties,
    an open step), on steps whose policy allows `bulk_approve` (the default; a policy leaves it out of a
    step's `allow` to make each approval of that step a deliberate one). A refused item
    is answered with its error (code, message, problems) and leaves the others alone; the whole call is
    200 even when some items fail — read `failed`."""
    runtime = http.app.state.runtime
    results: list[BulkItemResult] = []
    for item in body.items:
        try:
            async with write() as session:
                row = await act(session, runtime, request_id=item.request_id, step_id=item.step_id,
                                actor_id=person.id, verb="approve", bulk=True, now=clock.now())
                state = row.state
        except (NotFoundError, ForbiddenError, ConflictError, InvalidInputError) as exc:
            results.append(BulkItemResult(request_id=item.request_id, step_id=item.step_id, ok=False,
                                          error=_item_error(exc)))
            continue
        results.append(BulkItemResult(request_id=item.request_id, step_id=item.step_id, ok=True, state=state))
    answer = BulkResult(ok=sum(r.ok for r in results), failed=sum(not r.ok for r in results), items=results)
    async with write():
        answer = write.respond(answer)
    nudge(http.app.state.scheduler)
    return answer


def _item_error(exc: Exception) -> ItemError:
    code = {NotFoundError: "not_found", ForbiddenError: "forbidden", ConflictError: "conflict",
            InvalidInputError: "invalid"}[type(exc)]
    return ItemError(code=code, message=str(exc), problems=getattr(exc, "problems", None) or {})
