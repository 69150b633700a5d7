"""`duly explain`: the route a request would take, step by step, and why.

For each step of an approval policy it prints whether the step applies (the condition and the values it
read), its mode, who would be asked and why (the resolution through the organisation, e.g.
"刘洋 liu.yang — head of 综合管理部 (general)"), who is left out and why, the SLA with reminders and the
escalation ladder, and — with `--at` — a sample deadline as if the step opened at that instant.

Nothing is stored. Required form fields that are not given are reported and treated as empty, so the
route can be explored with just the fields it depends on. The exit code is 1 when the request could not
be filed as given (a form problem or a step nobody may decide), 2 for bad arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum

from policies.calendar import WorkCalendar
from policies.chain import StepRoute, route_request
from policies.durations import add_duration
from policies.errors import PolicyError
from policies.forms import FormError, validate_form
from policies.loader import ORGANISATION_FILE, LoadedPolicy, load_policies, load_policy
from policies.models import ApprovalPolicy, LadderRung
from policies.org import Organisation

MODES = {"any": "any (或签): one approval closes the step", "all": "all (会签): every assignee approves"}


def run_explain(policy_ref: str, form_pairs: Sequence[str], requester: str, *, organisation_file: Path | None,
                policy_paths: Sequence[Path] | None, at: str | None) -> tuple[list[str], int]:
    """The command: read the organisation file, the policies and the holiday calendar (defaults from
    Settings: config/demo-organisation.yaml, the shipped profile, config/holidays); lines and exit code."""
    from config.settings import Settings
    from store.errors import InvalidInputError
    from store.organisation import read_organisation_file

    settings = Settings()
    paths = list(policy_paths or settings.policy_paths)
    try:
        if organisation_file is None:  # the policy's profile's own organisation, else the configured one
            own = _find_policy(policy_ref, paths).profile_dir / ORGANISATION_FILE
            organisation_file = own if own.exists() else settings.organisation_file
        seed = read_organisation_file(organisation_file)
        org = Organisation.of(seed.organisation, seed.departments, seed.people)
        calendar = WorkCalendar.from_directory(settings.holidays_dir)
        result = explain(policy_ref, form_pairs, requester, organisation=org,
                         policy_paths=paths, calendar=calendar, at=at)
    except (ExplainError, InvalidInputError, ValueError) as exc:
        return [f"error: {exc}"], 2
    return result.lines, 0 if result.fileable else 1


class ExplainError(ValueError):
    """Arguments that cannot be explained (no such policy, person, bad --form or --at)."""


@dataclass(frozen=True)
class Explanation:
    lines: list[str]
    fileable: bool


def explain(policy_ref: str, form_pairs: Sequence[str], requester: str, *, organisation: Organisation,
            policy_paths: Sequence[Path], calendar: WorkCalendar, at: str | None = None) -> Explanation:
    """The explanation's lines, and whether the request could be filed as given."""
    loaded = _find_policy(policy_ref, policy_paths)
    policy = loaded.policy
    if not isinstance(policy, ApprovalPolicy):
        raise ExplainError(f"{policy.id} is a {policy.kind} policy; explain shows approval routes")
    if requester not in organisation.people:
        raise ExplainError(f"no person {requester!r} in the organisation {organisation.name}")
    raw = _parse_form(form_pairs)
    filed = _parse_at(at, policy.timezone) if at else None
    department = organisation.department_of(requester)
    lines = [f"{policy.id} — {policy.title} ({loaded.source})",
             f"requester: {_person(organisation, requester)}"
             + (f", {organisation.department_label(department.code)}" if department else "")]
    fileable = True
    values, notes = _form_values(policy, raw, organisation)
    if values is None:
        return Explanation([*lines, *notes], fileable=False)
    lines.append("form: " + ("; ".join(f"{k} = {_show(v)}" for k, v in values.items() if v is not None)
                             or "(empty)"))
    lines.extend(notes)
    fileable = not notes
    if filed:
        lines.append(f"filed at: {filed.format('YYYY-MM-DD HH:mm')} {policy.timezone}")
    lines.append("")
    routes = route_request(policy, values, requester, organisation)
    number = 0
    for route in routes:
        number += 1
        lines.extend(_step_lines(number, route, organisation, calendar, policy.timezone, filed))
        fileable = fileable and route.problem is None
    applying = [r for r in routes if r.applies]
    if not applying:
        fileable = False
        lines.append("no step applies: the request could not be filed")
    lines.append("")
    rules = [f"distinct approvers: {'yes' if policy.distinct_approvers else 'no'}",
             f"withdraw (撤回): {policy.withdraw.replace('_', ' ')}"]
    lines.append("; ".join(rules))
    lines.append("route: " + (" → ".join(r.step.id for r in applying) or "none")
                 + ("" if fileable else "  (cannot be filed as given)"))
    return Explanation(lines, fileable)


