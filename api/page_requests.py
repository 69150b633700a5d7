"""The request page and the inbox, and their forms: approvers decide here (批准, 驳回, 退回, 转交, 加签),
requesters withdraw (撤回) and resubmit, everyone involved comments (评论); 批量批准 from the inbox.

Every form calls the same store function as the API (store.request_verbs.act), in one transaction, so the
same rules hold (assignment or delegation, separation of duties, compare-and-set on the step). A refused
form comes back as the page itself with the reason in Chinese and what was typed still in its field (422
for missing input, 409 when someone else decided first, 403 for another rule); a change redirects (303)
to the page with `?done=<verb>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import PagePerson, SessionDep
from api.page_kit import FormCaller, department_name, names_of, not_found, render, see_other
from api.requests import my_tasks
from api.schemas import RowId
from config import clock
from flows.schedule import nudge
from policies.chain import RequestState
from policies.models import ApprovalPolicy
from store.approvals import request_state, visible_request
from store.delegations import active_delegations, delegators
from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from store.notices import request_context, to_local
from store.request_verbs import STEP_VERBS, act
from store.runtime import Runtime
from store.tables import DepartmentRow, PersonRow, RequestRow, StepRow
from store.timeline import request_timeline

router = APIRouter(include_in_schema=False)
MAX_TEXT = 2000
MAX_BULK = 100
_RULES = {"own_request": "不能审批自己提交的申请（职责分离）。", "not_assigned": "该环节未分配给您。",
          "not_delegated": "您没有该审批人在本类申请上的有效代理授权。",
          "ambiguous_delegation": "您同时代理多位审批人，请选择代谁审批。",
          "not_distinct": "您已审批过本申请的其他环节，按职责分离规则不能再审批本环节。",
          "not_requester": "只有申请人可以这样做。", "no_approver": "这样处理后本环节将无人可审批。",
          "to_requester": "申请人不能成为自己申请的审批人。"}
_REASON_NEEDED = {"reject": "驳回须填写理由。", "send_back": "退回须填写理由。", "comment": "评论内容不能为空。"}
_NOT_ALLOWED = {"withdraw": "申请已有审批意见，不能再撤回（撤回只能在第一次审批之前）。",
                "add_approver": "本环节不允许这种加签方式。"}
_BULK_WORDS = {"conflict": "该环节已由他人处理或已关闭", "not_found": "申请不存在或您无权查看",
               "invalid": "无法批准", **{k: v.rstrip("。") for k, v in _RULES.items()}}


@dataclass(frozen=True)
class StepView:
    title: str
    mode: str
    state: str
    assignees: list[tuple[str, bool]]  # (name, has approved)
    due_at: datetime | None
    provisional: bool
    overdue: bool
    decided_at: datetime | None


@dataclass
class Actions:
    """What the person looking at the page may do to the request now (the forms shown)."""

    step: StepRow | None = None  # the open step they may decide
    verbs: list[str] = field(default_factory=list)
    send_back_to: list[tuple[str, str]] = field(default_factory=list)  # (target, label)
    positions: list[str] = field(default_factory=list)
    people: list[tuple[str, str]] = field(default_factory=list)  # (id, label): whom to transfer or add
    on_behalf: list[tuple[str, str]] = field(default_factory=list)  # (id, name) when they act for several
    withdraw: bool = False
    resubmit: bool = False
    comment: bool = False

    @property
    def any(self) -> bool:
        return bool(self.verbs or self.withdraw or self.resubmit or self.comment)


# --- the request page -----------------------------------------------------------------------------------

@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request_id: RowId, person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    return await _request_page(http, session, person, request_id)


@router.post("/requests/{request_id}/act", response_class=HTMLResponse)
async def act_on_request(request_id: RowId, caller: FormCaller, http: Request) -> Response:
    """One verb from the request page's forms: `verb`, `step_id` (step verbs), `reason` (驳回, 退回, 撤回;
    the comment's text for 评论), `target` (退回), `person` (转交, 加签), `position` (加签), `on_behalf_of`."""
    if caller.refusal:
        return caller.refusal
    form = await http.form()
    typed = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    verb = typed.get("verb", "")
    runtime: Runtime = http.app.state.runtime
    try:
        fields = _fields_of(verb, typed)
        async with caller.write() as session:
            row = await act(session, runtime, request_id=request_id, actor_id=caller.person.id, verb=verb,
                            now=clock.now(), **fields)
            caller.write.respond({"request": row.id, "state": row.state})
    except NotFoundError:
        async with runtime.read_sessions() as session:
            return await not_found(http, session, caller.person, f"申请 #{request_id} 不存在，或您无权查看。")
    except (InvalidInputError, ConflictError, ForbiddenError) as exc:
        status_code, message = _in_words(exc, verb)
        async with runtime.read_sessions() as session:
            return await _request_page(http, session, caller.person, request_id, typed=typed, error=message,
                                       status_code=status_code)
    nudge(http.app.state.scheduler)
    return see_other(f"/requests/{request_id}", done=verb)


