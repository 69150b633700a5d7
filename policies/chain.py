"""The approval chain: which steps a request takes, who decides each, and what a decision does.

Rules:
- A step whose `when` condition is false for the form is skipped; the others run in order.
- The requester is never an approver (separation of duties): they are removed from every step's
  candidates, and a step left with nobody is a routing error, reported before anything is stored.
- mode `any` (或签): the first approval decides the step. mode `all` (会签): every assignee must
  approve. In both modes one rejection rejects the step and the whole request.
- A rejection needs a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policies.models import ApprovalPolicy
from policies.org import Organisation
from policies.routing import Context, resolve_people

Verb = Literal["approve", "reject"]


class RouteError(ValueError):
    """A step of the chain resolves to nobody who may decide it."""


class DecisionError(ValueError):
    """A decision that is not allowed; `reason` is one of: own_request, not_assigned, reason_required,
    already_decided, not_open."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class PlannedStep:
    index: int
    step_id: str
    title: str
    mode: Literal["any", "all"]
    assignees: tuple[str, ...]
    why: tuple[str, ...]


def plan_route(policy: ApprovalPolicy, form: Mapping[str, Any], requester: str,
               org: Organisation) -> list[PlannedStep]:
    """The steps this request will take, with their assignees; raise RouteError if one has nobody."""
    planned: list[PlannedStep] = []
    for step in policy.steps:
        if step.when is not None and not step.when.holds(form):
            continue
        candidates = resolve_people(step.approvers, org, Context(requester=requester, form=form))
        allowed = [c for c in candidates if c.person_id != requester]
        if not allowed:
            who = "only the requester" if candidates else "nobody"
            raise RouteError(f"step {step.id!r} ({step.title}): {step.approvers.describe()} resolves to {who}"
                             " in the organisation")
        planned.append(PlannedStep(
            index=len(planned), step_id=step.id, title=step.title, mode=step.mode,
            assignees=tuple(c.person_id for c in allowed), why=tuple(c.why for c in allowed)))
    if not planned:
        raise RouteError(f"no step of {policy.id} applies to this form")
    return planned


@dataclass(frozen=True)
class StepState:
    mode: Literal["any", "all"]
    assignees: tuple[str, ...]
    approved_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepOutcome:
    """What a decision does to its step: still `pending` (会签 waiting for others), or decided."""

    state: Literal["pending", "approved", "rejected"]
    approved_by: tuple[str, ...]


def decide_step(state: StepState, *, actor: str, requester: str, verb: Verb,
                reason: str | None) -> StepOutcome:
    """Apply one person's decision to an open step, or raise DecisionError saying why not."""
    if actor == requester:
        raise DecisionError("own_request", "you cannot decide your own request (separation of duties)")
    if actor not in state.assignees:
        raise DecisionError("not_assigned", "this step is not assigned to you")
    if actor in state.approved_by:
        raise DecisionError("already_decided", "you have already approved this step")
    if verb == "reject":
        if not reason or not reason.strip():
            raise DecisionError("reason_required", "a rejection needs a reason (驳回须填写理由)")
        return StepOutcome("rejected", state.approved_by)
    approved = (*state.approved_by, actor)
    if state.mode == "all" and set(approved) != set(state.assignees):
        return StepOutcome("pending", approved)
    return StepOutcome("approved", approved)
