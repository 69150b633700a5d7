"""Semantic checks of loaded policies (what a schema cannot see), each a Problem at its place.

Rules (each has a test in tests/policies/test_lint.py):
- a step whose condition is false for every form it could get is unreachable (error);
- a form for which no step applies leaves a request with nobody to decide it (error);
- with an organisation: a step whose approvers resolve to nobody, whoever files, can never be decided
  (error); a quorum larger than the step's candidates can never be met (error);
- an escalation rung that resolves to nobody is silent (error); one that reaches the requester,
  for some requester, escalates a request to its own author (warning, with an example);
- a reminder as long as the SLA or longer fires before the step opens (error);
- a calendar owner department that does not exist, or an owner role nobody in it holds (error);
  an escalation rung of an obligation that resolves to nobody (error).
Conditions are decided by evaluating them on sample forms: every literal of the condition, one fen
either side of it, the bounds of the field, and every choice, so `amount <= 50000` and
`amount > 50000` together cover every amount.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from policies.conditions import ConditionError
from policies.errors import Problem
from policies.loader import LoadedPolicy
from policies.models import ApprovalPolicy, CalendarPolicy, FormField
from policies.org import Organisation
from policies.routing import Context, resolve_people

MAX_SAMPLES = 5000
MAX_REQUESTERS = 300
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def lint(loaded: LoadedPolicy, org: Organisation | None = None) -> list[Problem]:
    policy = loaded.policy
    if isinstance(policy, ApprovalPolicy):
        problems = list(_reachability(loaded, policy))
        if org is not None:
            problems += list(_approvers(loaded, policy, org))
        problems += list(_reminders(loaded, policy))
        return problems
    if isinstance(policy, CalendarPolicy) and org is not None:
        return list(_calendar_owners(loaded, policy, org))
    return []


def _problem(loaded: LoadedPolicy, path: tuple[Any, ...], message: str, hint: str | None = None,
             severity: str = "error") -> Problem:
    line, col = loaded.where(*path)
    return Problem(loaded.source, line, col, message, hint, severity)  # type: ignore[arg-type]


# --- conditions -------------------------------------------------------------------------------------------

def sample_forms(policy: ApprovalPolicy) -> list[dict[str, Any]]:
    """Forms that together take every branch of every condition of the policy."""
    fields = sorted({name for step in policy.steps if step.when is not None for name in step.when.fields})
    texts = " ".join(step.when.text for step in policy.steps if step.when is not None)
    options = [_values(policy.form[name], texts) for name in fields]
    forms = []
    for combo in itertools.islice(itertools.product(*options), MAX_SAMPLES):
        forms.append(dict(zip(fields, combo, strict=True)))
    return forms or [{}]


def _values(spec: FormField, texts: str) -> list[Any]:
    if spec.type in ("money", "number"):
        points = {Decimal(n) for n in _NUMBER.findall(texts)} | {Decimal(0)}
        for bound in (spec.min, spec.max):
            if bound is not None:
                points.add(Decimal(bound))
        step = Decimal("0.01")
        values = {p + d for p in points for d in (-step, Decimal(0), step)}
        values = {v for v in values if (spec.min is None or v >= spec.min) and (spec.max is None or v <= spec.max)}
        return sorted(values) + ([None] if not spec.required else [])
    if spec.type == "choice":
        return [*(spec.choices or ()), *([None] if not spec.required else [])]
    quoted = [a or b for a, b in _QUOTED.findall(texts)]
    return [*quoted, "", None]


def _holds(step: Any, form: dict[str, Any]) -> bool | None:
    try:
        return step.when is None or step.when.holds(form)
    except ConditionError:
        return None  # undecidable for this sample (e.g. an empty optional field compared with a number)


def _reachability(loaded: LoadedPolicy, policy: ApprovalPolicy) -> Iterator[Problem]:
    forms = sample_forms(policy)
    applies = {step.id: [_holds(step, form) for form in forms] for step in policy.steps}
    for index, step in enumerate(policy.steps):
        if step.when is not None and not any(v is True for v in applies[step.id]):
            yield _problem(loaded, ("steps", index, "when"),
                           f"step {step.id!r} can never apply: {step.when.text!r} is false for every form",
                           "check the comparison and the numbers; a step that never applies should be removed")
    for n, form in enumerate(forms):
        if all(applies[s.id][n] is False for s in policy.steps):
            shown = ", ".join(f"{k} = {v}" for k, v in form.items())
            yield _problem(loaded, ("steps",), f"no step applies when {shown}: such a request has nobody to decide it",
                           "add a step for these values or a `min`/`max` on the field that excludes them")
            break


# --- people -----------------------------------------------------------------------------------------------

def _requesters(org: Organisation) -> list[str]:
    return [p.id for p in org.people.values() if p.active][:MAX_REQUESTERS]


def _approvers(loaded: LoadedPolicy, policy: ApprovalPolicy, org: Organisation) -> Iterator[Problem]:
    requesters = _requesters(org)
    for index, step in enumerate(policy.steps):
        largest, approvers_of = 0, {}
        for requester in requesters:
            found = [c.person_id for c in resolve_people(step.approvers, org, Context(requester=requester))
                     if c.person_id != requester]
            largest = max(largest, len(found))
            approvers_of[requester] = found
        if largest == 0 and _knowable(step.approvers):
            yield _problem(loaded, ("steps", index, "approvers"),
                           f"step {step.id!r}: {step.approvers.describe()} names nobody in the organisation "
                           f"{org.name!r}", "check the role, department code or person id against the organisation")
            continue
        quorum = getattr(step, "quorum", None)
        if quorum and largest and quorum > largest:
            yield _problem(loaded, ("steps", index, "quorum"),
                           f"step {step.id!r}: quorum {quorum} is more than the {largest} people "
                           f"{step.approvers.describe()} names", "lower the quorum or widen the approver rule")
        yield from _ladder(loaded, index, step, org, approvers_of)


def _knowable(rule: Any) -> bool:
    """Whether who a rule names can be known without a filed form or an earlier approver."""
    return rule.key != "field" and not getattr(rule, "form_fields", ()) and not rule.refers_to("approver")


def _ladder(loaded: LoadedPolicy, index: int, step: Any, org: Organisation,
            approvers_of: dict[str, list[str]]) -> Iterator[Problem]:
    """A rung that reaches nobody is an error; a ladder whose every rung reaches only the requester, for
    some requester, is a warning (a later rung that reaches someone else answers the first's gap)."""
    rungs = [(n, getattr(r, "notify", None) or getattr(r, "reassign", None)) for n, r in enumerate(step.escalate)]
    rungs = [(n, rule) for n, rule in rungs if rule is not None]
    escapes: dict[str, bool] = {}  # requester -> some rung reaches someone other than them
    for n, rule in rungs:
        reached_anyone = False
        for requester, approvers in approvers_of.items():
            for approver in approvers:  # a requester nobody can approve for cannot file at all
                context = Context(requester=requester, approver=approver)
                targets = {c.person_id for c in resolve_people(rule, org, context)}
                reached_anyone = reached_anyone or bool(targets)
                escapes[requester] = escapes.get(requester, False) or bool(targets - {requester})
        if not reached_anyone:
            yield _problem(loaded, ("steps", index, "escalate", n),
                           f"step {step.id!r}: escalation to {rule.describe()} reaches nobody",
                           "an escalation nobody receives is silent; name a role or department that exists")
    trapped = [r for r, escaped in escapes.items() if not escaped]
    if rungs and trapped and any(escapes.values()):
        name = org.people[trapped[0]].name
        yield _problem(loaded, ("steps", index, "escalate"),
                       f"step {step.id!r}: every escalation reaches only the requester when {name} ({trapped[0]}) "
                       "files", "add a further rung that reaches someone else, e.g. by role", severity="warning")


def _reminders(loaded: LoadedPolicy, policy: ApprovalPolicy) -> Iterator[Problem]:
    for index, step in enumerate(policy.steps):
        for r_index, before in enumerate(getattr(step, "remind", ())):
            comparable = (before.unit, before.counting) == (step.sla.unit, step.sla.counting)
            if comparable and before.amount >= step.sla.amount:
                yield _problem(loaded, ("steps", index, "remind", r_index),
                               f"step {step.id!r}: a reminder {before.text!r} before a {step.sla.text!r} SLA "
                               "would fire before the step opens", "remind for less than the SLA")


def _calendar_owners(loaded: LoadedPolicy, policy: CalendarPolicy, org: Organisation) -> Iterator[Problem]:
    for index, spec in enumerate(policy.obligations):
        rules = policy.rules_for(spec)
        owner_path = ("obligations", index, "owner") if getattr(spec, "owner", None) else ("defaults", "owner")
        for code in rules.owner.codes:
            department = org.departments.get(code)
            if department is None:
                yield _problem(loaded, owner_path, f"obligation {spec.id!r}: no department {code!r} in the "
                               f"organisation {org.name!r}", f"departments: {', '.join(sorted(org.departments))}")
                continue
            role = rules.owner.role
            if role and not any(p.department == code and role in p.roles and p.active for p in org.people.values()):
                yield _problem(loaded, owner_path, f"obligation {spec.id!r}: nobody in {department.name} ({code}) "
                               f"has role {role!r}, so no one is reminded", "give someone the role, or drop `role`")
            for r_index, rung in enumerate(rules.escalate):
                rule = getattr(rung, "notify", None)
                if rule is not None and not resolve_people(rule, org, Context(owner_department=code)):
                    path = ("defaults", "escalate", r_index)
                    yield _problem(loaded, path, f"obligation {spec.id!r} of {code}: escalation to "
                                   f"{rule.describe()} reaches nobody", "check the organisation's leaders in charge")


def lint_all(loaded: Iterable[LoadedPolicy], org_for: Any) -> list[Problem]:
    """Lint every policy with the organisation `org_for(policy)` returns (None: no people checks)."""
    problems: list[Problem] = []
    for item in loaded:
        problems += lint(item, org_for(item))
    return problems
