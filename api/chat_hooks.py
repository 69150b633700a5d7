"""Chat-bot webhooks (企业微信, 钉钉, 飞书 group bots): where chat messages go besides e-mail.

Mine: `GET/POST /api/me/chat-hooks`, `DELETE /api/me/chat-hooks/{id}` (scope person, owner me; another
person's hook answers 404). Administrators: `GET/POST /api/admin/chat-hooks` (a department's group bot or
anyone's), `PATCH/DELETE /api/admin/chat-hooks/{id}`. The kind, URL and secret are checked by
`notifications.chat.validate_hook` (422 with its fix-it message); `events` names chat events (null: all).
The secret is write-only (answers say `has_secret`), the URL is shown with its key or token cut short, and
the audit trail records neither.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from api.admin import Admin
from api.auth import CurrentPerson, SessionDep
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_notifications import (
    ChatHookCreate,
    ChatHookDeleted,
    ChatHookList,
    ChatHookPublic,
    ChatHookUpdate,
    MyChatHookCreate,
)
from config import clock
from notifications.chat import validate_hook
from notifications.email import EVENTS
from store import chat_hooks
from store.errors import InvalidInputError
from store.tables import ChatHookRow

router = APIRouter(prefix="/api", tags=["chat hooks"])

CHAT_EVENTS = frozenset(EVENTS - {"digest", "escalation_report", "audit_broken"})
"""What a chat hook may be sent: the events about one request or report (digests and reports are e-mail)."""
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


def public(row: ChatHookRow) -> ChatHookPublic:
    return ChatHookPublic(id=row.id or 0, scope=row.scope, owner=row.owner, kind=row.kind,
                          url=chat_hooks.mask_url(row.url), has_secret=bool(row.secret), label=row.label,
                          events=row.events, active=row.active, created_at=row.created_at,
                          created_by=row.created_by)


def checked(kind: str, url: str, secret: str | None, *, admin: bool = True) -> tuple[str, str | None]:
    """The URL and secret as `validate_hook` accepts them; its refusal as a 422 on the field it is about. Only
    administrators may name a loopback URL (a local relay): anyone else could make the server call itself."""
    try:
        hook = validate_hook(kind, url, secret, allow_loopback=admin)
    except ValueError as exc:
        field = "secret" if "secret" in str(exc).lower() and secret else "url"
        raise InvalidInputError(f"the {kind} hook is not valid: {exc}", {field: str(exc)}) from None
    return hook.url, hook.secret


async def _create(write: Write, *, scope: str, owner: str, body: MyChatHookCreate, actor_id: str,
                  admin: bool) -> ChatHookPublic:
    url, secret = checked(body.kind, body.url, body.secret, admin=admin)
    async with write() as session:
        row = await chat_hooks.create_hook(session, scope=scope, owner=owner, kind=body.kind, url=url, secret=secret,
                                           label=body.label, events=body.events, known_events=CHAT_EVENTS,
                                           actor_id=actor_id, now=clock.now())
        answer = write.respond(public(row), status_code=201)
    return answer


# --- mine ------------------------------------------------------------------------------------------------

@router.get("/me/chat-hooks", response_model=ChatHookList)
async def my_hooks(person: CurrentPerson, session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> ChatHookList:
    """My own chat hooks (a department's group bots are managed by administrators)."""
    total, rows = await chat_hooks.list_hooks(session, scope="person", owner=person.id, limit=limit, offset=offset)
    return ChatHookList(count=total, items=[public(r) for r in rows])


@router.post("/me/chat-hooks", status_code=status.HTTP_201_CREATED, response_model=ChatHookPublic)
async def add_my_hook(body: MyChatHookCreate, person: CurrentPerson, write: Write) -> ChatHookPublic:
    """Add a bot that sends my chat messages (e.g. my own 企业微信 group with a bot)."""
    return await _create(write, scope="person", owner=person.id, body=body, actor_id=person.id,
                         admin="admin" in person.roles)


@router.delete("/me/chat-hooks/{hook_id}", response_model=ChatHookDeleted)
async def delete_my_hook(hook_id: RowId, person: CurrentPerson, write: Write) -> ChatHookDeleted:
    """Delete one of my hooks; messages not yet sent to it become dead letters."""
    async with write() as session:
        row = await chat_hooks.get_hook(session, hook_id, person_id=person.id, lock=True)
        dead = await chat_hooks.delete_hook(session, row, actor_id=person.id, now=clock.now())
        answer = write.respond(ChatHookDeleted(id=hook_id, unsent_dead=dead))
    return answer


# --- administrators ----------------------------------------------------------------------------------------

@router.get("/admin/chat-hooks", response_model=ChatHookList)
async def all_hooks(person: Admin, session: SessionDep, scope: Literal["department", "person"] | None = None,
                    owner: Annotated[str | None, Query(max_length=64)] = None, limit: Limit = 100,
                    offset: Offset = 0) -> ChatHookList:
    total, rows = await chat_hooks.list_hooks(session, scope=scope, owner=owner, limit=limit, offset=offset)
    return ChatHookList(count=total, items=[public(r) for r in rows])


@router.post("/admin/chat-hooks", status_code=status.HTTP_201_CREATED, response_model=ChatHookPublic)
async def add_hook(body: ChatHookCreate, person: Admin, write: Write) -> ChatHookPublic:
    """A department's group bot (scope department, owner its code) or a person's (scope person)."""
    return await _create(write, scope=body.scope, owner=body.owner, body=body, actor_id=person.id, admin=True)


@router.patch("/admin/chat-hooks/{hook_id}", response_model=ChatHookPublic)
async def change_hook(hook_id: RowId, body: ChatHookUpdate, person: Admin, write: Write) -> ChatHookPublic:
    """Change label, url, secret (null clears it), events (null: all) or active (false: pause it)."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    nulls = {k: "give a value or leave the field out" for k in ("label", "url", "active")
             if k in changes and changes[k] is None}
    if nulls:
        raise InvalidInputError(f"{', '.join(nulls)} cannot be null", nulls)
    async with write() as session:
        row = await chat_hooks.get_hook(session, hook_id, lock=True)
        if "url" in changes or changes.get("secret"):  # checked together: a DingTalk secret belongs to its URL
            url, secret = checked(row.kind, changes.get("url", row.url), changes.get("secret", row.secret))
            changes.update({k: v for k, v in (("url", url), ("secret", secret)) if k in changes})
        row = await chat_hooks.update_hook(session, hook_id, changes, known_events=CHAT_EVENTS,
                                           actor_id=person.id, now=clock.now())
        answer = write.respond(public(row))
    return answer


@router.delete("/admin/chat-hooks/{hook_id}", response_model=ChatHookDeleted)
async def delete_hook(hook_id: RowId, person: Admin, write: Write) -> ChatHookDeleted:
    async with write() as session:
        row = await chat_hooks.get_hook(session, hook_id, lock=True)
        dead = await chat_hooks.delete_hook(session, row, actor_id=person.id, now=clock.now())
        answer = write.respond(ChatHookDeleted(id=hook_id, unsent_dead=dead))
    return answer
