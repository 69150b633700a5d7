"""Request and response bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a row id")]
"""Ids in paths: anything outside the 32-bit range of the id columns is a 422, not a database error."""


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestCreate(Body):
    policy: Text = Field(description="approval policy id, e.g. it-hardware-purchase", max_length=100)
    form: dict[str, Any] = Field(description="field values of the policy's form")


class DecisionCreate(Body):
    verb: Literal["approve", "reject"]
    reason: Text | None = Field(default=None, max_length=2000, description="required to reject (驳回理由)")


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
