"""The chain's state machine: an action on a request's state → a Decision, or DecisionError with a reason.

Rules (each has a named test in tests/policies/test_approval_verbs.py):
- Approvers act only on the open (pending) step of a pending request, in their own place or, as a delegate,
  in the place of an assignee whose active delegation (covering `now` and the policy) names them; the step's
  `allow` must list the verb (and `delegate` for a delegate). Nobody acts on their own request.
- approve: the step is approved when its mode is met — any (或签): one approval; all (会签): every
  assignee; quorum n: n approvals. Then the next waiting step opens, or the request is approved.
- reject: needs a reason; the request is rejected and every other open or waiting step cancelled.
- send_back (退回): needs a reason; to `requester` (the request is `returned`; the requester resubmits or
  withdraws), `previous`, or a named earlier step (it reopens). With `keep_approvals: false` every step from
  the target on is decided again; with true, only the target is, and approved steps stay approved.
- withdraw (撤回): by the requester, while no decision has been made (or while the request is returned),
  unless the policy says `withdraw: never`.
- transfer (转交): an undecided assignee hands their place to another active person — not the requester,
  not someone already on the step, not (with distinct approvers) someone who decided another step.
- add_approver (加签): `before` inserts a step of the added people that must approve first (the current step
  waits); `after` inserts one right after the current step; `parallel` adds them to the current step, which
  must be 会签 (`all`). Added people follow the same rules as transfer targets.
- comment: any text, by the requester or anyone who holds or held a place; changes nothing.
- Separation of duties (`distinct_approvers`): a person who decided one step may not decide another, and a
  step opens only with people who have not; a decision that would open a step with nobody is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from policies.chain_state import (
    SYSTEM,
    Action,
    Approval,
    Decision,
    DecisionError,
    Delegation,
    RequestState,
    StepState,
)
from policies.models import ApprovalPolicy
from policies.models.steps import Step, StepVerb
from policies.org import Organisation
from policies.routing import Context, resolve_for_approvers

Steps = list[StepState]


def apply_action(policy: ApprovalPolicy, state: RequestState, action: Action, *, org: Organisation,
                 now: datetime, delegations: Sequence[Delegation] = ()) -> Decision:
    """Apply one action by `action.actor` at `now`; raise DecisionError saying why it is not allowed."""
    return _VERBS[action.verb](_Turn(policy, state, action, org, now, tuple(delegations)))


def decide_by_system(policy: ApprovalPolicy, state: RequestState, index: int, verb: Literal["approve", "reject"],
                     reason: str | None, *, org: Organisation) -> Decision:
    """An escalation rung's `decide`: the system approves or rejects the open step `index` outright."""
    step = _require_open(state, index)
    turn = _Turn(policy, state, Action(verb=verb, actor=SYSTEM, step=index, reason=reason), org, None, ())
    if verb == "reject":
        return turn.reject_with(index, reason or "")
    approved = step.model_copy(update={"state": "approved",
                                       "approvals": (*step.approvals, Approval(place=SYSTEM, actor=SYSTEM))})
    return turn.after_approval(index, approved)


def reassign_step(policy: ApprovalPolicy, state: RequestState, index: int, people: Sequence[str], *,
                  org: Organisation) -> Decision:
    """An escalation rung's `reassign`: the open step's undecided places go to `people` (minus the
    requester, inactive people, and — with distinct approvers — people who decided another step)."""
    step = _require_open(state, index)
    taken = state.deciders_except(index) if policy.distinct_approvers else frozenset()
    fresh = [p for p in dict.fromkeys(people) if p != state.requester and p in org.people and org.people[p].active
             and p not in taken and p not in step.approved_by]
    assignees = (*step.approved_by, *fresh)
    if not fresh or (step.mode == "quorum" and len(assignees) < step.needed):
        raise DecisionError("no_approver", f"step {step.key!r} cannot be reassigned: nobody eligible among "
                                           f"{', '.join(people) or 'nobody'}")
    steps = list(state.steps)
    steps[index] = step.model_copy(update={"assignees": assignees})
    return Decision(verb="reassign", actor=SYSTEM, step=index, before=state,
                    after=state.model_copy(update={"steps": tuple(steps)}))


