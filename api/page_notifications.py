"""/notifications (通知: my in-app notifications) and /admin/outbox (投递: dead letters, for administrators).

/notifications lists the unread ones first, then the read; each item is a small form: pressing it marks the
notification read and goes to the page it is about. "全部标为已读" marks them all. /admin/outbox shows the
counts per state and channel and the rows of one state (default: the dead letters, 投递失败) with their
error and a 重新发送 button, which moves the row back to pending as POST /api/admin/outbox/{id}/resend does.
Someone who is not an administrator gets a 403 page saying so. No scripts: plain forms with the CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.admin import is_admin
from api.auth import PagePerson, SessionDep
from api.notifications import subject_of
from api.outbox_admin import nested_counts, where_to
from api.page_kit import FormCaller, not_found, render, see_other
from api.schemas import RowId
from config import clock
from flows.schedule import nudge
from store.errors import ConflictError, NotFoundError
from store.notices import to_local
from store.notification_list import list_notifications, mark_all_read, mark_read
from store.outbox_admin import CHANNELS, STATES, list_outbox, outbox_counts, resend
from store.tables import NotificationRow, PersonRow

router = APIRouter(include_in_schema=False)

EVENT_NAMES = {"step_assigned": "审批待办", "request_decided": "审批结果", "step_escalated": "督办",
               "obligation_reminder": "报送提醒", "obligation_overdue": "报送逾期",
               "submission_reviewed": "报送审核结果", "request_returned": "申请被退回",
               "request_withdrawn": "申请已撤回", "digest": "每日汇总",
               "escalation_report": "督办周报", "audit_broken": "审计链异常", "request_filed": "申请已提交",
               "step_reminder": "审批提醒", "delegated": "委托审批", "obligation_opened": "新报送任务",
               "weekly_points": "积分周报"}
OUTBOX_STATES = {"pending": "待发送", "sent": "已发送", "dead": "投递失败", "held": "待并入汇总",
                 "digested": "已并入汇总"}
CHANNEL_NAMES = {"email": "邮件", "chat": "群机器人"}
PAGE_SIZE = 100


def _path_of(link: object) -> str | None:
    """The page a notification is about, as a path on this site (links carry the configured public URL,
    which may not be the address this browser uses)."""
    if not isinstance(link, str) or not link:
        return None
    parts = urlsplit(link)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _item(row: NotificationRow, person: PersonRow, tz: str) -> dict[str, Any]:
    return {"id": row.id, "event": EVENT_NAMES.get(row.event, row.event), "subject": subject_of(row, person.lang),
            "at": to_local(row.created_at, tz), "unread": row.read_at is None,
            "path": _path_of(row.context.get("link") if isinstance(row.context, dict) else None)}


# --- 通知 ----------------------------------------------------------------------------------------------------

@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(person: PagePerson, session: SessionDep, http: Request,
                             before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> HTMLResponse:
    """The newest PAGE_SIZE notifications, or those older than `before` (the 更早的通知 link)."""
    rows = await list_notifications(session, person_id=person.id, limit=PAGE_SIZE, before=before)
    tz = http.app.state.runtime.timezone
    items = [_item(r, person, tz) for r in rows]
    done = {"all_read": "已全部标为已读。"}.get(http.query_params.get("done", ""), "")
    return await render(http, session, person, "notifications.html", {
        "unread_items": [i for i in items if i["unread"]], "read_items": [i for i in items if not i["unread"]],
        "page_size": PAGE_SIZE, "done": done, "paged": before is not None,
        "older": rows[-1].id if len(rows) == PAGE_SIZE else None})


@router.post("/notifications/read-all", response_class=HTMLResponse)
async def read_all_from_page(caller: FormCaller) -> Response:
    if caller.refusal:
        return caller.refusal
    async with caller.write() as session:
        marked = await mark_all_read(session, person_id=caller.person.id, now=clock.now())
        caller.write.respond({"marked": marked})
    return see_other("/notifications", done="all_read")


@router.post("/notifications/{notification_id}/open", response_class=HTMLResponse)
async def open_from_page(notification_id: RowId, caller: FormCaller, http: Request) -> Response:
    """Mark the notification read and go to its page (back to the list when it has none)."""
    if caller.refusal:
        return caller.refusal
    try:
        async with caller.write() as session:
            row = await mark_read(session, notification_id=notification_id, person_id=caller.person.id,
                                  now=clock.now())
            caller.write.respond({"id": row.id})
    except NotFoundError:
        async with http.app.state.runtime.read_sessions() as session:
            return await not_found(http, session, caller.person, f"通知 #{notification_id} 不存在，或不是您的通知。")
    return see_other(_path_of(row.context.get("link")) or "/notifications")


# --- 投递 (administrators) -------------------------------------------------------------------------------------

@router.get("/admin/outbox", response_class=HTMLResponse)
async def outbox_page(person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    state = http.query_params.get("state", "dead")
    channel = http.query_params.get("channel") or None
    return await _outbox(http, session, person, state=state if state in STATES else "dead",
                         channel=channel if channel in CHANNELS else None)


@router.post("/admin/outbox/{outbox_id}/resend", response_class=HTMLResponse)
async def resend_from_page(outbox_id: RowId, caller: FormCaller, http: Request) -> Response:
    if caller.refusal:
        return caller.refusal
    runtime = http.app.state.runtime
    if not is_admin(caller.person):
        async with runtime.read_sessions() as session:
            return await _outbox(http, session, caller.person, state="dead", channel=None)
    try:
        async with caller.write() as session:
            await resend(session, outbox_id=outbox_id, actor_id=caller.person.id, now=clock.now())
            caller.write.respond({"id": outbox_id, "state": "pending"})
    except (NotFoundError, ConflictError) as exc:
        message = (f"投递记录 #{outbox_id} 不存在。" if isinstance(exc, NotFoundError)
                   else f"投递记录 #{outbox_id} 无法重新发送：{exc}")
        async with runtime.read_sessions() as session:
            return await _outbox(http, session, caller.person, state="dead", channel=None, error=message,
                                 status_code=404 if isinstance(exc, NotFoundError) else 409)
    nudge(http.app.state.scheduler)
    return see_other("/admin/outbox", state="pending", done="resent")


async def _outbox(http: Request, session: AsyncSession, person: PersonRow, *, state: str, channel: str | None,
                  error: str = "", status_code: int = 200) -> HTMLResponse:
    if not is_admin(person):
        return await render(http, session, person, "outbox.html", {"refused": True}, status_code=403)
    tz = http.app.state.runtime.timezone
    entries = await list_outbox(session, state=state, channel=channel, limit=PAGE_SIZE)
    rows = [{"id": e.row.id, "event": EVENT_NAMES.get(e.row.event, e.row.event), "channel": e.row.channel,
             "recipient": e.recipient_name, "to": where_to(e.row, e.hook), "attempts": e.row.attempts,
             "error": e.row.last_error or "", "state": e.row.state, "at": to_local(e.row.created_at, tz),
             "next_at": to_local(e.row.next_attempt_at, tz)} for e in entries]
    done = {"resent": "已重新排队发送，投递任务随即开始。"}.get(http.query_params.get("done", ""), "")
    return await render(http, session, person, "outbox.html", {
        "refused": False, "rows": rows, "state": state, "channel": channel, "error": error, "done": done,
        "counts": nested_counts(await outbox_counts(session)), "STATES": OUTBOX_STATES, "CHANNELS": CHANNEL_NAMES,
        "page_size": PAGE_SIZE}, status_code=status_code)
