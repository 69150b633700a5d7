"""The obligation page and the reporting calendar, and the obligation's forms: hand in a report with its
files (报送: 原报, 补报 after the deadline, 修报 to correct the accepted one), and for the statistics office
标记逾期 and 豁免 (with a reason).

A report's files and the submission are stored in one transaction (store.attachments.store_upload, then
store.submissions.submit_report): a refused file or a missing required kind leaves nothing behind, and the
page says which, in Chinese, with the note still in its field. States shown are the ones a person would
expect at this instant: an open obligation whose deadline has passed reads 逾期 at once, before the sweep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pendulum
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, and_, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile

from api.attachments import max_upload_bytes
from api.auth import PagePerson, SessionDep
from api.page_kit import OBLIGATION_STATES, FormCaller, names_of, not_found, render, see_other
from api.schemas import RowId
from api.submissions import submission_views
from config import clock
from flows.schedule import nudge
from store.attachments import TooLargeError, UnsupportedTypeError, store_upload
from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from store.notices import to_local
from store.obligation_access import RULES_ON, require_may_submit, visible_obligation, visible_obligations
from store.obligation_verbs import mark_late, waive
from store.runtime import Runtime
from store.submissions import list_submissions, obligation_rules, submit_report
from store.tables import AuditEventRow, DepartmentRow, ObligationRow, PersonRow

router = APIRouter(include_in_schema=False)
CALENDAR_LIMIT = 500
MAX_NOTE = 2000
ACCEPTED_FILES = ".pdf,.png,.jpg,.jpeg,.xlsx,.docx,.xls,.doc,.csv,.txt"


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
    state: str  # open | late | under_review | submitted | waived, as of now
    provisional: bool
    submitted_at: datetime | None
    waived_reason: str | None


@dataclass(frozen=True)
class Line:
    """One line of the obligation's record: who did what, in words."""

    at: datetime
    actor_name: str
    text: str
    tone: str


# --- the obligation page and its forms ------------------------------------------------------------------

