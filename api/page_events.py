"""/events: the kinds of event that open reporting obligations, and a form to report one (上报事件).

The form posts to the same store function as POST /api/events; the first obligation it opens (or the one
an earlier report of the same reference opened) is shown next. A refusal is shown in Chinese with what was
typed kept in the form."""

from __future__ import annotations

from typing import Any

import pendulum
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from api.auth import PagePerson, SessionDep
from api.page_kit import FormCaller, render, see_other
from config import clock
from store.errors import ForbiddenError, InvalidInputError, NotFoundError
from store.event_obligations import report_event, triggered_by
from store.tables import DepartmentRow, PersonRow

router = APIRouter(include_in_schema=False)


@router.get("/events", response_class=HTMLResponse)
async def events_page(person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    return await _page(http, session, person, typed={})


@router.post("/events", response_class=HTMLResponse)
async def report_from_page(caller: FormCaller, http: Request) -> Response:
    if caller.refusal:
        return caller.refusal
    form = await http.form()
    typed = {name: str(form.get(name) or "").strip() for name in ("event", "reference", "occurred_at", "department")}
    runtime = http.app.state.runtime
    now = clock.now()
    try:
        occurred = pendulum.parse(typed["occurred_at"], tz=runtime.timezone)
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        return await _refused(http, caller.person, typed, "发生时间格式不对，请按“年-月-日 时:分”填写。")
    try:
        async with caller.write() as session:
            report = await report_event(session, runtime, event=typed["event"], reference=typed["reference"],
                                        occurred_at=occurred, reporter=caller.person, now=now,  # type: ignore[arg-type]
                                        department=typed["department"] or None)
            rows = report.opened or report.existing
            caller.write.respond({"event": report.event, "obligations": [r.id for r in rows]})
    except (InvalidInputError, NotFoundError, ForbiddenError) as exc:
        return await _refused(http, caller.person, typed, _in_words(exc))
    return see_other(f"/obligations/{rows[0].id}", done="event_reported" if report.opened else "event_known")


def _in_words(exc: Exception) -> str:
    text = str(exc)
    if "in the future" in text:
        return "发生时间晚于现在，请检查日期。"
    if "reference is required" in text:
        return "请填写事件编号或摘要。"
    if isinstance(exc, ForbiddenError):
        return "只有该部门人员、部门负责人、统计人员或管理员可以上报该部门的事件。"
    if "opens obligations for" in text:
        return "该事件的报送责任部门不包括所选部门，请选择制度规定的部门。"
    return f"无法上报：{text}"


async def _refused(http: Request, person: PersonRow, typed: dict[str, str], message: str) -> HTMLResponse:
    async with http.app.state.runtime.read_sessions() as session:
        return await _page(http, session, person, typed=typed, error=message, status_code=422)


async def _page(http: Request, session: Any, person: PersonRow, *, typed: dict[str, str], error: str = "",
                status_code: int = 200) -> HTMLResponse:
    runtime = http.app.state.runtime
    kinds = triggered_by(runtime)
    owners = sorted({code for k in kinds for code in k.rules.owner.codes})
    names = dict((await session.execute(select(DepartmentRow.code, DepartmentRow.name).where(
        DepartmentRow.code.in_(owners)))).all())  # type: ignore[attr-defined]
    titles: dict[str, str] = {}
    for k in kinds:
        titles.setdefault(k.rules.trigger or "", k.policy.obligation(k.obligation_id).title)
    local = clock.now().in_timezone(runtime.timezone)
    return await render(http, session, person, "events.html", {
        "kinds": [{"event": k.rules.trigger, "title": k.policy.obligation(k.obligation_id).title,
                   "due": str(k.rules.due), "policy_title": k.policy.title} for k in kinds],
        "events": list(titles), "titles": titles, "departments": [(c, names.get(c, c)) for c in owners],
        "typed": typed, "error": error, "default_time": local.format("YYYY-MM-DDTHH:mm")}, status_code=status_code)
