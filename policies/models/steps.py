"""A step of an approval chain (`kind: approval`, `steps:`), checked against the whole policy.

Rules checked at load time (each one a precise problem at the offending key):
- step ids are unique; a condition names only fields of the form;
- `mode: quorum` needs `quorum: n`, and `quorum` goes only with `mode: quorum`; a quorum above 1 on a rule
  that names one person (head_of, leader_in_charge_of, superior_of, person, field) can never be met;
- `send_back.to` names `requester`, `previous`, or an EARLIER step; the first step has no `previous`;
- the first step cannot ask `approver` (there is no earlier approver);
- `allow` includes `approve` (a step nobody may approve never ends);
- a `decide` rung is the last rung of the ladder (the step is closed after it).
Whether an organisation has enough people for a quorum is known only at filing (a RouteError then).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from policies.conditions import Condition, compile_condition
from policies.models.common import Duration, LadderRung, PersonRule, StepId, Strict

Mode = Literal["any", "all", "quorum"]
Position = Literal["before", "after", "parallel"]
StepVerb = Literal["approve", "reject", "send_back", "transfer", "add_approver", "delegate", "comment",
                   "bulk_approve"]
ALL_STEP_VERBS: tuple[StepVerb, ...] = ("approve", "reject", "send_back", "transfer", "add_approver", "delegate",
                                        "comment", "bulk_approve")
ALL_POSITIONS: tuple[Position, ...] = ("before", "after", "parallel")


class SendBack(Strict):
    """退回: where a step may return the request, and whether approvals already given stay valid."""

    to: tuple[str, ...] = Field(default=("requester", "previous"), min_length=1)
    keep_approvals: bool = False

    @field_validator("to")
    @classmethod
    def _distinct_targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a send-back target is listed twice")
        return value


DEFAULT_SEND_BACK = SendBack()


class Step(Strict):
    id: StepId
    title: str
    when: Condition | None = None
    approvers: PersonRule
    mode: Mode = "any"
    quorum: int | None = Field(default=None, ge=1, le=100, validate_default=True)
    sla: Duration
    remind: tuple[Duration, ...] = Field(default=(), max_length=10)
    escalate: tuple[LadderRung, ...] = Field(default=(), max_length=10)
    send_back: SendBack = DEFAULT_SEND_BACK
    add_approver: tuple[Position, ...] = ALL_POSITIONS
    allow: tuple[StepVerb, ...] = ALL_STEP_VERBS

    @field_validator("id")
    @classmethod
    def _unique_id(cls, value: str, info: ValidationInfo) -> str:
        ids = (info.context or {}).get("step_ids", [])
        if ids.count(value) > 1:
            raise ValueError(f"step id {value!r} is used twice")
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _compile_when(cls, value: Any, info: ValidationInfo) -> Any:
        """Compiled against the policy's form (passed as validation context), so a condition on an
        unknown field fails at load time, pointing at the condition."""
        if not isinstance(value, str):
            return value
        fields = (info.context or {}).get("form_fields")
        if fields is None:
            raise ValueError("conditions can only be checked as part of a whole policy")
        return compile_condition(value, frozenset(fields))

    @field_validator("approvers")
    @classmethod
    def _approver_needs_an_earlier_step(cls, value: PersonRule, info: ValidationInfo) -> PersonRule:
        if value.refers_to("approver") and _earlier_steps(info) == []:
            raise ValueError("`approver` means the approver of the previous step, and the first step has none")
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum_fits_mode(cls, value: int | None, info: ValidationInfo) -> int | None:
        mode, rule = info.data.get("mode"), info.data.get("approvers")
        if mode == "quorum" and value is None:
            raise ValueError("`mode: quorum` needs `quorum: n` (how many approvals close the step)")
        if mode != "quorum" and value is not None:
            raise ValueError("`quorum: n` goes with `mode: quorum`")
        if value is not None and value > 1 and isinstance(rule, PersonRule) and rule.single_person:
            raise ValueError(f"quorum {value} can never be met: {rule.key} names one person")
        return value

    @field_validator("send_back")
    @classmethod
    def _send_back_goes_to_earlier_steps(cls, value: SendBack, info: ValidationInfo) -> SendBack:
        earlier = _earlier_steps(info)
        if earlier is None:
            return value
        ids = (info.context or {}).get("step_ids", [])
        for target in value.to:
            if target == "requester" or target in earlier:
                continue
            if target == "previous":
                if not earlier:
                    raise ValueError("the first step has no previous step to send back to; use requester")
                continue
            if target == info.data.get("id"):
                raise ValueError(f"send_back to {target!r}: a step cannot send back to itself")
            if target in ids:
                raise ValueError(f"send_back to {target!r}: that is a later step; a step sends back only to the "
                                 f"requester, previous, or an earlier step ({', '.join(earlier) or 'none'})")
            close = difflib.get_close_matches(target, [*earlier, "requester", "previous"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"send_back to {target!r}: no such step{hint} "
                             f"(targets: requester, previous, {', '.join(earlier) or 'no earlier step'})")
        return value

    @field_validator("add_approver")
    @classmethod
    def _positions_once(cls, value: tuple[Position, ...]) -> tuple[Position, ...]:
        if len(set(value)) != len(value):
            raise ValueError("an add_approver position is listed twice")
        return value

    @field_validator("allow")
    @classmethod
    def _approve_is_allowed(cls, value: tuple[StepVerb, ...]) -> tuple[StepVerb, ...]:
        if "approve" not in value:
            raise ValueError("`allow` must include approve: a step nobody may approve never ends")
        if len(set(value)) != len(value):
            raise ValueError("a verb is listed twice in `allow`")
        return value

    @field_validator("escalate")
    @classmethod
    def _decide_is_last(cls, value: tuple[LadderRung, ...]) -> tuple[LadderRung, ...]:
        for n, rung in enumerate(value[:-1], start=1):
            if rung.decide is not None:
                raise ValueError(f"rung {n} decides the step, so the rungs after it would never fire; "
                                 "make the decide rung the last one")
        return value

    @property
    def needed(self) -> int | None:
        """Approvals that close the step: 1 for any, n for quorum, None for all (every assignee)."""
        return 1 if self.mode == "any" else self.quorum if self.mode == "quorum" else None

    def allows(self, verb: StepVerb) -> bool:
        return verb in self.allow


def _earlier_steps(info: ValidationInfo) -> list[str] | None:
    """Ids of the steps before this one (None when validated outside a whole policy)."""
    ids = (info.context or {}).get("step_ids")
    own = info.data.get("id")
    if ids is None or own not in ids:
        return None
    return list(ids[:ids.index(own)])
