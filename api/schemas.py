"""Request and response bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestCreate(Body):
    policy: str = Field(description="approval policy id, e.g. it-hardware-purchase", max_length=100)
    form: dict[str, Any] = Field(description="field values of the policy's form")


class DecisionCreate(Body):
    verb: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=2000, description="required to reject (驳回理由)")


class StepPublic(BaseModel):
    id: int
    position: int
    key: str
    title: str
    mode: str
    state: str
    assignees: list[str]
    approved_by: list[str]
    due_at: datetime | None
    provisional: bool
    decided_at: datetime | None


class RequestPublic(BaseModel):
    id: int
    policy: str
    title: str
    state: str
    requester: str
    form: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    steps: list[StepPublic]


class TaskPublic(BaseModel):
    request_id: int
    step_id: int
    title: str
    step_title: str
    requester: str
    requester_name: str
    due_at: datetime | None
    provisional: bool
    overdue: bool


class TaskList(BaseModel):
    count: int
    overdue: int
    items: list[TaskPublic]


class ObligationPublic(BaseModel):
    id: int
    policy: str
    obligation: str
    title: str
    owner_department: str
    period: str
    due_at: datetime
    shift: str
    provisional: bool
    state: str


class ObligationList(BaseModel):
    count: int
    items: list[ObligationPublic]


class PersonPublic(BaseModel):
    id: str
    name: str
    title: str
    department: str
    roles: list[str]
    email: str


class PolicyPublic(BaseModel):
    id: str
    kind: str
    title: str
    version: int
    content_hash: str
