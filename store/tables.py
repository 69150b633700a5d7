"""The application's tables: the single source of truth for requests, steps, obligations, thresholds,
audit and outbox. Prefect holds only run history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime


def _instant(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


# --- organisation -------------------------------------------------------------------------------------

class DepartmentRow(SQLModel, table=True):
    __tablename__ = "department"
    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    head_id: str | None = Field(default=None, max_length=64)
    leader_in_charge_id: str | None = Field(default=None, max_length=64)


class PersonRow(SQLModel, table=True):
    __tablename__ = "person"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    title: str = Field(default="", max_length=200)
    department_code: str = Field(foreign_key="department.code", max_length=64)
    email: str = Field(max_length=320)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    lang: str = Field(default="zh-CN", max_length=16)
    active: bool = True
    password_hash: str | None = Field(default=None, max_length=200)
    # immediate: each e-mail as it happens; digest: routine e-mails wait for the daily digest at `digest_at`
    # (local time, working days); urgent ones (escalated to you, overdue) still go at once
    notify_mode: str = Field(default="immediate", max_length=10)
    digest_at: str = Field(default="08:30", max_length=5)  # HH:MM


# --- policies -----------------------------------------------------------------------------------------

class PolicyVersionRow(SQLModel, table=True):
    """One version of one policy, named by the hash of its text; requests keep the version they began on."""

    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("policy_id", "content_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    policy_id: str = Field(max_length=100, index=True)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=300)
    content_hash: str = Field(max_length=64)
    source: str = Field(max_length=500)
    text: str
    loaded_at: datetime = _instant()
    current: bool = True


# --- approvals ----------------------------------------------------------------------------------------

class RequestRow(SQLModel, table=True):
    __tablename__ = "request"
    id: int | None = Field(default=None, primary_key=True)
    policy_version_id: int = Field(foreign_key="policy_version.id")
    policy_id: str = Field(max_length=100, index=True)
    title: str = Field(max_length=300)
    requester_id: str = Field(foreign_key="person.id", max_length=64, index=True)
    form: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # pending | returned (sent back to the requester) | approved | rejected | withdrawn
    state: str = Field(default="pending", max_length=20, index=True)
    created_at: datetime = _instant()
    decided_at: datetime | None = _instant(nullable=True)


class StepRow(SQLModel, table=True):
    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("request_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    position: int  # order in the request; 加签 inserts a step and renumbers the later ones (highest first)
    step_key: str = Field(max_length=100)  # unique in the request
    policy_step: str | None = Field(default=None, max_length=100)  # whose rules apply (None: step_key)
    added_by: str | None = Field(default=None, max_length=64)  # who added it (加签), None if planned
    title: str = Field(max_length=300)
    mode: str = Field(max_length=10)
    # waiting (a later step) | pending (open) | approved | rejected | cancelled
    state: str = Field(default="waiting", max_length=20)
    assignees: list[str] = Field(sa_column=Column(JSON, nullable=False))
    approved_by: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    opened_at: datetime | None = _instant(nullable=True)
    due_at: datetime | None = _instant(nullable=True)
    provisional: bool = False
    decided_at: datetime | None = _instant(nullable=True)
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default=text("1")))


class AssignmentRow(SQLModel, table=True):
    """Who is involved in a step: `approver` (may decide while open; the inbox is one indexed look-up
    on person_id) or `watcher` (was escalated to, may see the request)."""

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("step_id", "person_id", "kind"),
                      Index("ix_assignment_inbox", "person_id", "open"))
    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    person_id: str = Field(foreign_key="person.id", max_length=64)
    kind: str = Field(default="approver", max_length=20)
    open: bool = True


class DecisionRow(SQLModel, table=True):
    """One thing a person (or the system: actor_id None) did to a request: approve, reject, send_back,
    withdraw, resubmit, transfer, add_approver, comment, reassign."""

    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    step_id: int | None = Field(default=None, foreign_key="step.id")
    actor_id: str | None = Field(default=None, foreign_key="person.id", max_length=64)
    on_behalf_of: str | None = Field(default=None, max_length=64)  # the assignee a delegate acted for
    verb: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=2000)
    target: str | None = Field(default=None, max_length=200)  # send_back: where to; transfer: to whom
    decided_at: datetime = _instant()


class DelegationRow(SQLModel, table=True):
    """`from_id` lets `to_id` decide in their place in [starts, ends), for the listed policies (empty: all)."""

    __tablename__ = "delegation"
    __table_args__ = (Index("ix_delegation_to", "to_id", "ends"),)
    id: int | None = Field(default=None, primary_key=True)
    from_id: str = Field(foreign_key="person.id", max_length=64, index=True)
    to_id: str = Field(foreign_key="person.id", max_length=64)
    starts: datetime = _instant()
    ends: datetime = _instant()
    policies: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(foreign_key="person.id", max_length=64)
    created_at: datetime = _instant()
    revoked_at: datetime | None = _instant(nullable=True)


class CommentRow(SQLModel, table=True):
    """A remark on a request, a submission or an obligation; never edited (a correction is a new comment)."""

    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_subject", "subject_type", "subject_id"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=20)  # request | submission | obligation
    subject_id: int
    author_id: str = Field(foreign_key="person.id", max_length=64)
    text: str = Field(max_length=2000)
    created_at: datetime = _instant()


class AttachmentRow(SQLModel, table=True):
    """A file stored in the database (size-limited, content type checked), attached to a request or a
    submission once that is filed; `kind` names the attachment kind a policy requires."""

    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_owner", "owner_type", "owner_id"),)
    id: int | None = Field(default=None, primary_key=True)
    owner_type: str | None = Field(default=None, max_length=20)  # request | submission; None until attached
    owner_id: int | None = None
    kind: str | None = Field(default=None, max_length=64)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: str = Field(foreign_key="person.id", max_length=64, index=True)
    uploaded_at: datetime = _instant()


# --- reporting obligations ----------------------------------------------------------------------------

class ObligationRow(SQLModel, table=True):
    __tablename__ = "obligation"
    __table_args__ = (UniqueConstraint("policy_id", "obligation_key", "owner_department", "period_key"),)
    id: int | None = Field(default=None, primary_key=True)
    policy_id: str = Field(max_length=100)
    policy_version_id: int = Field(foreign_key="policy_version.id")
    obligation_key: str = Field(max_length=100)
    title: str = Field(max_length=300)
    owner_department: str = Field(foreign_key="department.code", max_length=64, index=True)
    period_key: str = Field(max_length=20)
    period_start: str = Field(max_length=10)
    period_end: str = Field(max_length=10)
    due_at: datetime = _instant(index=True)
    nominal_date: str = Field(max_length=10)
    shift: str = Field(max_length=30)
    provisional: bool = False
    # open | late | under_review | submitted | waived
    state: str = Field(default="open", max_length=20, index=True)
    late: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    """Was (or is) past its due time without an accepted submission."""
    submitted_at: datetime | None = _instant(nullable=True)
    waived_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = _instant()
    event_at: datetime | None = _instant(nullable=True)
    """Event-relative obligations (`trigger:`): when the event happened; the period is the event."""
    event_ref: str | None = Field(default=None, max_length=200)
    """The reporter's reference of the event (case number, transfer id); unique per obligation and owner."""


