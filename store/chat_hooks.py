"""Chat-bot webhooks (WeCom 企业微信, DingTalk 钉钉, Feishu 飞书): a department's group bot or one person's.

The caller (the API) checks the kind, URL and secret with `notifications.chat.validate_hook` first; here the
rest is checked (the owner exists, the events are chat events) and the rows are kept. The secret is
write-only: nothing here returns it to a reader, and the audit trail records only whether one is set.
Deleting a hook detaches the outbox rows that pointed at it: those not sent yet become dead letters saying
why (nobody may send them anywhere now), the sent ones keep their history without the link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import InvalidInputError, NotFoundError
from store.tables import ChatHookRow, DepartmentRow, OutboxRow, PersonRow

SCOPES = ("department", "person")
KINDS = ("wecom", "dingtalk", "feishu")
UPDATABLE = ("label", "url", "secret", "events", "active")
_SHOWN = 4  # characters of a key or token shown before the ellipsis (of one at least 12 long, as in notifications.chat)


def mask_url(url: str) -> str:
    """The URL with its credentials cut short: query values (WeCom `key`, DingTalk `access_token`) and the
    last path segment of a Feishu hook keep their first four characters, then "…" (a short one: only "…")."""
    parts = urlsplit(url)
    query = "&".join(f"{k}={_cut(v)}" for k, v in parse_qsl(parts.query, keep_blank_values=True))
    path = parts.path
    if "/hook/" in path:
        head, _, token = path.rpartition("/")
        path = f"{head}/{_cut(token)}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _cut(value: str) -> str:
    return f"{value[:_SHOWN]}…" if len(value) >= 12 else "…"


def audit_values(row: ChatHookRow) -> dict[str, Any]:
    """What the audit trail keeps of a hook: never the secret, never the full URL."""
    return {"scope": row.scope, "owner": row.owner, "kind": row.kind, "url": mask_url(row.url), "label": row.label,
            "events": row.events, "active": row.active, "has_secret": bool(row.secret)}


def check_events(events: Sequence[str] | None, known: Iterable[str]) -> str | None:
    """The problem with an `events` list, or None. None means every chat event; an empty list is refused."""
    if events is None:
        return None
    allowed = sorted(known)
    if not events:
        return "give at least one event, or null (leave it out) for every chat event"
    unknown = [e for e in events if e not in allowed]
    if unknown:
        return f"not a chat event: {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
    if len(set(events)) != len(events):
        return "an event is listed twice"
    return None


async def _check_owner(session: AsyncSession, scope: str, owner: str) -> str | None:
    if scope == "department":
        return None if await session.get(DepartmentRow, owner) is not None else f"no department {owner!r}"
    if scope == "person":
        return None if await session.get(PersonRow, owner) is not None else f"no person {owner!r}"
    return f"expected one of {', '.join(SCOPES)}, got {scope!r}"


async def create_hook(session: AsyncSession, *, scope: str, owner: str, kind: str, url: str, secret: str | None,
                      label: str, events: Sequence[str] | None, known_events: Iterable[str], actor_id: str,
                      now: datetime) -> ChatHookRow:
    problems: dict[str, str] = {}
    owner_problem = await _check_owner(session, scope, owner)
    if owner_problem:
        problems["scope" if scope not in SCOPES else "owner"] = owner_problem
    events_problem = check_events(events, known_events)
    if events_problem:
        problems["events"] = events_problem
    if problems:
        raise InvalidInputError("the chat hook is not valid", problems)
    row = ChatHookRow(scope=scope, owner=owner, kind=kind, url=url, secret=secret or None, label=label,
                      events=list(events) if events is not None else None, active=True, created_at=now,
                      created_by=actor_id)
    session.add(row)
    await session.flush()
    await append_audit(session, at=now, actor_id=actor_id, action="chat_hook.created", subject_type="chat_hook",
                       subject_id=row.id or 0, data=audit_values(row))
    return row


async def get_hook(session: AsyncSession, hook_id: int, *, person_id: str | None = None,
                   lock: bool = False) -> ChatHookRow:
    """The hook; with `person_id`, only that person's own hook (anything else reads as missing)."""
    row = await session.get(ChatHookRow, hook_id, with_for_update=lock)
    if row is None or (person_id is not None and (row.scope, row.owner) != ("person", person_id)):
        raise NotFoundError(f"no chat hook {hook_id}")
    return row


async def update_hook(session: AsyncSession, hook_id: int, changes: Mapping[str, Any], *,
                      known_events: Iterable[str], actor_id: str, now: datetime) -> ChatHookRow:
    """Change label, url, secret (null clears it), events (null: every chat event) or active; the URL and
    secret arrive checked by the caller."""
    row = await get_hook(session, hook_id, lock=True)
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInputError("these fields cannot be changed", {k: f"allowed: {', '.join(UPDATABLE)}"
                                                                   for k in unknown})
    if "events" in changes:
        problem = check_events(changes["events"], known_events)
        if problem:
            raise InvalidInputError("the chat hook is not valid", {"events": problem})
    before = audit_values(row)
    for name, value in changes.items():
        setattr(row, name, list(value) if name == "events" and value is not None else value)
    row.secret = row.secret or None
    after = audit_values(row)
    session.add(row)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    if "secret" in changes:
        changed["secret_changed"] = True
    if changed:
        await append_audit(session, at=now, actor_id=actor_id, action="chat_hook.updated", subject_type="chat_hook",
                           subject_id=row.id or 0, data={"owner": row.owner, "scope": row.scope, "changed": changed})
    return row


async def delete_hook(session: AsyncSession, row: ChatHookRow, *, actor_id: str, now: datetime) -> int:
    """Delete the hook; its unsent outbox rows become dead letters. Returns how many were dead-lettered."""
    unsent = await session.execute(
        update(OutboxRow).where(OutboxRow.hook_id == row.id, OutboxRow.state.in_(("pending", "held")))  # type: ignore[attr-defined]
        .values(state="dead", hook_id=None, last_error=f"chat hook {row.id} was deleted before this was sent"))
    await session.execute(update(OutboxRow).where(OutboxRow.hook_id == row.id).values(hook_id=None))
    await append_audit(session, at=now, actor_id=actor_id, action="chat_hook.deleted", subject_type="chat_hook",
                       subject_id=row.id or 0, data={**audit_values(row), "unsent_dead": unsent.rowcount or 0})  # type: ignore[attr-defined]
    await session.delete(row)
    return unsent.rowcount or 0  # type: ignore[attr-defined]


async def list_hooks(session: AsyncSession, *, scope: str | None = None, owner: str | None = None,
                     limit: int = 100, offset: int = 0) -> tuple[int, list[ChatHookRow]]:
    query = select(ChatHookRow)
    if scope is not None:
        query = query.where(ChatHookRow.scope == scope)
    if owner is not None:
        query = query.where(ChatHookRow.owner == owner)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(ChatHookRow.id).limit(limit).offset(offset))).scalars()  # type: ignore[arg-type]
    return total, list(rows)
