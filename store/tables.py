"""The application's tables: the single source of truth for requests, steps, obligations, thresholds,
audit and outbox. Prefect holds only run history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, UniqueConstraint, text
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
    state: str = Field(default="pending", max_length=20, index=True)  # pending | approved | rejected
    created_at: datetime = _instant()
    decided_at: datetime | None = _instant(nullable=True)


class StepRow(SQLModel, table=True):
    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("request_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    position: int
    step_key: str = Field(max_length=100)
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
    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    step_id: int = Field(foreign_key="step.id")
    actor_id: str = Field(foreign_key="person.id", max_length=64)
    verb: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=2000)
    decided_at: datetime = _instant()


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
    state: str = Field(default="open", max_length=20, index=True)  # open | late | submitted
    submitted_at: datetime | None = _instant(nullable=True)
    created_at: datetime = _instant()


# --- time-driven work, audit, outbox ------------------------------------------------------------------

class ThresholdRow(SQLModel, table=True):
    """An instant at which an item is reminded, marked late or escalated; fires at most once."""

    __tablename__ = "threshold"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "key"),
        # the sweep's range scan: only unfired rows are in the index
        Index("ix_threshold_pending", "fire_at", sqlite_where=text("state = 'pending'"),
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
    """Append-only, hash-chained: each event's hash covers its content and the previous hash."""

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
    )
    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=200, unique=True)  # one per (event, recipient): never twice
    event: str = Field(max_length=40)
    channel: str = Field(default="email", max_length=20)
    recipient_id: str = Field(foreign_key="person.id", max_length=64)
    to_address: str = Field(max_length=320)
    lang: str = Field(default="zh-CN", max_length=16)
    context: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=20)  # pending | sent | dead
    attempts: int = 0
    next_attempt_at: datetime = _instant()
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _instant()
    sent_at: datetime | None = _instant(nullable=True)