@router.get("/obligations/{obligation_id}", response_class=HTMLResponse)
async def obligation_page(obligation_id: RowId, person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    return await _obligation_page(http, session, person, obligation_id)


@router.post("/obligations/{obligation_id}/submit", response_class=HTMLResponse)
async def submit_from_page(obligation_id: RowId, caller: FormCaller, http: Request) -> Response:
    """报送: `file.<kind>` one file per required kind, `file` any other files, `note`, and `corrects` (the
    accepted submission a 修报 replaces)."""
    if caller.refusal:
        return caller.refusal
    form = await http.form()
    note = str(form.get("note") or "").strip()
    corrects = str(form.get("corrects") or "")
    uploads = [(None if key == "file" else key.removeprefix("file."), value) for key, value in form.multi_items()
               if (key == "file" or key.startswith("file.")) and isinstance(value, UploadFile) and value.filename]
    runtime: Runtime = http.app.state.runtime

    async def change(session: AsyncSession) -> str:
        if len(note) > MAX_NOTE:
            raise InvalidInputError(f"说明最多 {MAX_NOTE} 个字，现有 {len(note)} 个。", {"note": "too long"})
        ids = []
        for kind, upload in uploads:
            content = await upload.read()
            if not content:
                raise InvalidInputError(f"文件「{upload.filename}」是空的。", {"file": "empty"})
            try:
                row = await store_upload(session, content=content, filename=upload.filename,
                                         declared=upload.content_type, kind=kind, uploader_id=caller.person.id,
                                         now=clock.now(), max_bytes=max_upload_bytes(http))
            except TooLargeError:
                limit = max_upload_bytes(http) // 1048576
                raise InvalidInputError(f"文件「{upload.filename}」超过大小上限（{limit} MB）。",
                                        {"file": "too large"}) from None
            except UnsupportedTypeError:
                raise InvalidInputError(f"文件「{upload.filename}」不是可接受的类型"
                                        "（PDF、图片、Excel、Word、CSV 或 TXT）。", {"file": "type"}) from None
            except InvalidInputError:
                raise InvalidInputError(f"文件「{upload.filename}」的扩展名或声明的类型与文件内容不符。",
                                        {"file": "mismatch"}) from None
            ids.append(row.id or 0)
        submission = await submit_report(session, runtime, obligation_id=obligation_id, person=caller.person,
                                         attachment_ids=ids, note=note or None,
                                         corrects=int(corrects) if corrects.isdigit() else None, review_form=None,
                                         now=clock.now())
        return "under_review" if submission.state == "under_review" else "submitted"

    return await _apply(http, caller, obligation_id, change, typed={"note": note})


@router.post("/obligations/{obligation_id}/late", response_class=HTMLResponse)
async def mark_late_from_page(obligation_id: RowId, caller: FormCaller, http: Request) -> Response:
    """标记逾期 (statistics office)."""
    if caller.refusal:
        return caller.refusal

    async def change(session: AsyncSession) -> str:
        await mark_late(session, obligation_id=obligation_id, person=caller.person, reason=None, now=clock.now())
        return "late"

    return await _apply(http, caller, obligation_id, change, typed={})


@router.post("/obligations/{obligation_id}/waive", response_class=HTMLResponse)
async def waive_from_page(obligation_id: RowId, caller: FormCaller, http: Request) -> Response:
    """豁免 with a reason (statistics office)."""
    if caller.refusal:
        return caller.refusal
    reason = str((await http.form()).get("reason") or "").strip()

    async def change(session: AsyncSession) -> str:
        if not reason:
            raise InvalidInputError("豁免须填写理由。", {"reason": "required"})
        if len(reason) > MAX_NOTE:
            raise InvalidInputError(f"理由最多 {MAX_NOTE} 个字，现有 {len(reason)} 个。", {"reason": "too long"})
        await waive(session, obligation_id=obligation_id, person=caller.person, reason=reason, now=clock.now())
        return "waived"

    return await _apply(http, caller, obligation_id, change, typed={"reason": reason, "form": "waive"})


async def _apply(http: Request, caller: Any, obligation_id: int, change: Any, *, typed: dict[str, str]) -> Response:
    """Run `change(session)` in one transaction; redirect with its `done` word, or show the page with the
    refusal in words and what was typed."""
    runtime: Runtime = http.app.state.runtime
    try:
        async with caller.write() as session:
            done = await change(session)
            caller.write.respond({"obligation": obligation_id, "done": done})
    except NotFoundError:
        async with runtime.read_sessions() as session:
            return await not_found(http, session, caller.person, f"报送事项 #{obligation_id} 不存在，或您无权查看。")
    except (InvalidInputError, ConflictError, ForbiddenError) as exc:
        status_code, message = _in_words(exc)
        async with runtime.read_sessions() as session:
            return await _obligation_page(http, session, caller.person, obligation_id, typed=typed, error=message,
                                          status_code=status_code)
    nudge(http.app.state.scheduler)
    return see_other(f"/obligations/{obligation_id}", done=done)


def _in_words(exc: Exception) -> tuple[int, str]:
    problems: dict[str, Any] = getattr(exc, "problems", None) or {}
    if isinstance(exc, ConflictError):
        return 409, "报送事项的状态刚刚已经变化（可能已由他人报送、豁免或标记），您的操作没有执行。请查看最新状态。"
    if isinstance(exc, ForbiddenError):
        return 403, "您无权对本报送事项执行此操作。"
    missing = [str(v).removeprefix("missing: ") for k, v in problems.items() if k.startswith("attachments.")]
    if missing and all(k.startswith("attachments.") and not k[12:].isdigit() for k in problems):
        return 422, f"缺少必需的附件：{'、'.join(missing)}。请选择文件后重新提交。"
    if any(k.startswith("review_form.") for k in problems):
        what = "附上报表文件" if "review_form.file" in problems else "补全送审内容"
        return 422, f"本报表须经审核，送审时请{what}，然后重新提交。"
    if re.search(r"[\u4e00-\u9fff]", str(exc)):
        return 422, str(exc) + ("请重新选择文件。" if "文件" in str(exc) else "")
    return 422, "填写的内容无效，请检查后重试。"


async def _obligation_page(http: Request, session: AsyncSession, person: PersonRow, obligation_id: int, *,
                           typed: dict[str, str] | None = None, error: str = "",
                           status_code: int = 200) -> HTMLResponse:
    try:
        row = await visible_obligation(session, obligation_id, person)
    except NotFoundError:
        return await not_found(http, session, person, f"报送事项 #{obligation_id} 不存在，或您无权查看。")
    runtime: Runtime = http.app.state.runtime
    tz = runtime.timezone
    events = list((await session.execute(select(AuditEventRow).where(
        AuditEventRow.subject_type == "obligation", AuditEventRow.subject_id == str(obligation_id))
        .order_by(AuditEventRow.seq))).scalars())  # type: ignore[arg-type]
    submissions = await submission_views(session, await list_submissions(session, obligation_id), tz)
    names = await names_of(session, [*(e.actor_id for e in events if e.actor_id),
                                     *(p for e in events for p in (e.data or {}).get("to") or ()),
                                     *(s.submitted_by for s in submissions)])
    view = (await obligation_views(session, runtime, [row], now=clock.now()))[0]
    _, rules = await obligation_rules(session, runtime, row)
    try:
        await require_may_submit(session, person, row)
        may_submit = True
    except ForbiddenError:
        may_submit = False
    accepted = next((s.id for s in submissions if s.state == "accepted"), None)
    return await render(http, session, person, "obligation.html", {
        "obligation": view, "submissions": submissions, "names": names, "rules": rules,
        "submit": may_submit and row.state in ("open", "late", "submitted") and (row.state != "submitted" or accepted),
        "corrects": accepted if row.state == "submitted" else None, "accept": ACCEPTED_FILES,
        "rules_on": bool(RULES_ON & set(person.roles)), "state_stored": row.state,
        "typed": typed or {}, "error": error,
        "timeline": [_line(e, names, tz) for e in events]}, status_code=status_code)


def _line(event: AuditEventRow, names: Any, tz: str) -> Line:
    """An obligation's audit event in words; an action without words is shown by its name, not hidden."""
    data: dict[str, Any] = event.data or {}
    kind = {"original": "原报", "late": "补报", "correction": "修报"}.get(data.get("kind") or "", "")
    reason = f"（理由：{data['reason']}）" if data.get("reason") else ""
    texts = {
        "obligation.late": ("已过报送时限，标记为逾期", "bad"),
        "obligation.marked_late": ("手工标记为逾期" + reason, "bad"),
        "obligation.waived": (f"豁免本期报送（理由：{data.get('reason') or '未填写'}）", "warn"),
        "obligation.remind": (f"提醒 {names.all(data.get('to') or [])} 按时报送", ""),
        "obligation.escalate": (f"督办：逾期未报，通知 {names.all(data.get('to') or [])}", "warn"),
        "submission.submitted": (f"提交{kind}" + ("，送审" if data.get("state") == "under_review" else "")
                                 + (f"（说明：{data['note']}）" if data.get("note") else ""), "ok"),
        "obligation.opened": (f"上报事件（编号 {data.get('reference', '')}，发生于 "
                              f"{_local_text(data.get('occurred_at'), tz)}），生成本报送事项", ""),
        "obligation.rescheduled": (f"报送时限调整：{_local_text((data.get('from') or {}).get('due_at'), tz)} → "
                                   f"{_local_text((data.get('to') or {}).get('due_at'), tz)}（"
                                   + ("制度新版本" if data.get("because") == "policy" else "节假日安排变更") + "）",
                                   "warn"),
        "submission.accepted": ("审核通过，报送已接收", "ok"),
        "submission.returned": ("审核未通过，报送被退回", "bad"),
    }
    text, tone = texts.get(event.action, (event.action, ""))
    return Line(at=to_local(event.at, tz), actor_name=names(event.actor_id) if event.actor_id else "系统",  # type: ignore[arg-type]
                text=text, tone=tone)


def _local_text(iso: str | None, tz: str) -> str:
    if not iso:
        return "?"
    local = pendulum.parse(iso).in_timezone(tz)  # type: ignore[union-attr]
    return f"{local.month}月{local.day}日 {local.format('HH:mm')}"


# --- the calendar ---------------------------------------------------------------------------------------

@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(person: PagePerson, session: SessionDep, http: Request,
                        period: str = "", state: str = "") -> HTMLResponse:
    """Obligations I may see (the API's rule), grouped by due date. Without a period: everything not yet
    submitted or waived, and everything due since the first day of last month."""
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
        query = query.where(or_(ObligationRow.due_at >= since,
                                ObligationRow.state.not_in(["submitted", "waived"])))  # type: ignore[attr-defined]
    if state:
        query = query.where(_in_state(state, now))
    rows = list((await session.execute(query.order_by(ObligationRow.due_at, ObligationRow.obligation_key)
                                       .limit(CALENDAR_LIMIT + 1))).scalars())
    views = await obligation_views(session, runtime, rows[:CALENDAR_LIMIT], now=now)
    days: dict[date, list[ObligationView]] = {}
    for view in views:
        days.setdefault(view.due_at.date(), []).append(view)
    month = pendulum.date(int(period[:4]), int(period[5:]), 1) if period else None
    known = set((await session.execute(select(ObligationRow.period_key).where(visible_obligations(person))
                                       .distinct())).scalars())
    return await render(http, session, person, "calendar.html", {
        "days": days, "period": period, "state": state, "problems": problems,
        "period_options": sorted(known | {period} - {""}, reverse=True),
        "truncated": len(rows) > CALENDAR_LIMIT, "limit": CALENDAR_LIMIT,
        "counts": {s: sum(v.state == s for v in views) for s in OBLIGATION_STATES},
        "previous": month.subtract(months=1).format("YYYY-MM") if month else None,
        "next": month.add(months=1).format("YYYY-MM") if month else None})


def _in_state(state: str, now: datetime) -> ColumnElement[bool]:
    """The state as shown: an open obligation whose deadline has passed is late already."""
    if state == "late":
        return or_(ObligationRow.state == "late", and_(ObligationRow.state == "open", ObligationRow.due_at < now))
    if state == "open":
        return and_(ObligationRow.state == "open", ObligationRow.due_at >= now)
    return ObligationRow.state == state  # type: ignore[return-value]


async def obligation_views(session: AsyncSession, runtime: Runtime, rows: list[ObligationRow], *,
                           now: datetime) -> list[ObligationView]:
    tz = runtime.timezone
    departments = {d.code: d.name for d in (await session.execute(select(DepartmentRow))).scalars()}
    policy_titles: dict[int, str] = {}
    for version_id in {r.policy_version_id for r in rows}:
        policy_titles[version_id] = (await runtime.registry.version(session, version_id)).policy.title
    return [ObligationView(
        id=r.id or 0, title=r.title, policy_title=policy_titles[r.policy_version_id],
        period=f"事件 {r.event_ref}" if r.event_ref else r.period_key,
        department=departments.get(r.owner_department, r.owner_department), due_at=to_local(r.due_at, tz),  # type: ignore[arg-type]
        nominal_date=date.fromisoformat(r.nominal_date), shift=r.shift,
        state="late" if r.state == "open" and r.due_at < now else r.state, provisional=r.provisional,
        submitted_at=to_local(r.submitted_at, tz), waived_reason=r.waived_reason) for r in rows]
