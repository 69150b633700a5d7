"""Bodies of the notification routes: the in-app list, preferences, chat hooks, the outbox's dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas import Body, Text

# --- the in-app list -----------------------------------------------------------------------------------


class NotificationPublic(BaseModel):
    id: int
    event: str
    subject: str = Field(description="rendered now, in the reader's language")
    link: str | None = Field(description="the page it is about")
    created_at: datetime
    read_at: datetime | None


class NotificationList(BaseModel):
    count: int = Field(description="items in this answer")
    unread: int = Field(description="unread notifications in all")
    items: list[NotificationPublic]


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int = Field(description="how many were unread and are read now")
    unread: int


# --- preferences ----------------------------------------------------------------------------------------


class Preferences(BaseModel):
    lang: str = Field(description="zh-CN or en: e-mails, chat messages and the notification list")
    notify_mode: str = Field(description="immediate: each e-mail as it happens; digest: routine e-mails wait for "
                                         "the daily digest (urgent ones still go at once)")
    digest_at: str = Field(description="local time of the daily digest, HH:MM")


class PreferencesUpdate(Body):
    """Any of the three; a field left out stays as it is. Checked in store.preferences (precise messages)."""

    lang: Annotated[str, Field(max_length=16, examples=["zh-CN", "en"])] | None = None
    notify_mode: Annotated[str, Field(max_length=16, examples=["immediate", "digest"])] | None = None
    digest_at: Annotated[str, Field(max_length=16, examples=["08:30"])] | None = None


# --- chat hooks -----------------------------------------------------------------------------------------

HookKind = Literal["wecom", "dingtalk", "feishu"]
Label = Annotated[Text, Field(max_length=100, description="shown to people, e.g. 信息科群机器人")]
HookUrl = Annotated[Text, Field(min_length=1, max_length=500, description="the bot's webhook address")]
Secret = Annotated[Text, Field(min_length=1, max_length=200,
                               description="the bot's signing secret (DingTalk 加签, Feishu 签名校验); write-only")]
Events = Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)]


class ChatHookPublic(BaseModel):
    id: int
    scope: str
    owner: str
    kind: str
    url: str = Field(description="with its key or token cut short")
    has_secret: bool
    label: str
    events: list[str] | None = Field(description="null: every chat event")
    active: bool
    created_at: datetime
    created_by: str


class ChatHookList(BaseModel):
    count: int
    items: list[ChatHookPublic]


class MyChatHookCreate(Body):
    kind: HookKind
    url: HookUrl
    secret: Secret | None = None
    label: Label = ""
    events: Events | None = Field(default=None, description="chat events to send (null: all)")


class ChatHookCreate(MyChatHookCreate):
    scope: Literal["department", "person"]
    owner: Annotated[str, Field(min_length=1, max_length=64, description="department code or person id")]


class ChatHookUpdate(Body):
    label: Label | None = None
    url: HookUrl | None = None
    secret: Secret | None = Field(default=None, description="null clears it")
    events: Events | None = Field(default=None, description="null: every chat event")
    active: bool | None = None


class ChatHookDeleted(BaseModel):
    id: int
    deleted: bool = True
    unsent_dead: int = Field(description="messages not yet sent to it, now dead letters")


# --- the outbox -----------------------------------------------------------------------------------------


class OutboxEntryPublic(BaseModel):
    id: int
    event: str
    channel: str
    state: str
    recipient_id: str
    recipient_name: str
    to_address: str = Field(description="e-mail: the address; chat: the hook's label and kind")
    hook_id: int | None
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime


class OutboxList(BaseModel):
    count: int
    items: list[OutboxEntryPublic]
    counts: dict[str, dict[str, int]] = Field(description="state → channel → rows")