class _Turn:
    """One action being applied: the inputs, and the checks and moves the verbs share."""

    def __init__(self, policy: ApprovalPolicy, state: RequestState, action: Action, org: Organisation,
                 now: datetime | None, delegations: tuple[Delegation, ...]):
        self.policy, self.state, self.action, self.org = policy, state, action, org
        self.now, self.delegations = now, delegations

    # --- checks -------------------------------------------------------------------------------------

    def open_index(self) -> int:
        if self.state.state != "pending":
            raise DecisionError("not_open", f"the request is {self.state.state}, not open for decisions")
        index = self.state.open_step
        if index is None or (self.action.step is not None and self.action.step != index):
            raise DecisionError("not_open", "this step is not open for decisions")
        return index

    def spec(self, step: StepState) -> Step:
        return self.policy.step(step.policy_step)

    def require_allowed(self, step: StepState, verb: StepVerb) -> None:
        if not self.spec(step).allows(verb):
            raise DecisionError("not_allowed", f"step {step.title!r} does not allow {verb}")

    def require_reason(self) -> str:
        reason = (self.action.reason or "").strip()
        if not reason:
            what = {"reject": "a rejection needs a reason (驳回须填写理由)",
                    "send_back": "a send-back needs a reason (退回须填写理由)"}
            raise DecisionError("reason_required", what.get(self.action.verb, "a comment needs text"))
        return reason

    def place(self, index: int) -> str:
        """The assignee place the actor decides in (their own, or a delegator's)."""
        step, actor = self.state.steps[index], self.action.actor
        if actor == self.state.requester:
            raise DecisionError("own_request", "you cannot decide your own request (separation of duties)")
        behalf = self.action.on_behalf_of
        if behalf is not None and behalf != actor:
            if behalf not in step.assignees:
                raise DecisionError("not_assigned", f"{behalf} holds no place on this step")
            if not self.delegated(behalf):
                raise DecisionError("not_delegated", f"{behalf} has no active delegation to you for this policy")
            place = behalf
        elif actor in step.assignees:
            place = actor
        else:
            delegators = [p for p in step.undecided if self.delegated(p)]
            if len(delegators) > 1:
                raise DecisionError("ambiguous_delegation", f"you act for {', '.join(delegators)}; name one")
            if not delegators:
                raise DecisionError("not_assigned", "this step is not assigned to you")
            place = delegators[0]
        if place in step.approved_by:
            raise DecisionError("already_decided", "this place on the step is already approved"
                                if place != actor else "you have already approved this step")
        if place != actor:
            self.require_allowed(step, "delegate")
        self.require_distinct(index, {actor, place})
        return place

    def delegated(self, person: str) -> bool:
        now = self.now
        return now is not None and any(d.from_ == person and d.to == self.action.actor
                                       and d.covers(policy=self.policy.id, at=now) for d in self.delegations)

    def require_distinct(self, index: int, people: set[str]) -> None:
        if self.policy.distinct_approvers:
            clash = sorted(people & self.state.deciders_except(index))
            if clash:
                raise DecisionError("not_distinct", f"{', '.join(clash)} decided another step of this request "
                                                    "(distinct approvers)")

    def own_undecided_place(self, index: int) -> StepState:
        """For transfer and 加签: the actor must hold an undecided place themselves (not as a delegate)."""
        step, actor = self.state.steps[index], self.action.actor
        if actor == self.state.requester:
            raise DecisionError("own_request", "you cannot act as an approver on your own request")
        if actor in step.approved_by:
            raise DecisionError("already_decided", "you have already approved this step")
        if actor not in step.assignees:
            raise DecisionError("not_assigned", "this step is not assigned to you")
        return step

    def newcomer(self, index: int, person: str) -> str:
        """Check a transfer target or added approver."""
        if person == self.state.requester:
            raise DecisionError("to_requester", "the requester cannot be made an approver of their own request")
        found = self.org.people.get(person)
        if found is None or not found.active:
            raise DecisionError("bad_target", f"{person!r} is not an active person of the organisation")
        if person in self.state.steps[index].assignees:
            raise DecisionError("bad_target", f"{person} already holds a place on this step")
        self.require_distinct(index, {person})
        return person

    # --- moves --------------------------------------------------------------------------------------

    def decision(self, steps: Steps, *, step: int | None, opened: tuple[int, ...] = (),
                 closed: tuple[int, ...] = (), finished: Literal["approved", "rejected", "withdrawn"] | None = None,
                 target: str | None = None, counts: bool = False, **update: object) -> Decision:
        after = self.state.model_copy(update={"steps": tuple(steps), **update,
                                              "decisions": self.state.decisions + int(counts)})
        return Decision(verb=self.action.verb, actor=self.action.actor, step=step, reason=self.action.reason,
                        before=self.state, after=after, opened=opened, closed=closed, finished=finished,
                        target=target, on_behalf_of=self.action.on_behalf_of)

    def opening(self, steps: Steps, index: int) -> StepState:
        """Step `index` opened: a rule on `approver` resolved again from who actually approved the previous
        step; people who decided another step removed (distinct approvers)."""
        step = steps[index]
        assignees = step.assignees
        rule = self.spec(step).approvers
        if step.added_by is None and not step.approvals and rule.refers_to("approver"):
            previous = next((s.approved_by for s in reversed(steps[:index])
                             if s.state == "approved" and s.added_by is None), ())
            people = [p for p in previous if p != SYSTEM]
            if people:  # an automatic approval leaves the people planned at filing
                found = resolve_for_approvers(rule, self.org, Context(requester=self.state.requester), people)
                assignees = tuple(c.person_id for c in found.candidates if c.person_id != self.state.requester)
        if self.policy.distinct_approvers:
            taken = frozenset(p for i, s in enumerate(steps) if i != index for p in s.deciders)
            assignees = tuple(p for p in assignees if p not in taken or p in step.approved_by)
        if not assignees or (step.mode == "quorum" and len(assignees) < step.needed):
            raise DecisionError("no_approver", f"step {step.title!r} would have nobody left who may decide it "
                                               "(distinct approvers); ask an administrator to reassign it")
        return step.model_copy(update={"state": "pending", "assignees": assignees})

    def after_approval(self, index: int, step: StepState) -> Decision:
        steps = list(self.state.steps)
        steps[index] = step
        if step.state != "approved":
            return self.decision(steps, step=index, counts=True)
        for j in range(index + 1, len(steps)):
            if steps[j].state == "waiting":
                steps[j] = self.opening(steps, j)
                return self.decision(steps, step=index, opened=(j,), closed=(index,), counts=True)
        return self.decision(steps, step=index, closed=(index,), finished="approved", counts=True, state="approved")

    def reject_with(self, index: int, reason: str) -> Decision:
        steps = [s.model_copy(update={"state": "rejected"}) if i == index
                 else s.model_copy(update={"state": "cancelled"}) if s.state in ("waiting", "pending") else s
                 for i, s in enumerate(self.state.steps)]
        return self.decision(steps, step=index, closed=(index,), finished="rejected", counts=True, state="rejected")


