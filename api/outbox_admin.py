"""The outbox for administrators: dead letters and how to send them again.

`GET /api/admin/outbox?state=dead&channel=email|chat&limit=&before=` lists rows (newest first) with their
recipient, where they went, attempts and last error, and the counts per state and channel;
`POST /api/admin/outbox/{id}/resend` moves a dead letter back to pending (409 with its state otherwise) and
nudges `deliver`. The row is kept, so the message keeps its Message-ID.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.admin import Admin
from api.auth import SessionDep
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_notifications import OutboxEntryPublic, OutboxList
from config import clock
from flows.schedule import nudge
from store.notices import to_local
from store.outbox_admin import CHANNELS, STATES, OutboxEntry, get_entry, list_outbox, outbox_counts, resend
from store.tables import ChatHookRow, OutboxRow

router = APIRouter(prefix="/api/admin", tags=["outbox"])

KIND_NAMES = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}


def where_to(row: OutboxRow, hook: ChatHookRow | None) -> str:
    """E-mail: the address; chat: the hook's label and kind (or that it was deleted)."""
    if row.channel != "chat":
        return row.to_address
    if hook is None:
        return "（机器人已删除）"
    kind = KIND_NAMES.get(hook.kind, hook.kind)
    return f"{hook.label} · {kind}" if hook.label else kind


def entry_public(entry: OutboxEntry, tz: str) -> OutboxEntryPublic:
    row = entry.row
    return OutboxEntryPublic(id=row.id or 0, event=row.event, channel=row.channel, state=row.state,
                             recipient_id=row.recipient_id, recipient_name=entry.recipient_name,
                             to_address=where_to(row, entry.hook), hook_id=row.hook_id, attempts=row.attempts,
                             last_error=row.last_error, created_at=to_local(row.created_at, tz),  # type: ignore[arg-type]
                             next_attempt_at=to_local(row.next_attempt_at, tz))  # type: ignore[arg-type]


def nested_counts(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """state → channel → rows, every known state and channel present (0 when none)."""
    states = [*STATES, *sorted({s for s, _ in counts} - set(STATES))]
    channels = [*CHANNELS, *sorted({c for _, c in counts} - set(CHANNELS))]
    return {s: {c: counts.get((s, c), 0) for c in channels} for s in states}


@router.get("/outbox", response_model=OutboxList)
async def list_(person: Admin, session: SessionDep, http: Request,
                state: Literal["pending", "sent", "dead", "held", "digested"] = "dead",
                channel: Literal["email", "chat"] | None = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="older than this id")] = None,
                ) -> OutboxList:
    """Outbox rows in `state` (default: the dead letters), newest first, and the counts of every state."""
    entries = await list_outbox(session, state=state, channel=channel, limit=limit, before=before)
    tz = http.app.state.runtime.timezone
    return OutboxList(count=len(entries), items=[entry_public(e, tz) for e in entries],
                      counts=nested_counts(await outbox_counts(session)))


@router.post("/outbox/{outbox_id}/resend", response_model=OutboxEntryPublic)
async def resend_one(outbox_id: RowId, person: Admin, write: Write, http: Request) -> OutboxEntryPublic:
    """Send a dead letter again: pending now, attempts from 0, last error kept until the next try. 409 (naming
    the state) for a row that is not dead. Audited as `outbox.resent`."""
    async with write() as session:
        await resend(session, outbox_id=outbox_id, actor_id=person.id, now=clock.now())
        answer = write.respond(entry_public(await get_entry(session, outbox_id), http.app.state.runtime.timezone))
    nudge(http.app.state.scheduler)
    return answer