def _step_lines(number: int, route: StepRoute, org: Organisation, calendar: WorkCalendar, tz: str,
                filed: pendulum.DateTime | None) -> list[str]:
    step = route.step
    head = f"{number}. {step.id} — {step.title}: "
    condition = ""
    if step.when is not None:
        read = ", ".join(f"{k} = {_show(v)}" for k, v in route.condition_values)
        condition = f"`{step.when.text}` is {'true' if route.applies else 'false'} ({read})"
    if not route.applies:
        return [head + (f"cannot be decided: {route.problem}" if route.problem else f"skipped — {condition}")]
    lines = [head + ("applies — " + condition if condition else "applies (no condition)")]
    mode = MODES.get(step.mode) or (f"quorum: {step.quorum} approvals of the {len(route.candidates)} "
                                    "assignees close the step")
    lines.append(f"   mode: {mode}")
    for candidate in route.candidates:
        lines.append(f"   asks: {_person(org, candidate.person_id)} — {candidate.why}")
    for left_out in route.excluded:
        lines.append(f"   not asked: {_person(org, left_out.person_id)} — {left_out.why}")
    if route.problem:
        lines.append(f"   ✗ {route.problem}")
    sla = f"   SLA: {step.sla.text}"
    if filed is not None:
        due = add_duration(filed, step.sla, calendar, tz=tz)
        sla += (f" → due {due.at.in_timezone(tz).format('YYYY-MM-DD HH:mm')} if the step opens at "
                f"{filed.format('YYYY-MM-DD HH:mm')}" + (" (provisional: holidays not yet published)"
                                                         if due.provisional else ""))
    lines.append(sla)
    if step.remind:
        lines.append("   reminders: " + ", ".join(d.text for d in step.remind) + " before the SLA deadline")
    for n, rung in enumerate(step.escalate, start=1):
        lines.append(f"   escalation {n}: {_rung(rung)}")
    return lines


def _rung(rung: LadderRung) -> str:
    when = "at the SLA deadline" if rung.after is None else f"{rung.after.text} after the SLA deadline"
    if rung.decide is not None:
        what = f"the system decides: {rung.decide}" + (f" ({rung.reason})" if rung.reason else "")
    else:
        assert rung.rule is not None
        what = f"{rung.action} {rung.rule.describe()}"
    return f"{when}, {what}"


def _find_policy(ref: str, paths: Sequence[Path]) -> LoadedPolicy:
    try:
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise ExplainError(f"{ref}: no such policy file")
            return load_policy(path)
        for loaded in load_policies(paths, unique_ids="all"):
            if loaded.id == ref:
                return loaded
    except PolicyError as exc:
        raise ExplainError(f"the policies do not load:\n{exc}") from None
    raise ExplainError(f"no policy {ref!r} in {', '.join(str(p) for p in paths)}")


def _parse_form(pairs: Sequence[str]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ExplainError(f"--form takes field=value, got {pair!r}")
        raw[key.strip()] = value
    return raw


def _parse_at(text: str, tz: str) -> pendulum.DateTime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ExplainError(f"--at takes a date and time like 2026-09-30T16:00, got {text!r}") from None
    if moment.tzinfo is None:
        return pendulum.instance(moment, tz=tz)
    return pendulum.instance(moment).in_timezone(tz)


def _form_values(policy: ApprovalPolicy, raw: dict[str, str],
                 org: Organisation) -> tuple[dict[str, Any] | None, list[str]]:
    """Validated values (missing required fields treated as empty, with a note), or None and the problems."""
    relaxed = policy.model_copy(update={"form": {k: f.model_copy(update={"required": False})
                                                 for k, f in policy.form.items()}})
    try:
        values = validate_form(relaxed, raw, org)
    except FormError as exc:
        return None, ["the form has problems:", *(f"   {k}: {v}" for k, v in exc.problems.items())]
    missing = [k for k, f in policy.form.items() if f.required and values.get(k) is None]
    notes = [f"note: required field(s) not given: {', '.join(missing)} (the request could not be filed "
             "without them; the route below treats them as empty)"] if missing else []
    return values, notes


def _person(org: Organisation, person_id: str) -> str:
    person = org.people.get(person_id)
    if person is None:
        return person_id
    return f"{person.name} {person.id}" + ("" if person.active else " (inactive)")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('name')} ({value.get('kind')})"
    return str(value)