def _require_open(state: RequestState, index: int) -> StepState:
    if state.state != "pending" or not 0 <= index < len(state.steps) or state.steps[index].state != "pending":
        raise DecisionError("not_open", "this step is not open for decisions")
    return state.steps[index]


# --- the verbs ----------------------------------------------------------------------------------------

def _approve(turn: _Turn) -> Decision:
    index = turn.open_index()
    step = turn.state.steps[index]
    turn.require_allowed(step, "approve")
    place = turn.place(index)
    approvals = (*step.approvals, Approval(place=place, actor=turn.action.actor))
    updated = step.model_copy(update={"approvals": approvals})
    if len(approvals) >= updated.needed:
        updated = updated.model_copy(update={"state": "approved"})
    return turn.after_approval(index, updated)


def _reject(turn: _Turn) -> Decision:
    index = turn.open_index()
    turn.require_allowed(turn.state.steps[index], "reject")
    turn.place(index)
    return turn.reject_with(index, turn.require_reason())


def _send_back(turn: _Turn) -> Decision:
    index = turn.open_index()
    step = turn.state.steps[index]
    turn.require_allowed(step, "send_back")
    turn.place(index)
    turn.require_reason()
    rule = turn.spec(step).send_back
    target = turn.action.to or rule.to[0]
    if target not in rule.to:
        raise DecisionError("bad_target", f"step {step.title!r} sends back only to: {', '.join(rule.to)}")
    steps = list(turn.state.steps)
    if target == "requester":
        for i, s in enumerate(steps):
            if not rule.keep_approvals and s.state in ("waiting", "pending", "approved"):
                steps[i] = s.model_copy(update={"state": "waiting", "approvals": ()})
            elif s.state == "pending":
                steps[i] = s.model_copy(update={"state": "waiting"})
        return turn.decision(steps, step=index, closed=(index,), target="requester", counts=True, state="returned")
    goal = index - 1 if target == "previous" else next(
        (j for j in range(index) if steps[j].policy_step == target and steps[j].added_by is None), None)
    if goal is None or goal < 0:
        raise DecisionError("bad_target", f"there is no earlier step {target!r} on this request to send back to")
    for i in range(goal, len(steps)):
        if i == goal or not rule.keep_approvals:
            steps[i] = steps[i].model_copy(update={"state": "waiting", "approvals": ()})
        elif i == index:
            steps[i] = steps[i].model_copy(update={"state": "waiting"})
    steps[goal] = turn.opening(steps, goal)
    return turn.decision(steps, step=index, opened=(goal,), closed=(index,), target=steps[goal].key, counts=True)


