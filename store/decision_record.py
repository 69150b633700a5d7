"""What a core Decision is recorded as: the place a person decided in, the decision row's target, and the
audit event's action and data (the timeline, store/timeline.py, words these)."""

from __future__ import annotations

from policies.chain import Decision
from store.tables import StepRow


def decided_place(decision: Decision) -> str | None:
    """The assignee place the actor decided in (their own, or a delegator's)."""
    if decision.on_behalf_of is not None:
        return decision.on_behalf_of
    if decision.verb == "approve" and decision.step is not None:
        mine = [a.place for a in decision.after.steps[decision.step].approvals if a.actor == decision.actor]
        before = {a.place for a in decision.before.steps[decision.step].approvals}
        return next((p for p in mine if p not in before), decision.actor)
    return None


def decision_target(decision: Decision) -> str | None:
    if decision.verb == "add_approver" and decision.step is not None:
        return ",".join(added_people(decision))[:200] or None
    return decision.target


def added_people(decision: Decision) -> list[str]:
    before = {p for s in decision.before.steps for p in s.assignees}
    return [p for s in decision.after.steps for p in s.assignees if p not in before]


def audit_action(decision: Decision) -> str:
    return "request.resubmitted" if decision.verb == "resubmit" else f"step.{decision.verb}"


def audit_data(decision: Decision, acted: StepRow | None, place: str | None,
                data: dict[str, object] | None) -> dict[str, object]:
    found: dict[str, object] = {"step": acted.step_key if acted else None, "step_id": acted.id if acted else None,
                                "reason": decision.reason, "result": decision.step_state}
    if place is not None and place != decision.actor:
        found["on_behalf_of"] = place
    if decision.verb in ("send_back", "transfer"):
        found["target"] = decision.target
    if decision.verb == "transfer":
        found["to"] = [decision.target]
    if decision.verb == "add_approver":
        found["to"] = added_people(decision)
        added = [s.key for s in decision.after.steps if s.key not in {b.key for b in decision.before.steps}]
        found["position"] = "parallel" if not added else added[0].rsplit("+", 1)[-1].split("-")[0]
        found["added_step"] = added[0] if added else None
    if decision.verb == "resubmit":
        found["step"] = decision.after.steps[decision.opened[0]].key if decision.opened else None
    return {**found, **(data or {})}
