"""The state of an approval request as data, the actions people take on it, and the decisions that result.

    ValueError
     ├── RouteError        a step of the chain resolves to nobody (or too few for its quorum) who may decide it
     └── DecisionError     an action that is not allowed; `reason` is a stable code (below)

Everything here is frozen: the core reads a RequestState and an Action and returns a Decision holding the
new RequestState; the shell stores it. States: a step is `waiting` (not reached, or sent back to),
`pending` (open for decisions), `approved`, `rejected` or `cancelled`; a request is `pending`, `returned`
(sent back to the requester, who may resubmit or withdraw), `approved`, `rejected` or `withdrawn`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.models.steps import Mode, Position

SYSTEM = "system"
"""The actor of automatic decisions (an escalation rung's `decide`, `reassign`)."""

StepStatus = Literal["waiting", "pending", "approved", "rejected", "cancelled"]
RequestStatus = Literal["pending", "returned", "approved", "rejected", "withdrawn"]
Verb = Literal["approve", "reject", "send_back", "withdraw", "resubmit", "transfer", "add_approver", "comment"]
DecisionVerb = Literal[Verb, "reassign"]

REASONS = {
    "own_request": "the requester acts on their own request as an approver",
    "not_assigned": "the actor holds no place on the step (and no delegation for one)",
    "not_delegated": "on_behalf_of names someone who has not delegated to the actor",
    "ambiguous_delegation": "several assignees delegated to the actor; name on_behalf_of",
    "already_decided": "the actor's place on the step is already decided",
    "not_open": "the request or step is not open for this action",
    "not_allowed": "the step's `allow` (or the policy's `withdraw`) does not permit the verb",
    "not_distinct": "separation of duties: the person decided another step of this request",
    "not_requester": "only the requester may withdraw, resubmit",
    "reason_required": "reject and send back need a reason; a comment needs text",
    "bad_target": "the send-back target, transfer target or added approver is not acceptable",
    "to_requester": "transfer, delegation or 加签 to the requester",
    "no_approver": "the step (or the one a decision would open) has nobody left who may decide it",
}


class RouteError(ValueError):
    """A step of the chain resolves to nobody (or too few for its quorum) who may decide it."""


class DecisionError(ValueError):
    """An action that is not allowed; `reason` is one of the codes in REASONS."""

    def __init__(self, reason: str, message: str):
        assert reason in REASONS, reason
        self.reason = reason
        super().__init__(message)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approval(Frozen):
    """One approval on a step: the assignee `place` it fills, and who gave it (the assignee, their
    delegate, or "system")."""

    place: str
    actor: str


class StepState(Frozen):
    """One step of a request. `key` is unique in the request; `policy_step` names the policy step whose
    rules apply (an added step, 加签, follows the rules of the step it was added to)."""

    key: str
    policy_step: str
    title: str
    mode: Mode = "any"
    quorum: int | None = None
    state: StepStatus = "waiting"
    assignees: tuple[str, ...]
    approvals: tuple[Approval, ...] = ()
    added_by: str | None = None

    @property
    def approved_by(self) -> tuple[str, ...]:
        """The places already approved, in order."""
        return tuple(a.place for a in self.approvals)

    @property
    def deciders(self) -> frozenset[str]:
        """Everyone who decided on this step: the places and the actual actors."""
        return frozenset(p for a in self.approvals for p in (a.place, a.actor))

    @property
    def needed(self) -> int:
        """Approvals that close the step: 1 (any), n (quorum), every assignee (all)."""
        if self.mode == "any":
            return 1
        if self.mode == "quorum":
            return self.quorum or 1
        return len(self.assignees)

    @property
    def undecided(self) -> tuple[str, ...]:
        """Assignees whose place is not yet approved."""
        done = set(self.approved_by)
        return tuple(p for p in self.assignees if p not in done)


class RequestState(Frozen):
    requester: str
    policy: str
    state: RequestStatus = "pending"
    steps: tuple[StepState, ...] = Field(min_length=1)
    decisions: int = Field(default=0, ge=0)
    """Decisions (approve, reject, send back) made so far; 撤回 is possible only before the first."""

    @property
    def open_step(self) -> int | None:
        """Index of the pending step, if any (a request has at most one)."""
        return next((i for i, s in enumerate(self.steps) if s.state == "pending"), None)

    def deciders_except(self, index: int) -> frozenset[str]:
        """Everyone who decided a step other than `index` (separation of duties)."""
        return frozenset(p for i, s in enumerate(self.steps) if i != index for p in s.deciders)


class Action(Frozen):
    """Something a person does to a request.

    - approve / reject (`reason` required) / send_back (`to`: requester, previous or a step id; `reason`
      required): by an assignee of the open step, or their delegate (`on_behalf_of`, else inferred);
    - withdraw / resubmit: by the requester;
    - transfer (`to`: a person): an assignee hands their place over;
    - add_approver (`people`, `position`: before, after, parallel): 加签 by an assignee;
    - comment (`reason` holds the text): by the requester or anyone holding or having held a place.
    """

    verb: Verb
    actor: str
    step: int | None = None
    reason: str | None = Field(default=None, max_length=2000)
    to: str | None = None
    people: tuple[str, ...] = Field(default=(), max_length=20)
    position: Position | None = None
    on_behalf_of: str | None = None


class Delegation(Frozen):
    """`from_` lets `to` decide in their place from `starts` (included) to `ends` (excluded), for the listed
    policies (empty: every policy). A delegation never lets anyone decide their own request."""

    from_: str = Field(alias="from")
    to: str
    starts: datetime
    ends: datetime
    policies: tuple[str, ...] = ()

    def covers(self, *, policy: str, at: datetime) -> bool:
        return self.starts <= at < self.ends and (not self.policies or policy in self.policies)


class Decision(Frozen):
    """What an action (or an escalation rung) does: the request's new state, and what changed.

    `opened`: steps that became pending (assign, notify, start their SLA); `closed`: steps that stopped
    being pending; `finished`: the request's end state if it ended. Indexes refer to `after.steps`.
    """

    verb: DecisionVerb
    actor: str
    on_behalf_of: str | None = None
    step: int | None = None
    reason: str | None = None
    before: RequestState
    after: RequestState
    opened: tuple[int, ...] = ()
    closed: tuple[int, ...] = ()
    finished: Literal["approved", "rejected", "withdrawn"] | None = None
    target: str | None = None
    """send_back: the step key or "requester" it went to; transfer: the new assignee."""

    @property
    def step_state(self) -> StepStatus | None:
        """The acted step's state after the action (None for request-level verbs)."""
        return self.after.steps[self.step].state if self.step is not None else None
