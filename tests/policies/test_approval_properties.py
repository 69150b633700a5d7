"""Properties of the chain's state machine over any sequence of actions (hypothesis): whatever people try,
refused actions change nothing and accepted ones keep the invariants of DESIGN.md §5."""

from __future__ import annotations

from pathlib import Path

import pendulum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.chain import (
    SYSTEM,
    Action,
    DecisionError,
    Delegation,
    RequestState,
    apply_action,
    plan_route,
    start_request,
)
from policies.forms import validate_form
from policies.loader import load_policy
from policies.models import ApprovalPolicy
from policies.org import Organisation
from store.organisation import read_organisation_file

DATA = Path(__file__).resolve().parent / "data"
SEED = read_organisation_file(DATA / "approval-organisation.yaml")
ORG = Organisation.of(SEED.organisation, SEED.departments, SEED.people)
NOW = pendulum.datetime(2026, 9, 30, 16, tz="Asia/Shanghai")
PEOPLE = sorted(ORG.people)
FORMS = {"committee-review": {"subject": "x", "amount": "200000"},
         "permission-change": {"module": "m", "access": "read", "business": "finance"},
         "fine-waiver": {"issuer": "security", "amount": "200", "reason": "x"}}
REQUESTERS = {"committee-review": "huang.lei", "permission-change": "gao.yan", "fine-waiver": "lin.fang"}
DELEGATIONS = (Delegation.model_validate({"from": "sun.li", "to": "wang.xiuying", "starts": NOW.subtract(days=1),
                                          "ends": NOW.add(days=1)}),
               Delegation.model_validate({"from": "zheng.hao", "to": "huang.lei", "starts": NOW.subtract(days=1),
                                          "ends": NOW.add(days=1)}))


def policy(name: str) -> ApprovalPolicy:
    loaded = load_policy(DATA / "approval-policies" / f"{name}.yaml").policy
    assert isinstance(loaded, ApprovalPolicy)
    return loaded


POLICIES = {name: policy(name) for name in FORMS}

people = st.sampled_from(PEOPLE)
VERBS = ["approve", "approve", "approve", "approve", "reject", "comment", "send_back", "send_back", "withdraw",
         "resubmit", "resubmit", "transfer", "add_approver"]


@st.composite
def action_for(draw: st.DrawFn, state: RequestState, verbs: list[str]) -> Action:
    """An action likely to matter: mostly by someone on the open step (or the requester, or a delegate)."""
    index = state.open_step
    verb = draw(st.sampled_from(verbs))
    likely = [state.requester] if verb in ("withdraw", "resubmit") else \
        [*(state.steps[index].assignees if index is not None else ()), "wang.xiuying"]
    actor = draw(st.one_of(st.sampled_from(likely or PEOPLE), people))
    return Action(verb=verb, actor=actor,  # type: ignore[arg-type]
                  reason=draw(st.sampled_from(["理由", "理由", "理由", None, " "])),
                  to=draw(st.sampled_from(["requester", "previous", "department", "own-department", "issuer-head"])
                          if verb == "send_back" else people),
                  people=tuple(draw(st.lists(people, min_size=1, max_size=2))),
                  position=draw(st.sampled_from(["before", "after", "parallel"])))


def start(name: str) -> tuple[ApprovalPolicy, RequestState]:
    p = POLICIES[name]
    requester = REQUESTERS[name]
    return p, start_request(p, plan_route(p, validate_form(p, FORMS[name], ORG), requester, ORG), requester)


def check_invariants(p: ApprovalPolicy, state: RequestState) -> None:
    pending = [s for s in state.steps if s.state == "pending"]
    assert len(pending) == (1 if state.state == "pending" else 0)
    for step in state.steps:
        assert state.requester not in step.assignees
        assert len(set(step.assignees)) == len(step.assignees)
        assert set(step.approved_by) <= set(step.assignees) | {SYSTEM}
        if step.state == "pending":
            assert len(step.approvals) < step.needed
    if p.distinct_approvers:
        seen: dict[str, int] = {}
        for index, step in enumerate(state.steps):
            for person in step.deciders - {SYSTEM}:
                assert seen.setdefault(person, index) == index, f"{person} decided two steps"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FORMS)), data=st.data())
def test_any_sequence_of_actions_keeps_the_invariants(name: str, data: st.DataObject) -> None:
    """The requester never appears among assignees; at most one step is open; nobody decides two steps; a
    finished request never changes; refused actions are refusals with a known reason, not crashes."""
    p, state = start(name)
    for _ in range(data.draw(st.integers(0, 30))):
        action = data.draw(action_for(state, VERBS))
        try:
            decision = apply_action(p, state, action, org=ORG, now=NOW, delegations=DELEGATIONS)
        except DecisionError:
            continue
        assert state.state in ("pending", "returned") or action.verb == "comment"
        assert decision.after.decisions >= state.decisions
        state = decision.after
        check_invariants(p, state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FORMS)), data=st.data())
def test_without_send_backs_a_step_is_decided_at_most_once(name: str, data: st.DataObject) -> None:
    p, state = start(name)
    decided: dict[str, int] = {}
    verbs = [v for v in VERBS if v not in ("send_back", "resubmit")]
    for _ in range(data.draw(st.integers(0, 30))):
        action = data.draw(action_for(state, verbs))
        try:
            decision = apply_action(p, state, action, org=ORG, now=NOW, delegations=DELEGATIONS)
        except DecisionError:
            continue
        before = {s.key: s.state for s in state.steps}
        for step in decision.after.steps:
            if step.state in ("approved", "rejected") and before.get(step.key) not in ("approved", "rejected"):
                decided[step.key] = decided.get(step.key, 0) + 1
        state = decision.after
    assert all(count == 1 for count in decided.values()), decided
