"""The in-app notification list (通知): each person reads their own, newest first, and marks them read.

`GET /api/notifications` (`unread=true`, `limit`, `before=<id>` to page on), `GET
/api/notifications/unread-count`, `POST /api/notifications/{id}/read`, `POST /api/notifications/read-all`.
Subjects are rendered when read, in the reader's current language, from the same templates as the e-mails;
a row whose context no longer renders is listed with its event's name as subject (and logged), never a 500.
Another person's notification answers 404, like one that does not exist.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_notifications import MarkedRead, NotificationList, NotificationPublic, UnreadCount
from config import clock
from notifications.email import render
from store.notices import to_local
from store.notification_list import list_notifications, mark_all_read, mark_read, unread_count
from store.tables import NotificationRow

router = APIRouter(prefix="/api", tags=["notifications"])
log = logging.getLogger("duly.api")

BeforeId = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only those older than this id (paging)")]


def subject_of(row: NotificationRow, lang: str) -> str:
    """The subject in `lang`; the event's name when the stored context cannot be rendered."""
    try:
        return render(row.event, row.context, lang=lang).subject
    except Exception:  # a stored row must always list: a template or context that broke is logged, not a 500
        log.warning("notification %s (%s) does not render; listed under its event name", row.id, row.event,
                    exc_info=True)
        return row.event


def public(row: NotificationRow, *, lang: str, tz: str) -> NotificationPublic:
    link = row.context.get("link") if isinstance(row.context, dict) else None
    return NotificationPublic(id=row.id or 0, event=row.event, subject=subject_of(row, lang),
                              link=link if isinstance(link, str) else None,
                              created_at=to_local(row.created_at, tz),  # type: ignore[arg-type]
                              read_at=to_local(row.read_at, tz))


@router.get("/notifications", response_model=NotificationList)
async def list_(person: CurrentPerson, session: SessionDep, http: Request, unread: bool = False,
                limit: Annotated[int, Query(ge=1, le=200)] = 50, before: BeforeId = None) -> NotificationList:
    """My notifications, newest first (`unread=true`: the unread ones only), and how many are unread."""
    rows = await list_notifications(session, person_id=person.id, unread_only=unread, limit=limit, before=before)
    tz = http.app.state.runtime.timezone
    return NotificationList(count=len(rows), unread=await unread_count(session, person.id),
                            items=[public(r, lang=person.lang, tz=tz) for r in rows])


@router.get("/notifications/unread-count", response_model=UnreadCount)
async def count_unread(person: CurrentPerson, session: SessionDep) -> UnreadCount:
    return UnreadCount(unread=await unread_count(session, person.id))


@router.post("/notifications/read-all", response_model=MarkedRead)
async def read_all(person: CurrentPerson, write: Write) -> MarkedRead:
    """Mark all my unread notifications read; answers how many that was."""
    async with write() as session:
        marked = await mark_all_read(session, person_id=person.id, now=clock.now())
        answer = write.respond(MarkedRead(marked=marked, unread=0))
    return answer


@router.post("/notifications/{notification_id}/read", response_model=NotificationPublic)
async def read_one(notification_id: RowId, person: CurrentPerson, write: Write, http: Request) -> NotificationPublic:
    """Mark one of my notifications read (again: unchanged, same answer)."""
    async with write() as session:
        row = await mark_read(session, notification_id=notification_id, person_id=person.id, now=clock.now())
        answer = write.respond(public(row, lang=person.lang, tz=http.app.state.runtime.timezone))
    return answer