class SubmissionRow(SQLModel, table=True):
    """A report handed in for an obligation. A correction (修报) or late report (补报) is a new row that
    points at the one it corrects; rows are never overwritten. With a review chain, `review_request_id` is
    the approval request (of the review policy) that reviews it."""

    __tablename__ = "submission"
    id: int | None = Field(default=None, primary_key=True)
    obligation_id: int = Field(foreign_key="obligation.id", index=True)
    kind: str = Field(default="original", max_length=20)  # original | correction (修报) | late (补报)
    corrects_id: int | None = Field(default=None, foreign_key="submission.id")
    submitted_by: str = Field(foreign_key="person.id", max_length=64)
    submitted_at: datetime = _instant()
    note: str | None = Field(default=None, max_length=2000)
    late: bool = False
    # under_review | accepted | returned | superseded
    state: str = Field(default="accepted", max_length=20)
    review_request_id: int | None = Field(default=None, foreign_key="request.id")
    reviewed_at: datetime | None = _instant(nullable=True)


# --- time-driven work, audit, outbox ------------------------------------------------------------------

class ThresholdRow(SQLModel, table=True):
    """An instant at which an item is reminded, marked late or escalated; fires at most once."""

    __tablename__ = "threshold"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "key"),
        # the sweep's range scan: only unfired rows are in the index
        Index("ix_threshold_pending", "fire_at", "id", sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
    )
    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=20)  # step | obligation
    subject_id: int
    key: str = Field(max_length=40)
    action: str = Field(max_length=20)  # remind | mark_late | escalate
    rung: int | None = None
    fire_at: datetime = _instant()
    provisional: bool = False
    state: str = Field(default="pending", max_length=20)  # pending | fired | skipped | cancelled
    fired_at: datetime | None = _instant(nullable=True)