def _withdraw(turn: _Turn) -> Decision:
    state = turn.state
    if turn.action.actor != state.requester:
        raise DecisionError("not_requester", "only the requester may withdraw a request (撤回)")
    if turn.policy.withdraw == "never":
        raise DecisionError("not_allowed", "this policy does not allow withdrawing a request")
    if state.state not in ("pending", "returned"):
        raise DecisionError("not_open", f"the request is already {state.state}")
    if state.state == "pending" and state.decisions > 0:
        raise DecisionError("not_allowed", "a request can be withdrawn only until the first decision on it")
    steps = [s.model_copy(update={"state": "cancelled"}) if s.state in ("waiting", "pending") else s
             for s in state.steps]
    closed = tuple(i for i, s in enumerate(state.steps) if s.state == "pending")
    return turn.decision(steps, step=None, closed=closed, finished="withdrawn", state="withdrawn")


def _resubmit(turn: _Turn) -> Decision:
    state = turn.state
    if turn.action.actor != state.requester:
        raise DecisionError("not_requester", "only the requester may resubmit a returned request")
    if state.state != "returned":
        raise DecisionError("not_open", "only a request sent back to the requester can be resubmitted")
    steps = list(state.steps)
    first = next((j for j, s in enumerate(steps) if s.state == "waiting"), None)
    if first is None:
        raise DecisionError("not_open", "no step of this request is left to decide")
    steps[first] = turn.opening(steps, first)
    return turn.decision(steps, step=None, opened=(first,), state="pending")


def _transfer(turn: _Turn) -> Decision:
    index = turn.open_index()
    step = turn.own_undecided_place(index)
    turn.require_allowed(step, "transfer")
    if not turn.action.to:
        raise DecisionError("bad_target", "name the person to transfer to (转交)")
    target = turn.newcomer(index, turn.action.to)
    steps = list(turn.state.steps)
    steps[index] = step.model_copy(update={"assignees": tuple(target if p == turn.action.actor else p
                                                              for p in step.assignees)})
    return turn.decision(steps, step=index, target=target)


def _add_approver(turn: _Turn) -> Decision:
    index = turn.open_index()
    step = turn.own_undecided_place(index)
    turn.require_allowed(step, "add_approver")
    position = turn.action.position
    if position is None or position not in turn.spec(step).add_approver:
        allowed = ", ".join(turn.spec(step).add_approver) or "none"
        raise DecisionError("not_allowed", f"加签 {position or '(no position)'} is not allowed here "
                                           f"(allowed: {allowed})")
    people = tuple(dict.fromkeys(turn.action.people))
    if not people:
        raise DecisionError("bad_target", "name the people to add (加签)")
    people = tuple(turn.newcomer(index, p) for p in people)
    steps = list(turn.state.steps)
    if position == "parallel":
        if step.mode != "all":
            raise DecisionError("not_allowed", f"parallel 加签 adds a place to a 会签 (all) step; this step is "
                                               f"{step.mode}")
        steps[index] = step.model_copy(update={"assignees": (*step.assignees, *people)})
        return turn.decision(steps, step=index)
    number = 1 + sum(1 for s in steps if s.key.startswith(f"{step.key}+"))
    added = StepState(key=f"{step.key}+{position}-{number}", policy_step=step.policy_step,
                      title=f"{step.title}（加签）", mode="all", assignees=people, added_by=turn.action.actor,
                      state="pending" if position == "before" else "waiting")
    if position == "before":
        steps[index] = step.model_copy(update={"state": "waiting"})
        steps.insert(index, added)
        return turn.decision(steps, step=index + 1, opened=(index,), closed=(index + 1,))
    steps.insert(index + 1, added)
    return turn.decision(steps, step=index)


def _comment(turn: _Turn) -> Decision:
    state, actor = turn.state, turn.action.actor
    turn.require_reason()
    involved = actor == state.requester or any(actor in s.assignees or actor in s.deciders for s in state.steps)
    if not involved:
        raise DecisionError("not_assigned", "only the requester and the approvers may comment")
    index = state.open_step
    if index is not None:
        turn.require_allowed(state.steps[index], "comment")
    return turn.decision(list(state.steps), step=index)


_VERBS: dict[str, Callable[[_Turn], Decision]] = {
    "approve": _approve, "reject": _reject, "send_back": _send_back, "withdraw": _withdraw,
    "resubmit": _resubmit, "transfer": _transfer, "add_approver": _add_approver, "comment": _comment,
}
