"""What every page shares: the Jinja environment and the words it shows (zh-CN), the response headers (no
scripts at all), rendering with the signed-in person, and the door of the page forms.

The forms (POST /requests/{id}/act, /inbox/approve, /obligations/{id}/submit …) are plain HTML: the page CSP
allows no JavaScript. `FormCaller` lets one in only with the session's CSRF token in the `csrf_token` field
(a caller with an Authorization header, a script, is exempt as under /api: a browser never adds one by
itself). Without a session the browser is sent to the login page, which comes back to the page the form
was on. After a change the form route redirects (303) to that page with `?done=<what>`; `DONE` words it.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import CSRF_FIELD, page_principal, session_principal
from api.idempotency import Writer
from notifications.email import local_time
from store.notification_list import unread_count
from store.organisation import people_by_id
from store.tables import DepartmentRow, PersonRow

STEP_STATES = {"waiting": "未开始", "pending": "待审批", "approved": "已批准", "rejected": "已驳回",
               "cancelled": "已取消"}
REQUEST_STATES = {"pending": "审批中", "approved": "已批准", "rejected": "已驳回", "returned": "已退回",
                  "withdrawn": "已撤回"}
OBLIGATION_STATES = {"open": "待报送", "late": "逾期", "under_review": "审核中", "submitted": "已报送",
                     "waived": "已豁免"}
SUBMISSION_KINDS = {"original": "原报", "late": "补报", "correction": "修报"}
SUBMISSION_STATES = {"under_review": "审核中", "accepted": "已接收", "returned": "已退回", "superseded": "已被修报取代"}
MODES = {"any": "或签", "all": "会签", "quorum": "按人数签"}  # quorum: n approvals close the step
POSITIONS = {"before": "前加签（先由新增人员审批）", "after": "后加签（本环节通过后再由新增人员审批）",
             "parallel": "并行加签（与本环节审批人一同会签）"}
SHIFTS = {"none": "不调整", "next_working_day": "顺延至下一工作日", "previous_working_day": "提前至上一工作日",
          "before_holiday": "提前至节前最后一个工作日", "after_holiday": "顺延至节后第一个工作日",
          "skipped": "本期不报送"}
# What a form route did, for the notice on the page it returns to (`?done=`).
DONE = {"approve": "已批准。", "reject": "已驳回，理由已记录。", "send_back": "已退回。", "transfer": "已转交。",
        "add_approver": "已加签。", "comment": "评论已发表。", "withdraw": "申请已撤回。", "resubmit": "已重新提交。",
        "submitted": "报送已提交。", "under_review": "报送已提交，正在审核。", "late": "已标记为逾期。",
        "waived": "已豁免本期报送。", "event_reported": "事件已上报，报送事项已生成。",
        "event_known": "该编号的事件此前已上报，这是当时生成的报送事项。"}
WEEKDAYS = "一二三四五六日"
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


def _size(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    return f"{value / 1024:.0f} KB" if value < 1024 * 1024 else f"{value / 1048576:.1f} MB"


_env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(hm=local_time, day=_day, period=_period, size=_size)
_env.globals.update(STEP_STATES=STEP_STATES, REQUEST_STATES=REQUEST_STATES, OBLIGATION_STATES=OBLIGATION_STATES,
                    SUBMISSION_KINDS=SUBMISSION_KINDS, SUBMISSION_STATES=SUBMISSION_STATES, MODES=MODES,
                    POSITIONS=POSITIONS, SHIFTS=SHIFTS)
templates = Jinja2Templates(env=_env)


class Names:
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


async def names_of(session: AsyncSession, ids: Iterable[str]) -> Names:
    return Names(await people_by_id(session, set(ids)))


async def department_name(session: AsyncSession, code: str) -> str:
    department = await session.get(DepartmentRow, code)
    return department.name if department else code


async def render(http: Request, session: AsyncSession, person: PersonRow, name: str, context: dict[str, Any],
                 status_code: int = 200) -> HTMLResponse:
    me = {"name": person.name, "department": await department_name(session, person.department_code),
          "unread": await unread_count(session, person.id), "admin": "admin" in person.roles}
    tz = http.app.state.runtime.timezone
    zone = "北京时间" if tz == "Asia/Shanghai" else tz
    csrf = http.state.principal.csrf or ""  # the forms' token (signed in by cookie only)
    done = DONE.get(http.query_params.get("done", ""), "")
    return templates.TemplateResponse(http, name, {"me": me, "path": http.url.path, "zone": zone, "csrf": csrf,
                                                   "done": done, **context},
                                      status_code=status_code, headers=HEADERS)


async def not_found(http: Request, session: AsyncSession, person: PersonRow, message: str) -> HTMLResponse:
    return await render(http, session, person, "not_found.html", {"message": message}, status_code=404)


def back_to(http: Request) -> str:
    """The page a form route belongs to: its path without the last segment (/requests/7/act → /requests/7)."""
    return http.url.path.rsplit("/", 1)[0] or "/"


def see_other(path: str, **query: str) -> RedirectResponse:
    tail = "&".join(f"{k}={quote(v, safe=',:')}" for k, v in query.items() if v)
    return RedirectResponse(path + (f"?{tail}" if tail else ""), status_code=status.HTTP_303_SEE_OTHER)


@dataclass(frozen=True)
class Caller:
    """Who sent a page form; `refusal` is set (an HTML 403) when the form's CSRF token is wrong."""

    person: PersonRow
    write: Writer
    refusal: HTMLResponse | None = None


async def form_caller(http: Request) -> Caller:
    if http.headers.get("Authorization"):  # a script: authenticated as under /api, no CSRF token needed
        principal = await page_principal(http)
        return Caller(principal.person, Writer(http, principal.person))
    principal = await session_principal(http)
    if principal is None:
        raise HTTPException(status.HTTP_303_SEE_OTHER, detail="sign in first",
                            headers={"Location": f"/login?next={quote(back_to(http), safe='')}"})
    http.state.principal = principal
    sent = (await http.form()).get(CSRF_FIELD)
    if not isinstance(sent, str) or not sent or not hmac.compare_digest(sent.encode(), (principal.csrf or "").encode()):
        page = templates.TemplateResponse(http, "refused.html", {"back": back_to(http), "done": ""}, status_code=403,
                                          headers=HEADERS)
        return Caller(principal.person, Writer(http, principal.person), refusal=page)
    return Caller(principal.person, Writer(http, principal.person))


FormCaller = Annotated[Caller, Depends(form_caller)]
