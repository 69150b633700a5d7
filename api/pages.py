"""Read-only HTML pages for people: a request, an obligation, my inbox, the reporting calendar.

E-mails link to `/requests/{id}` and `/obligations/{id}`. The pages only read; decisions and submissions
stay in the REST API. Every page needs a signed-in browser (a session cookie; without one the login page,
which comes back afterwards), and a request or obligation that someone may not see answers 404 here as it
does under /api.

States shown are the ones a person would expect at this instant: a pending step or an open obligation
whose deadline has passed reads 已超时 / 逾期 at once, even before the next sweep records it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pendulum
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import ColumnElement, and_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import PagePerson, SessionDep
from api.obligations import visible_obligations
from api.requests import my_tasks
from api.schemas import RowId
from config import clock
from notifications.email import local_time
from policies.models import ApprovalPolicy
from store.approvals import visible_request
from store.errors import NotFoundError
from store.notices import request_context, to_local
from store.organisation import people_by_id
from store.runtime import Runtime
from store.tables import AuditEventRow, DepartmentRow, ObligationRow, PersonRow, StepRow

router = APIRouter(include_in_schema=False)

STEP_STATES = {"waiting": "未开始", "pending": "待审批", "approved": "已批准", "rejected": "已驳回",
               "cancelled": "已取消"}
REQUEST_STATES = {"pending": "审批中", "approved": "已批准", "rejected": "已驳回", "returned": "已退回",
                  "withdrawn": "已撤回"}
# The glossary's words for what people do to a step (README); those without a sentence of their own in
# `_describe` read "<verb>「step」（理由：…）".
VERBS = {"approve": "批准", "reject": "驳回", "send_back": "退回", "withdraw": "撤回", "resubmit": "重新提交",
         "transfer": "转交", "add_approver": "加签", "comment": "评论", "reassign": "改派"}
OBLIGATION_STATES = {"open": "待报送", "late": "逾期", "submitted": "已报送"}
MODES = {"any": "或签", "all": "会签", "quorum": "按人数签"}  # quorum: n approvals close the step
SHIFTS = {"none": "不调整", "next_working_day": "顺延至下一工作日", "previous_working_day": "提前至上一工作日",
          "before_holiday": "提前至节前最后一个工作日", "after_holiday": "顺延至节后第一个工作日",
          "skipped": "本期不报送"}
WEEKDAYS = "一二三四五六日"
CALENDAR_LIMIT = 500
# No scripts at all; inline styles only. The pages show personal data, so no shared caches either.
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                      "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "private, no-store"}


def _day(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日 星期{WEEKDAYS[value.weekday()]}"


def _period(key: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})", key)
    return f"{match[1]}年{int(match[2])}月" if match else key


_env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(hm=local_time, day=_day, period=_period)
_env.globals.update(STEP_STATES=STEP_STATES, REQUEST_STATES=REQUEST_STATES, OBLIGATION_STATES=OBLIGATION_STATES,
                    MODES=MODES, SHIFTS=SHIFTS)
templates = Jinja2Templates(env=_env)


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


@dataclass(frozen=True)
class Entry:
    """One line of a timeline: who did what, in words."""

    at: datetime
    actor: str
    text: str
    tone: str  # ok | bad | warn | "" — the colour of its dot


@dataclass(frozen=True)
class ObligationView:
    id: int
    title: str
    policy_title: str
    period: str
    department: str
    due_at: datetime
    nominal_date: date
    shift: str
    state: str  # open | late | submitted, as of now
    provisional: bool
    submitted_at: datetime | None


# --- routes -------------------------------------------------------------------------------------------

@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request_id: RowId, person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    try:
        row = await visible_request(session, request_id, person.id)
    except NotFoundError:
        return await _not_found(http, session, person, f"申请 #{request_id} 不存在，或您无权查看。")
    runtime: Runtime = http.app.state.runtime
    tz, now = runtime.timezone, clock.now()
    steps = list((await session.execute(select(StepRow).where(StepRow.request_id == row.id)
                                        .order_by(StepRow.position))).scalars())  # type: ignore[arg-type]
    events = await _events(session, "request", row.id or 0)
    names = await _names(session, [row.requester_id, *(p for s in steps for p in s.assignees),
                                   *_people_in(events)])
    policy = (await runtime.registry.version(session, row.policy_version_id)).policy
    assert isinstance(policy, ApprovalPolicy)
    requester = await session.get(PersonRow, row.requester_id)
    assert requester is not None
    summary = request_context(row, policy, requester, await _department_name(session, requester.department_code))
    step_titles = {s.step_key: s.title for s in steps}
    return await _render(http, session, person, "request.html", {
        "filed": row, "summary": summary, "created_at": to_local(row.created_at, tz),
        "decided_at": to_local(row.decided_at, tz), "my_step": _my_open_step(steps, person.id),
        "money_labels": {spec.label for spec in policy.form.values() if spec.type == "money"},
        "steps": [StepView(title=s.title, mode=s.mode, state=s.state,
                           assignees=[(names(p), p in s.approved_by) for p in s.assignees],
                           due_at=to_local(s.due_at, tz), provisional=s.provisional,
                           overdue=s.state == "pending" and s.due_at is not None and s.due_at < now,
                           decided_at=to_local(s.decided_at, tz)) for s in steps],
        "timeline": [_describe(e, names, step_titles, tz) for e in events]})


@router.get("/obligations/{obligation_id}", response_class=HTMLResponse)
async def obligation_page(obligation_id: RowId, person: PagePerson, session: SessionDep,
                          http: Request) -> HTMLResponse:
    row = (await session.execute(select(ObligationRow).where(
        ObligationRow.id == obligation_id, visible_obligations(person)))).scalar_one_or_none()
    if row is None:
        return await _not_found(http, session, person, f"报送事项 #{obligation_id} 不存在，或您无权查看。")
    runtime: Runtime = http.app.state.runtime
    events = await _events(session, "obligation", obligation_id)
    names = await _names(session, _people_in(events))
    view = (await _obligation_views(session, runtime, [row], now=clock.now()))[0]
    return await _render(http, session, person, "obligation.html", {
        "obligation": view, "timeline": [_describe(e, names, {}, runtime.timezone) for e in events]})


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    """My open tasks: exactly what GET /api/tasks answers."""
    return await _render(http, session, person, "inbox.html", {"tasks": await my_tasks(person, session, http)})


@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(person: PagePerson, session: SessionDep, http: Request,
                        period: str = "", state: str = "") -> HTMLResponse:
    """Obligations I may see (the API's rule), grouped by due date. Without a period: everything not yet
    submitted, and everything due since the first day of last month."""
    runtime: Runtime = http.app.state.runtime
    now = clock.now()
    problems = []
    if period and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        problems.append(f"月份「{period}」格式不对，应为 YYYY-MM（如 2026-10），已忽略。")
        period = ""
    if state and state not in OBLIGATION_STATES:
        problems.append(f"状态「{state}」无法识别，已忽略。")
        state = ""
    query = select(ObligationRow).where(visible_obligations(person))
    if period:
        query = query.where(ObligationRow.period_key == period)
    else:
        since = pendulum.instance(now).in_timezone(runtime.timezone).start_of("month").subtract(months=1)
        query = query.where(or_(ObligationRow.due_at >= since, ObligationRow.state != "submitted"))
    if state:
        query = query.where(_in_state(state, now))
    rows = list((await session.execute(query.order_by(ObligationRow.due_at, ObligationRow.obligation_key)
                                       .limit(CALENDAR_LIMIT + 1))).scalars())
    views = await _obligation_views(session, runtime, rows[:CALENDAR_LIMIT], now=now)
    days: dict[date, list[ObligationView]] = {}
    for view in views:
        days.setdefault(view.due_at.date(), []).append(view)
    month = pendulum.date(int(period[:4]), int(period[5:]), 1) if period else None
    known = set((await session.execute(select(ObligationRow.period_key).where(visible_obligations(person))
                                       .distinct())).scalars())
    return await _render(http, session, person, "calendar.html", {
        "days": days, "period": period, "state": state, "problems": problems,
        "period_options": sorted(known | {period} - {""}, reverse=True),
        "truncated": len(rows) > CALENDAR_LIMIT, "limit": CALENDAR_LIMIT,
        "counts": {s: sum(v.state == s for v in views) for s in OBLIGATION_STATES},
        "previous": month.subtract(months=1).format("YYYY-MM") if month else None,
        "next": month.add(months=1).format("YYYY-MM") if month else None})


# --- helpers ------------------------------------------------------------------------------------------

def _in_state(state: str, now: datetime) -> ColumnElement[bool]:
    """The state as shown: an open obligation whose deadline has passed is late already."""
    if state == "late":
        return or_(ObligationRow.state == "late", and_(ObligationRow.state == "open", ObligationRow.due_at < now))
    if state == "open":
        return and_(ObligationRow.state == "open", ObligationRow.due_at >= now)
    return ObligationRow.state == state  # type: ignore[return-value]


async def _obligation_views(session: AsyncSession, runtime: Runtime, rows: list[ObligationRow], *,
                            now: datetime) -> list[ObligationView]:
    tz = runtime.timezone
    departments = {d.code: d.name for d in (await session.execute(select(DepartmentRow))).scalars()}
    policy_titles: dict[int, str] = {}
    for version_id in {r.policy_version_id for r in rows}:
        policy_titles[version_id] = (await runtime.registry.version(session, version_id)).policy.title
    return [ObligationView(
        id=r.id or 0, title=r.title, policy_title=policy_titles[r.policy_version_id], period=r.period_key,
        department=departments.get(r.owner_department, r.owner_department), due_at=to_local(r.due_at, tz),  # type: ignore[arg-type]
        nominal_date=date.fromisoformat(r.nominal_date), shift=r.shift,
        state="late" if r.state == "open" and r.due_at < now else r.state, provisional=r.provisional,
        submitted_at=to_local(r.submitted_at, tz)) for r in rows]


def _my_open_step(steps: list[StepRow], person_id: str) -> int | None:
    """The id of the open step waiting for `person_id`'s decision, if any."""
    return next((s.id for s in steps if s.state == "pending" and person_id in s.assignees
                 and person_id not in s.approved_by), None)


async def _events(session: AsyncSession, subject_type: str, subject_id: int) -> list[AuditEventRow]:
    return list((await session.execute(select(AuditEventRow).where(
        AuditEventRow.subject_type == subject_type, AuditEventRow.subject_id == str(subject_id))
        .order_by(AuditEventRow.seq))).scalars())  # type: ignore[arg-type]


def _people_in(events: Iterable[AuditEventRow]) -> list[str]:
    found: list[str] = []
    for event in events:
        if event.actor_id:
            found.append(event.actor_id)
        for key in ("assignees", "to", "waiting_on"):
            found.extend(p for p in event.data.get(key) or () if isinstance(p, str))
    return found


class _Names:
    """Person ids to names; an id we cannot find is shown as it is rather than hidden."""

    def __init__(self, people: dict[str, PersonRow]) -> None:
        self._people = people

    def __call__(self, person_id: str) -> str:
        person = self._people.get(person_id)
        if person is None:
            return "系统" if person_id == "system" else person_id  # "system": the core's own actor (timeouts)
        return person.name

    def all(self, ids: Iterable[str]) -> str:
        return "、".join(self(i) for i in ids) or "（无人）"


async def _names(session: AsyncSession, ids: Iterable[str]) -> _Names:
    return _Names(await people_by_id(session, set(ids)))


def _describe(event: AuditEventRow, names: _Names, step_titles: dict[str, str], tz: str) -> Entry:
    """An audit event in the words of the glossary. An action this page has no words for yet is shown by
    its name rather than left out: the timeline must not hide anything the trail holds."""
    data: dict[str, Any] = event.data or {}
    step = f"「{step_titles.get(data.get('step') or '', data.get('step') or '')}」"
    to = names.all(data.get("to") or [])
    text, tone = event.action, ""
    verb = event.action.removeprefix("step.")
    match event.action:
        case "request.filed":
            text = "提交申请"
        case "step.opened":
            text = f"{step}分配给 {names.all(data.get('assignees') or [])}"
            if data.get("due_at"):
                text += f"，时限 {local_time(data['due_at'])}" + ("（暂定）" if data.get("provisional") else "")
        case "step.approve":
            text, tone = f"批准{step}", "ok"
            if data.get("result") == "pending":
                text += "（会签，等待其他审批人）"
        case "step.reject":
            text, tone = f"驳回{step}（理由：{data.get('reason') or '未填写'}）", "bad"
        case "step.escalated":
            text, tone = f"督办：{step}已超时，通知 {to}", "warn"
            if data.get("waiting_on"):
                text += f"（等待 {names.all(data['waiting_on'])} 审批）"
        case "step.reminded":
            text = f"提醒 {to} 审批{step}"
        case "step.reassigned":
            text, tone = f"{step}已超时，改由 {to} 审批", "warn"
        case "request.approved" | "request.rejected" | "request.withdrawn" | "request.returned":
            outcome = event.action.removeprefix("request.")
            text, tone = f"审批结束：申请{REQUEST_STATES[outcome]}", "ok" if outcome == "approved" else "bad"
        case "obligation.late":
            text, tone = "已过报送时限，标记为逾期", "bad"
        case "obligation.remind":
            text = f"提醒 {to} 按时报送"
        case "obligation.escalate":
            text, tone = f"督办：逾期未报，通知 {to}", "warn"
        case _ if event.action.startswith("step.") and verb in VERBS:
            text = f"{VERBS[verb]}{step}" + (f"（理由：{data['reason']}）" if data.get("reason") else "")
    if data.get("automatic"):
        text += "（超时自动处理）"
    return Entry(at=to_local(event.at, tz), actor=names(event.actor_id) if event.actor_id else "系统",  # type: ignore[arg-type]
                 text=text, tone=tone)


async def _department_name(session: AsyncSession, code: str) -> str:
    department = await session.get(DepartmentRow, code)
    return department.name if department else code


async def _render(http: Request, session: AsyncSession, person: PersonRow, name: str, context: dict[str, Any],
                  status_code: int = 200) -> HTMLResponse:
    me = {"name": person.name, "department": await _department_name(session, person.department_code)}
    tz = http.app.state.runtime.timezone
    zone = "北京时间" if tz == "Asia/Shanghai" else tz
    csrf = http.state.principal.csrf or ""  # for the sign-out button (signed in by cookie only)
    return templates.TemplateResponse(http, name, {"me": me, "path": http.url.path, "zone": zone, "csrf": csrf,
                                                   **context},
                                      status_code=status_code, headers=HEADERS)


async def _not_found(http: Request, session: AsyncSession, person: PersonRow, message: str) -> HTMLResponse:
    return await _render(http, session, person, "not_found.html", {"message": message}, status_code=404)
