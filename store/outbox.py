"""Queue notifications in the caller's transaction; `deliver` sends them later.

One event for one person fans out, in the same transaction, to:
- an e-mail (outbox row, channel `email`): `pending`, or `held` for the person's daily digest when they chose
  digests and the event is routine (urgent events never wait: escalated to you, overdue, summaries);
- an entry in their in-app notification list (not for the digest and report summaries themselves);
- a chat-bot message (outbox row, channel `chat`) per active hook of theirs, and per active hook of their
  department's group for the events a group wants by default (or the hook's own event list). A group hears
  of one event once, however many of its members the event concerns.

`event_key` is unique per row: the e-mail's is `<event_key>:<person>`, a chat row's `<event_key>:hook<id>`, so a
retried transaction or a re-fired threshold cannot queue the same message twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import ChatHookRow, NotificationRow, OutboxRow, PersonRow

SUMMARIES = frozenset({"digest", "escalation_report"})
"""Messages that summarise others: e-mail only, never held, never in the in-app list or a chat."""
URGENT = frozenset({"step_escalated", "obligation_overdue", "audit_broken"})
"""Sent at once even to people who chose a daily digest."""
NOT_FOR_CHAT = SUMMARIES | {"audit_broken"}
GROUP_EVENTS = frozenset({"step_assigned", "step_reminder", "step_escalated", "obligation_opened",
                          "obligation_reminder", "obligation_overdue", "weekly_points"})
"""What a department's group robot hears of unless its hook lists its own events: the team's work, not one
person's private news (a decision on their own request, their delegations)."""

_HOOKS = "duly.chat_hooks"  # session.info cache: the active hooks, loaded once per session


async def queue_message(session: AsyncSession, *, event_key: str, event: str, recipient: PersonRow,
                        context: dict[str, Any], now: datetime) -> OutboxRow:
    """Queue `event` for `recipient` on every channel they have; returns the e-mail row."""
    key = f"{event_key}:{recipient.id}"
    held = recipient.notify_mode == "digest" and event not in URGENT | SUMMARIES
    row = OutboxRow(event_key=key, event=event, recipient_id=recipient.id, to_address=recipient.email,
                    lang=recipient.lang, context=context, next_attempt_at=now, created_at=now,
                    state="held" if held else "pending")
    session.add(row)
    if event not in SUMMARIES:
        session.add(NotificationRow(event_key=key, event=event, person_id=recipient.id, context=context,
                                    created_at=now))
    if event not in NOT_FOR_CHAT:
        for hook in await _hooks_for(session, recipient, event):
            chat_key = f"{event_key}:hook{hook.id}"
            if hook.scope == "department" and await _queued(session, chat_key):
                continue  # the group already hears of this event through another member
            session.add(OutboxRow(event_key=chat_key, event=event, channel="chat", hook_id=hook.id,
                                  recipient_id=recipient.id, to_address=f"{hook.kind}:{hook.id}", lang=recipient.lang,
                                  context=context, next_attempt_at=now, created_at=now))
    return row


async def queue_once(session: AsyncSession, *, event_key: str, event: str, recipient: PersonRow,
                     context: dict[str, Any], now: datetime) -> bool:
    """Queue the message unless one with this key is already queued or sent to the recipient (a digest or a
    report re-run the same day); returns whether it was queued."""
    if await _queued(session, f"{event_key}:{recipient.id}"):
        return False
    await queue_message(session, event_key=event_key, event=event, recipient=recipient, context=context, now=now)
    return True


async def _queued(session: AsyncSession, key: str) -> bool:
    return (await session.execute(select(OutboxRow.id).where(OutboxRow.event_key == key))).first() is not None


@dataclass(frozen=True)
class _Hook:
    id: int
    scope: str
    owner: str
    kind: str
    events: tuple[str, ...] | None


async def _hooks_for(session: AsyncSession, person: PersonRow, event: str) -> list[_Hook]:
    hooks: list[_Hook] | None = session.info.get(_HOOKS)
    if hooks is None:  # plain values, not rows: they outlive a rollback of the session's transaction
        rows = (await session.execute(select(ChatHookRow.id, ChatHookRow.scope, ChatHookRow.owner, ChatHookRow.kind,
                                             ChatHookRow.events).where(ChatHookRow.active)
                                      .order_by(ChatHookRow.id))).all()  # type: ignore[arg-type]
        hooks = [_Hook(i, scope, owner, kind, tuple(events) if events is not None else None)
                 for i, scope, owner, kind, events in rows]
        session.info[_HOOKS] = hooks
    found = []
    for hook in hooks:
        if hook.scope == "person" and hook.owner == person.id:
            wanted = hook.events is None or event in hook.events
        elif hook.scope == "department" and hook.owner == person.department_code:
            wanted = event in (GROUP_EVENTS if hook.events is None else hook.events)
        else:
            continue
        if wanted:
            found.append(hook)
    return found
