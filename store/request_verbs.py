"""What people do to a request, applied in the caller's transaction: every verb of the core
(policies/chain_verbs.py) — approve, reject, send back (退回), withdraw (撤回), resubmit, transfer (转交),
add approver (加签), comment — by the person themselves or, for the step verbs, as a delegate.

`act` reads the request as the core sees it, asks the core, and stores the Decision
(store.approvals.apply_decision). The core's refusals become the shell's errors:

    reason_required, bad_target, to_requester      → InvalidInputError (422), the field named in `problems`
    already_decided, not_open                      → ConflictError (409)
    every other reason (own_request, not_assigned…) → ForbiddenError (403); `problems["rule"]` is the code
A step verb names the step it acts on; a step that is no longer open is a 409, like a lost race.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.chain import Action, Decision, DecisionError, Delegation, apply_action
from store.approvals import apply_decision, request_state, visible_request
from store.audit import append_audit
from store.delegations import active_delegations, delegators
from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from store.organisation import load_organisation
from store.runtime import Runtime
from store.tables import CommentRow, RequestRow, StepRow, ThresholdRow

STEP_VERBS = ("approve", "reject", "send_back", "transfer", "add_approver")
REQUEST_VERBS = ("withdraw", "resubmit", "comment")
_FIELD_OF = {"reason_required": "reason", "bad_target": "to", "to_requester": "to"}


async def act(session: AsyncSession, runtime: Runtime, *, request_id: int, actor_id: str, verb: str,
              step_id: int | None = None, reason: str | None = None, to: str | None = None,
              people: Sequence[str] = (), position: str | None = None, on_behalf_of: str | None = None,
              bulk: bool = False, now: datetime) -> RequestRow:
    """Apply one verb by `actor_id` at `now`; the request afterwards. Step verbs need `step_id`. `bulk`: an
    approval from a batch (批量审批), refused on a step whose policy `allow` leaves out bulk_approve."""
    if verb not in STEP_VERBS + REQUEST_VERBS:
        expected = ", ".join(STEP_VERBS + REQUEST_VERBS)
        raise InvalidInputError(f"unknown verb {verb!r}", {"verb": f"expected one of {expected}"})
    request = await visible_request(session, request_id, actor_id, now=now)
    step = await _acted_step(session, request, verb, step_id)
    policy = (await runtime.registry.version(session, request.policy_version_id)).policy
    # Lock order shared with the sweep: a step's thresholds before the step itself, so a decision and a
    # sweep firing that step's escalation wait for each other instead of deadlocking.
    await _lock_open_step_thresholds(session, request, step)
    state, rows = await request_state(session, request, policy)  # type: ignore[arg-type]
    delegations = await active_delegations(session, to_id=actor_id, now=now)
    if verb in ("approve", "reject", "send_back") and on_behalf_of is None and step is not None:
        on_behalf_of = _only_delegator(step, actor_id, delegations, policy.id, now)
    try:
        action = Action(verb=verb, actor=actor_id, step=step.position if step else None,  # type: ignore[arg-type]
                        reason=reason, to=to, people=tuple(people), position=position,  # type: ignore[arg-type]
                        on_behalf_of=on_behalf_of)
    except ValidationError as exc:
        raise InvalidInputError("the action is not valid",
                                {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}) from None
    try:
        decision = apply_action(policy, state, action, org=await load_organisation(session), now=now,  # type: ignore[arg-type]
                                delegations=delegations)
    except DecisionError as exc:
        raise _refusal(exc, verb) from None
    if bulk and step is not None and not policy.step(step.policy_step or step.step_key).allows("bulk_approve"):  # type: ignore[union-attr]
        error = ForbiddenError(f"step {step.title!r} must be approved one by one: its policy's `allow` "
                               "leaves out bulk_approve")
        error.problems = {"rule": "not_allowed"}  # type: ignore[attr-defined]
        raise error
    stored = await apply_decision(session, runtime, request, rows, policy, decision, now=now)  # type: ignore[arg-type]
    if verb == "comment":
        await _store_comment(session, request, decision, stored.id or 0, now=now)
    return request


def _refusal(exc: DecisionError, verb: str) -> Exception:
    if exc.reason in _FIELD_OF:
        field = "people" if verb == "add_approver" and exc.reason != "reason_required" else _FIELD_OF[exc.reason]
        field = "text" if verb == "comment" and exc.reason == "reason_required" else field
        return InvalidInputError(str(exc), {field: str(exc), "rule": exc.reason})
    if exc.reason in ("already_decided", "not_open"):
        return ConflictError(str(exc))
    error = ForbiddenError(str(exc))
    error.problems = {"rule": exc.reason}  # type: ignore[attr-defined]
    return error


async def _acted_step(session: AsyncSession, request: RequestRow, verb: str, step_id: int | None) -> StepRow | None:
    if verb not in STEP_VERBS:
        return None
    if step_id is None:
        raise InvalidInputError(f"{verb} acts on a step: name it", {"step_id": "required for this verb"})
    step = await session.get(StepRow, step_id)
    if step is None or step.request_id != request.id:
        raise NotFoundError(f"request {request.id} has no step {step_id}")
    if step.state != "pending" or request.state != "pending":
        raise ConflictError(f"step {step.title!r} is not open for decisions (it is {step.state})")
    return step


async def _lock_open_step_thresholds(session: AsyncSession, request: RequestRow, step: StepRow | None) -> None:
    if step is None:  # request verbs: the open step's thresholds, if a step is open
        step_id = (await session.execute(select(StepRow.id).where(
            StepRow.request_id == request.id, StepRow.state == "pending"))).scalars().first()  # type: ignore[arg-type]
    else:
        step_id = step.id
    if step_id is not None:
        await session.execute(select(ThresholdRow.id).where(
            ThresholdRow.subject_type == "step", ThresholdRow.subject_id == step_id).with_for_update())


def _only_delegator(step: StepRow, actor_id: str, delegations: Sequence[Delegation], policy: str,
                    now: datetime) -> str | None:
    """The assignee a delegate acts for, when there is exactly one (so the decision row names them)."""
    if actor_id in step.assignees:
        return None
    undecided = [p for p in step.assignees if p not in step.approved_by]
    found = [p for p in undecided if p in delegators(delegations, policy=policy, now=now)]
    return found[0] if len(found) == 1 else None


async def _store_comment(session: AsyncSession, request: RequestRow, decision: Decision, decision_id: int, *,
                         now: datetime) -> None:
    text = (decision.reason or "").strip()
    comment = CommentRow(subject_type="request", subject_id=request.id or 0, author_id=decision.actor, text=text,
                         created_at=now)
    session.add(comment)
    await session.flush()
    step = decision.after.steps[decision.step].key if decision.step is not None else None
    await append_audit(session, at=now, actor_id=decision.actor, action="request.commented", subject_type="request",
                       subject_id=request.id or 0,
                       data={"comment_id": comment.id, "decision_id": decision_id, "text": text, "step": step})
