"""Shared by the tests of the shipped organisation profiles: a profile loaded as `duly check` loads it
(its policies and its own organisation.yaml), and forms routed through the pure core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policies.calendar import WorkCalendar
from policies.chain import PlannedStep, StepRoute, plan_route, route_request
from policies.forms import validate_form
from policies.loader import ORGANISATION_FILE, load_policies
from policies.models import ApprovalPolicy, CalendarPolicy
from policies.org import Organisation
from store.organisation import read_organisation_file

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"


class Profile:
    """One folder of policies/library: its policies by id and its sample organisation."""

    def __init__(self, name: str) -> None:
        self.folder = LIBRARY / name
        seed = read_organisation_file(self.folder / ORGANISATION_FILE)
        self.org = Organisation.of(seed.organisation, seed.departments, seed.people)
        self.policies = {item.id: item.policy for item in load_policies([self.folder])}

    def approval(self, policy_id: str) -> ApprovalPolicy:
        policy = self.policies[policy_id]
        assert isinstance(policy, ApprovalPolicy)
        return policy

    def calendar(self, policy_id: str) -> CalendarPolicy:
        policy = self.policies[policy_id]
        assert isinstance(policy, CalendarPolicy)
        return policy

    def form(self, policy_id: str, **raw: Any) -> dict[str, Any]:
        """The form as a request would carry it (validated and normalised; FormError if it is refused)."""
        return validate_form(self.approval(policy_id), raw, self.org)

    def route(self, policy_id: str, requester: str, **raw: Any) -> list[StepRoute]:
        return route_request(self.approval(policy_id), self.form(policy_id, **raw), requester, self.org)

    def plan(self, policy_id: str, requester: str, **raw: Any) -> list[PlannedStep]:
        return plan_route(self.approval(policy_id), self.form(policy_id, **raw), requester, self.org)

    def asked(self, policy_id: str, requester: str, **raw: Any) -> list[tuple[str, tuple[str, ...]]]:
        """(step id, who is asked) for each step the request takes, in order."""
        return [(step.step_id, step.assignees) for step in self.plan(policy_id, requester, **raw)]


@pytest.fixture(scope="module")
def profile(request: pytest.FixtureRequest) -> Profile:
    """The profile named by the test module's PROFILE."""
    return Profile(request.module.PROFILE)


@pytest.fixture(scope="session")
def work_calendar() -> WorkCalendar:
    """China's working-day calendar as shipped (2025 and 2026 official; later years provisional)."""
    return WorkCalendar.default()