async def _request_page(http: Request, session: AsyncSession, person: PersonRow, request_id: int, *,
                        typed: dict[str, str] | None = None, error: str = "", status_code: int = 200) -> HTMLResponse:
    now = clock.now()
    try:
        row = await visible_request(session, request_id, person.id, now=now)
    except NotFoundError:
        return await not_found(http, session, person, f"申请 #{request_id} 不存在，或您无权查看。")
    runtime: Runtime = http.app.state.runtime
    tz = runtime.timezone
    policy = (await runtime.registry.version(session, row.policy_version_id)).policy
    assert isinstance(policy, ApprovalPolicy)
    state, steps = await request_state(session, row, policy)
    names = await names_of(session, [row.requester_id, *(p for s in steps for p in s.assignees)])
    requester = await session.get(PersonRow, row.requester_id)
    assert requester is not None
    summary = request_context(row, policy, requester, await department_name(session, requester.department_code))
    return await render(http, session, person, "request.html", {
        "filed": row, "summary": summary, "created_at": to_local(row.created_at, tz),
        "decided_at": to_local(row.decided_at, tz),
        "actions": await _actions(session, row, policy, state, steps, person, now),
        "typed": typed or {}, "error": error,
        "money_labels": {spec.label for spec in policy.form.values() if spec.type == "money"},
        "steps": [StepView(title=s.title, mode=s.mode, state=s.state,
                           assignees=[(names(p), p in s.approved_by) for p in s.assignees],
                           due_at=to_local(s.due_at, tz), provisional=s.provisional,
                           overdue=s.state == "pending" and s.due_at is not None and s.due_at < now,
                           decided_at=to_local(s.decided_at, tz)) for s in steps],
        "timeline": await request_timeline(session, row.id or 0, tz=tz, lang="zh")}, status_code=status_code)


async def _actions(session: AsyncSession, row: RequestRow, policy: ApprovalPolicy, state: RequestState,
                   steps: list[StepRow], person: PersonRow, now: datetime) -> Actions:
    actions = Actions()
    mine = row.requester_id == person.id
    actions.withdraw = mine and policy.withdraw != "never" and (
        row.state == "returned" or (row.state == "pending" and state.decisions == 0))
    actions.resubmit = mine and row.state == "returned"
    actions.comment = mine or any(person.id in s.assignees or person.id in s.approved_by for s in steps)
    step = next((s for s in steps if s.state == "pending"), None)
    if step is None or row.state != "pending" or mine:
        return actions
    undecided = [p for p in step.assignees if p not in step.approved_by]
    own = person.id in undecided
    held = delegators(await active_delegations(session, to_id=person.id, now=now), policy=policy.id, now=now)
    for_whom = [] if own else [p for p in undecided if p in held]
    if not (own or for_whom):
        return actions
    spec = policy.step(step.policy_step or step.step_key)
    actions.step = step
    actions.verbs = [v for v in STEP_VERBS if spec.allows(v) and (own or v in ("approve", "reject", "send_back"))]
    names = await names_of(session, [row.requester_id, *for_whom])
    if len(for_whom) > 1:
        actions.on_behalf = [(p, names(p)) for p in for_whom]
    index = steps.index(step)
    for target in spec.send_back.to:
        if target == "requester":
            actions.send_back_to.append((target, f"申请人（{names(row.requester_id)}）"))
        elif target == "previous":
            if index > 0:
                actions.send_back_to.append((target, f"上一环节「{steps[index - 1].title}」"))
        else:
            earlier = next((s for s in steps[:index] if (s.policy_step or s.step_key) == target
                            and s.added_by is None), None)
            if earlier is not None:
                actions.send_back_to.append((target, f"「{earlier.title}」"))
    if not actions.send_back_to and "send_back" in actions.verbs:
        actions.verbs.remove("send_back")
    actions.positions = [p for p in spec.add_approver if p != "parallel" or step.mode == "all"]
    if not actions.positions and "add_approver" in actions.verbs:
        actions.verbs.remove("add_approver")
    if own and {"transfer", "add_approver"} & set(actions.verbs):
        actions.people = await _candidates(session, exclude={row.requester_id, *step.assignees})
    return actions


async def _candidates(session: AsyncSession, *, exclude: set[str]) -> list[tuple[str, str]]:
    """Active people one may transfer to or add, grouped by department: (id, "姓名 · 部门 职务")."""
    departments = {d.code: d.name for d in (await session.execute(select(DepartmentRow))).scalars()}
    people = (await session.execute(select(PersonRow).where(PersonRow.active)  # type: ignore[arg-type]
                                    .order_by(PersonRow.department_code, PersonRow.id))).scalars()
    return [(p.id, f"{p.name} · {departments.get(p.department_code, p.department_code)} {p.title or ''}".rstrip())
            for p in people if p.id not in exclude]


