"""Request and response bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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


StepVerb = Literal["approve", "reject", "send_back", "transfer", "add_approver"]
PersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Reason = Annotated[Text, Field(max_length=2000)]


class DecisionCreate(Body):
    """One verb on the open step. Only the fields of the verb may be given:

    - approve: `on_behalf_of` (optional);
    - reject: `reason` (required, 驳回理由), `on_behalf_of`;
    - send_back (退回): `reason` (required), `to` = requester | previous | an earlier step's key (default: the
      step's first allowed target), `on_behalf_of`;
    - transfer (转交): `to` = a person id, `reason` (optional note);
    - add_approver (加签): `people` (person ids), `position` = before | after | parallel, `reason` (optional).

    `on_behalf_of` names the assignee a delegate acts for; without it a delegate acts for the one assignee
    who delegated to them (two or more: 403 `ambiguous_delegation`)."""

    verb: StepVerb
    reason: Reason | None = Field(default=None, description="required to reject and to send back")
    to: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="send_back: requester, previous or a step key; transfer: a person id")
    people: list[PersonId] = Field(default_factory=list, max_length=20, description="add_approver: who is added")
    position: Literal["before", "after", "parallel"] | None = Field(default=None, description="add_approver")
    on_behalf_of: PersonId | None = Field(default=None, description="approve, reject, send_back: as a delegate")

    @model_validator(mode="after")
    def _fields_of_the_verb(self) -> DecisionCreate:
        allowed = {"approve": {"on_behalf_of"}, "reject": {"reason", "on_behalf_of"},
                   "send_back": {"reason", "to", "on_behalf_of"}, "transfer": {"to", "reason"},
                   "add_approver": {"people", "position", "reason"}}[self.verb]
        extra = sorted(f for f in self.model_fields_set - {"verb"} - allowed
                       if getattr(self, f) not in (None, []))
        if extra:
            raise ValueError(f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to {self.verb}")
        if self.verb == "transfer" and not self.to:
            raise ValueError("transfer needs `to`: the person who takes your place")
        if self.verb == "add_approver" and (not self.people or self.position is None):
            raise ValueError("add_approver needs `people` and `position` (before, after or parallel)")
        return self


class WithdrawCreate(Body):
    reason: Reason | None = Field(default=None, description="why the request is withdrawn (optional)")


class ResubmitCreate(Body):
    """Resubmitting sends the request on as it was filed; the form cannot be changed after filing."""


class CommentCreate(Body):
    text: Reason = Field(min_length=1, description="the comment (评论)")


class TaskRef(Body):
    request_id: int = Field(ge=1, le=2**31 - 1)
    step_id: int = Field(ge=1, le=2**31 - 1)


class BulkApprove(Body):
    items: list[TaskRef] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _each_once(self) -> BulkApprove:
        pairs = [(i.request_id, i.step_id) for i in self.items]
        if len(set(pairs)) != len(pairs):
            raise ValueError("a (request_id, step_id) pair is listed twice")
        return self


class ItemError(BaseModel):
    code: str
    message: str
    problems: dict[str, str] = {}


class BulkItemResult(BaseModel):
    request_id: int
    step_id: int
    ok: bool
    state: str | None = None
    """The request's state after the approval (when ok)."""
    error: ItemError | None = None


class BulkResult(BaseModel):
    ok: int
    failed: int
    items: list[BulkItemResult]


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
    added_by: str | None = None
    """Who added this step (加签); None for a step of the policy."""


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


class RequestSummary(BaseModel):
    id: int
    policy: str
    title: str
    state: str
    requester: str
    requester_name: str
    created_at: datetime
    decided_at: datetime | None
    open_step: str | None
    """The title of the step waiting for a decision, if any."""


class RequestList(BaseModel):
    count: int
    items: list[RequestSummary]


class TaskPublic(BaseModel):
    request_id: int
    step_id: int
    policy: str
    title: str
    step_title: str
    requester: str
    requester_name: str
    due_at: datetime | None
    provisional: bool
    overdue: bool
    delegated_from: list[str] = []
    """Empty: assigned to me; else the assignees whose delegation to me brings this task."""


class TaskList(BaseModel):
    count: int
    overdue: int
    due_today: int
    """Due later today (in the institution's time zone), not yet overdue."""
    by_policy: dict[str, int]
    items: list[TaskPublic]


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: str | None
    actor_name: str
    text: str
    tone: str


class Timeline(BaseModel):
    count: int
    items: list[TimelineEntry]


class DelegationCreate(Body):
    from_: PersonId | None = Field(default=None, alias="from",
                                   description="the delegator: you (default); an administrator may name anyone")
    to: PersonId
    starts: datetime = Field(description="with a time zone offset")
    ends: datetime = Field(description="excluded; at most a year after starts")
    policies: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="approval policy ids; empty: every policy")
    reason: Reason | None = Field(default=None, max_length=500)

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    @model_validator(mode="after")
    def _aware(self) -> DelegationCreate:
        for name in ("starts", "ends"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} needs a time zone offset, e.g. 2026-10-01T00:00:00+08:00")
        return self


class DelegationPublic(BaseModel):
    id: int
    from_: str = Field(serialization_alias="from")
    to: str
    starts: datetime
    ends: datetime
    policies: list[str]
    reason: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    active: bool


class DelegationList(BaseModel):
    count: int
    items: list[DelegationPublic]


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
