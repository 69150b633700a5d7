"""The approval chain: which steps a request takes and who is asked at each (planning, at filing).

Rules:
- Steps run in order; a step whose `when` condition is false for the form is skipped.
- The requester is never an approver: they are removed from every step's candidates.
- With `distinct_approvers` (the default), someone who will surely decide an earlier step is not asked at a
  later one: the only candidate of a step, every assignee of an `all` (会签) step, and every assignee of a
  quorum step that needs them all. Who decides an `any` (或签) step is known only when it is decided; the
  state machine (policies/chain_verbs.py) then keeps them off the later steps.
- A step whose rule refers to `approver` asks about the previous applicable step's assignees (when that
  step is decided, it is resolved again from the people who actually approved it).
- A step left with nobody, or with fewer people than its quorum, is a RouteError: nothing is stored.
The decisions themselves (approve, reject, send back, ...) are in policies/chain_verbs.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.chain_state import (
    SYSTEM,
    Action,
    Approval,
    Decision,
    DecisionError,
    Delegation,
    RequestState,
    RouteError,
    StepState,
)
from policies.chain_verbs import apply_action, decide_by_system, reassign_step
from policies.conditions import ConditionError
from policies.models import ApprovalPolicy, Step
from policies.models.steps import Mode
from policies.org import Organisation
from policies.routing import Candidate, Context, resolve_for_approvers

__all__ = [
    "SYSTEM", "Action", "Approval", "Decision", "DecisionError", "Delegation", "Excluded", "PlannedStep",
    "RequestState", "RouteError", "StepRoute", "StepState", "apply_action", "decide_by_system", "plan_route",
    "reassign_step", "route_request", "start_request",
]


@dataclass(frozen=True)
class Excluded:
    """A candidate who is not asked, and why."""

    person_id: str
    why: str


@dataclass(frozen=True)
class StepRoute:
    """How one step of the policy applies to a request: the explanation behind a plan."""

    step: Step
    applies: bool
    condition_values: tuple[tuple[str, Any], ...] = ()
    candidates: tuple[Candidate, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    problem: str | None = None

    @property
    def assignees(self) -> tuple[str, ...]:
        return tuple(c.person_id for c in self.candidates)


@dataclass(frozen=True)
class PlannedStep:
    index: int
    step_id: str
    title: str
    mode: Mode
    assignees: tuple[str, ...]
    why: tuple[str, ...]
    quorum: int | None = None


def route_request(policy: ApprovalPolicy, form: Mapping[str, Any], requester: str,
                  org: Organisation) -> list[StepRoute]:
    """Every step of the policy with whether it applies, who would be asked and why, and any problem."""
    routes: list[StepRoute] = []
    sure: dict[str, str] = {}  # person → the step they will surely decide
    previous: tuple[str, ...] = ()
    context = Context(requester=requester, form=form)
    for step in policy.steps:
        values = tuple((f, form.get(f)) for f in sorted(step.when.fields)) if step.when else ()
        try:
            applies = step.when is None or step.when.holds(form)
        except ConditionError as exc:
            routes.append(StepRoute(step, False, values, problem=f"step {step.id!r} ({step.title}): {exc}"))
            continue
        if not applies:
            routes.append(StepRoute(step, False, values))
            continue
        found = resolve_for_approvers(step.approvers, org, context, previous)
        allowed: list[Candidate] = []
        excluded: list[Excluded] = []
        for candidate in found.candidates:
            if candidate.person_id == requester:
                excluded.append(Excluded(candidate.person_id, "the requester is never an approver"))
            elif policy.distinct_approvers and candidate.person_id in sure:
                excluded.append(Excluded(candidate.person_id,
                                         f"decides step {sure[candidate.person_id]!r} (distinct approvers)"))
            else:
                allowed.append(candidate)
        problem = _problem(step, found.nobody_because, allowed, excluded, requester)
        routes.append(StepRoute(step, True, values, tuple(allowed), tuple(excluded), problem))
        if policy.distinct_approvers and allowed and (
                len(allowed) == 1 or step.mode == "all" or (step.quorum or 0) >= len(allowed)):
            for candidate in allowed:
                sure.setdefault(candidate.person_id, step.id)
        previous = tuple(c.person_id for c in allowed)
    return routes


def plan_route(policy: ApprovalPolicy, form: Mapping[str, Any], requester: str,
               org: Organisation) -> list[PlannedStep]:
    """The steps this request will take, with their assignees; raise RouteError if one cannot be decided."""
    routes = route_request(policy, form, requester, org)
    for route in routes:
        if route.problem:
            raise RouteError(route.problem)
    planned = [PlannedStep(index=n, step_id=r.step.id, title=r.step.title, mode=r.step.mode,
                           assignees=r.assignees, why=tuple(c.why for c in r.candidates), quorum=r.step.quorum)
               for n, r in enumerate(route for route in routes if route.applies)]
    if not planned:
        raise RouteError(f"no step of {policy.id} applies to this form")
    return planned


def start_request(policy: ApprovalPolicy, planned: list[PlannedStep], requester: str) -> RequestState:
    """The state of a newly filed request: its first step pending, the others waiting."""
    steps = tuple(StepState(key=p.step_id, policy_step=p.step_id, title=p.title, mode=p.mode, quorum=p.quorum,
                            state="pending" if p.index == 0 else "waiting", assignees=p.assignees)
                  for p in planned)
    return RequestState(requester=requester, policy=policy.id, steps=steps)


def _problem(step: Step, nobody_because: str | None, allowed: list[Candidate], excluded: list[Excluded],
             requester: str) -> str | None:
    where = f"step {step.id!r} ({step.title}): {step.approvers.describe()}"
    if not allowed and not excluded:
        return f"{where} resolves to nobody in the organisation ({nobody_because or 'no one matches'})"
    if not allowed:
        if all(e.person_id == requester for e in excluded):
            return f"{where} resolves to only the requester, who is never an approver"
        return f"{where} resolves to only people who decide an earlier step (distinct approvers): " \
               + ", ".join(e.person_id for e in excluded)
    if step.quorum is not None and len(allowed) < step.quorum:
        return (f"{where} has quorum {step.quorum} but only {len(allowed)} "
                f"{'person' if len(allowed) == 1 else 'people'} in the organisation may decide it")
    return None