def _fields_of(verb: str, typed: dict[str, str]) -> dict[str, Any]:
    """The store's arguments from the form's fields; InvalidInputError (in Chinese) for what cannot be."""
    reason = typed.get("reason", "").strip()
    if len(reason) > MAX_TEXT:
        raise InvalidInputError(f"最多 {MAX_TEXT} 个字，现有 {len(reason)} 个。", {"reason": "too long"})
    fields: dict[str, Any] = {"reason": reason or None}
    if verb in STEP_VERBS:
        step_id = typed.get("step_id", "")
        if not step_id.isdigit() or not 1 <= int(step_id) < 2**31:
            raise InvalidInputError("表单缺少审批环节，请刷新页面后重试。", {"step_id": "required"})
        fields["step_id"] = int(step_id)
        if typed.get("on_behalf_of"):
            fields["on_behalf_of"] = typed["on_behalf_of"]
    if verb == "send_back":
        fields["to"] = typed.get("target") or None
    elif verb == "transfer":
        fields["to"] = typed.get("person") or None
    elif verb == "add_approver":
        fields["people"] = [typed["person"]] if typed.get("person") else []
        fields["position"] = typed.get("position") or None
    elif verb == "resubmit":
        fields.pop("reason")
    return fields


def _in_words(exc: Exception, verb: str) -> tuple[int, str]:
    """A refusal as the status code of the page and a sentence a person can act on."""
    problems: dict[str, Any] = getattr(exc, "problems", None) or {}
    rule = problems.get("rule")
    if isinstance(exc, ConflictError):
        return 409, "该环节刚刚已由他人处理，或申请的状态已经变化，您的操作没有执行。请查看下方最新状态。"
    if isinstance(exc, ForbiddenError):
        if rule == "not_allowed":
            return 403, _NOT_ALLOWED.get(verb, "本环节不允许此操作。")
        return 403, _RULES.get(rule or "", "您不能对本申请执行此操作。")
    if rule == "reason_required":
        return 422, _REASON_NEEDED.get(verb, "请填写理由。")
    if rule == "bad_target":
        return 422, {"transfer": "请选择要转交的人员。", "add_approver": "请选择要加签的人员。",
                     "send_back": "请选择退回到哪里。"}.get(verb, "所选对象无效。")
    if rule in _RULES:
        return 422, _RULES[rule]
    if "verb" in problems:
        return 422, "无法识别的操作，请刷新页面后重试。"
    if re.search(r"[\u4e00-\u9fff]", str(exc)):  # our own Chinese sentences (_fields_of)
        return 422, str(exc)
    return 422, "填写的内容无效，请检查后重试。"


# --- the inbox ------------------------------------------------------------------------------------------

@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(person: PagePerson, session: SessionDep, http: Request, approved: str = "",
                     failed: str = "", empty: str = "") -> HTMLResponse:
    """My open tasks, exactly what GET /api/tasks answers (delegated ones too), and the result of the
    last 批量批准 (`approved`: request ids; `failed`: request_id:code)."""
    tasks = await my_tasks(person, session, http)
    names = await names_of(session, [p for t in tasks.items for p in t.delegated_from])
    results = [(int(i), "") for i in re.findall(r"\d{1,10}", approved)]
    results += [(int(i), _BULK_WORDS.get(code, "未能批准")) for i, code in re.findall(r"(\d{1,10}):(\w{1,40})", failed)]
    titles = {}
    for request_id, _ in results:
        try:
            titles[request_id] = (await visible_request(session, request_id, person.id, now=clock.now())).title
        except NotFoundError:
            titles[request_id] = ""
    return await render(http, session, person, "inbox.html", {
        "tasks": tasks, "delegated": {t.step_id: names.all(t.delegated_from) for t in tasks.items
                                      if t.delegated_from},
        "results": [(i, titles.get(i, ""), why) for i, why in results], "empty": bool(empty)})


@router.post("/inbox/approve", response_class=HTMLResponse)
async def approve_in_bulk(caller: FormCaller, http: Request) -> Response:
    """批量批准: each ticked row (`item` = request_id:step_id) approved in its own transaction, exactly as a
    single approval; the inbox then lists what was approved and what was not, and why."""
    if caller.refusal:
        return caller.refusal
    items = [(int(r), int(s)) for value in (await http.form()).getlist("item") if isinstance(value, str)
             for r, s in re.findall(r"^(\d{1,10}):(\d{1,10})$", value)][:MAX_BULK]
    if not items:
        return see_other("/inbox", empty="1")
    runtime: Runtime = http.app.state.runtime
    approved: list[str] = []
    failed: list[str] = []
    for request_id, step_id in items:
        try:
            async with caller.write() as session:
                await act(session, runtime, request_id=request_id, step_id=step_id, actor_id=caller.person.id,
                          verb="approve", bulk=True, now=clock.now())
        except (NotFoundError, ForbiddenError, ConflictError, InvalidInputError) as exc:
            code = {NotFoundError: "not_found", ConflictError: "conflict", InvalidInputError: "invalid"}.get(
                type(exc)) or (getattr(exc, "problems", None) or {}).get("rule") or "forbidden"
            failed.append(f"{request_id}:{code}")
            continue
        approved.append(str(request_id))
    async with caller.write():
        caller.write.respond({"approved": approved, "failed": failed})
    nudge(http.app.state.scheduler)
    return see_other("/inbox", approved=",".join(approved), failed=",".join(failed))