class AuditEventRow(SQLModel, table=True):
    """Append-only, hash-chained: each event's hash covers its content and the previous hash.
    Database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_event"
    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = _instant()
    actor_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=60)
    subject_type: str = Field(max_length=20)
    subject_id: str = Field(max_length=64, index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHeadRow(SQLModel, table=True):
    """One row holding the chain's last hash; writers lock it, which orders the chain."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class OutboxRow(SQLModel, table=True):
    """A notification to send, written in the same transaction as the event that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
        Index("ix_outbox_held", "recipient_id", sqlite_where=text("state = 'held'"),
              postgresql_where=text("state = 'held'")),
        Index("ix_outbox_sent", "channel", "sent_at"),  # the per-channel rate limit counts the last minute
    )
    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=200, unique=True)  # one per (event, recipient): never twice
    event: str = Field(max_length=40)
    channel: str = Field(default="email", max_length=20)  # email | chat
    hook_id: int | None = Field(default=None, foreign_key="chat_hook.id")  # channel chat: where it goes
    recipient_id: str = Field(foreign_key="person.id", max_length=64)
    to_address: str = Field(max_length=320)
    lang: str = Field(default="zh-CN", max_length=16)
    context: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=20)  # pending | sent | dead | held (for a digest) | digested
    attempts: int = 0
    next_attempt_at: datetime = _instant()
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _instant()
    sent_at: datetime | None = _instant(nullable=True)


class ChatHookRow(SQLModel, table=True):
    """A chat-bot webhook (WeCom, DingTalk, Feishu) of a department (its group) or of one person."""

    __tablename__ = "chat_hook"
    __table_args__ = (Index("ix_chat_hook_owner", "scope", "owner"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=20)  # department | person
    owner: str = Field(max_length=64)  # department code or person id
    kind: str = Field(max_length=20)  # wecom | dingtalk | feishu
    url: str = Field(max_length=500)
    secret: str | None = Field(default=None, max_length=200)  # the bot's signing secret (DingTalk, Feishu)
    label: str = Field(default="", max_length=100)
    events: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # None: every chat event
    active: bool = True
    created_at: datetime = _instant()
    created_by: str = Field(max_length=64)


class NotificationRow(SQLModel, table=True):
    """The in-app notification list: one row per (event, person), queued with the e-mail; rendered when read,
    in the reader's language."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_person", "person_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=200, unique=True)
    event: str = Field(max_length=40)
    person_id: str = Field(foreign_key="person.id", max_length=64)
    context: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _instant()
    read_at: datetime | None = _instant(nullable=True)


class ScheduleMarkRow(SQLModel, table=True):
    """When a scheduled job last started and finished (embedded mode): a restart runs a job it missed
    once, however many of its times passed while the process was down."""

    __tablename__ = "schedule_mark"
    job: str = Field(primary_key=True, max_length=60)
    last_started_at: datetime = _instant()
    last_finished_at: datetime | None = _instant(nullable=True)
    last_outcome: str = Field(default="running", max_length=20)  # running | completed | failed


class AuditCheckpointRow(SQLModel, table=True):
    """A verification of the audit chain (housekeeping, daily): how far it reached, and the head it saw."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _instant(index=True)
    seq: int = 0
    hash: str = Field(max_length=64)
    events: int = 0
    ok: bool = True
    problem: str | None = Field(default=None, max_length=1000)


# --- accounts, idempotency, uploaded calendars ---------------------------------------------------------

class AuthSessionRow(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random secret, the table its SHA-256."""

    __tablename__ = "auth_session"
    id: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie secret
    person_id: str = Field(foreign_key="person.id", max_length=64, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = _instant()
    last_seen_at: datetime = _instant()
    expires_at: datetime = _instant(index=True)
    revoked_at: datetime | None = _instant(nullable=True)


class ApiTokenRow(SQLModel, table=True):
    """A personal API token for scripts: random, stored as its SHA-256, revocable, with an expiry."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", max_length=64, index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)  # the first characters, to recognise a token in a list
    created_at: datetime = _instant()
    expires_at: datetime = _instant()
    last_used_at: datetime | None = _instant(nullable=True)
    revoked_at: datetime | None = _instant(nullable=True)


class LoginFailureRow(SQLModel, table=True):
    """A failed sign-in, for rate limiting by account and by address across API replicas."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_account", "account", "at"),
                      Index("ix_login_failure_remote", "remote", "at"))
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    remote: str = Field(max_length=64)
    at: datetime = _instant()


class IdempotencyRow(SQLModel, table=True):
    """The first answer to a state-changing call with an Idempotency-Key, stored in the call's own
    transaction: a retry gets it back; the same key with another body is refused."""

    __tablename__ = "idempotency_key"
    person_id: str = Field(primary_key=True, foreign_key="person.id", max_length=64)
    key: str = Field(primary_key=True, max_length=200)
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)
    body_hash: str = Field(max_length=64)
    status_code: int
    response: Any = Field(sa_column=Column(JSON, nullable=True))
    created_at: datetime = _instant(index=True)


class HolidayYearRow(SQLModel, table=True):
    """A working-day calendar year uploaded by an administrator (overrides the shipped file of that year)."""

    __tablename__ = "holiday_year"
    year: int = Field(primary_key=True)
    text: str
    content_hash: str = Field(max_length=64)
    uploaded_by: str = Field(foreign_key="person.id", max_length=64)
    uploaded_at: datetime = _instant()
