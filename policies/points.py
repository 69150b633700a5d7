"""Points (积分) for reporting: a department's score for a half-year from its outcomes (seed P12, E-06, E-13).

Scoring rules (each one has a named test in tests/policies/test_points.py):

- A department starts each half-year (H1 = January–June, H2 = July–December) at ``base`` points (P12: 60).
- Each outcome whose due date lies in that half-year adds the points of its result: ``on_time``,
  ``late`` or ``missing`` (P12: +1 for an item reported on time, −1 for a week without one).
- An outcome's flags multiply its points by the policy's ``multipliers`` (E-06: concealment, once
  verified, is punished double → ``multipliers: {concealed: 2}``); several flags multiply together;
  a multiplier of 0 cancels the outcome (e.g. a justified delay).
- A flag the policy does not name is an error, not a silent ×1: a misspelt flag must not halve a penalty.
- Outcomes of other departments and of other half-years are not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.recurrence import Period

__all__ = ["Outcome", "PointsRule", "PointsTally", "half_year_points"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Result = Literal["on_time", "late", "missing"]
Flag = str


class PointsRule(BaseModel):
    """``points:`` of a calendar policy: the half-year base and the points per result."""

    model_config = _FROZEN
    base: int = Field(ge=-100_000, le=100_000)
    on_time: int = Field(default=0, ge=-1000, le=1000)
    late: int = Field(default=0, ge=-1000, le=1000)
    missing: int = Field(default=0, ge=-1000, le=1000)
    multipliers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Annotated[int, Field(ge=0, le=100)]] = (
        Field(default_factory=dict))


class Outcome(BaseModel):
    """How one obligation of one department ended: reported on time, late, or not at all."""

    model_config = _FROZEN
    department: str
    obligation: str
    period: str
    due_on: date
    result: Result
    flags: frozenset[Flag] = frozenset()


class PointsTally(BaseModel):
    """A department's score for one half-year and how it was made up."""

    model_config = _FROZEN
    department: str
    half_year: str
    base: int
    counts: dict[Result, int]
    total: int


def half_year_points(rule: PointsRule, outcomes: Iterable[Outcome], *, department: str, half: Period) -> PointsTally:
    """``department``'s points for the half-year ``half`` (rules in the module docstring)."""
    if half.kind != "half-yearly":
        raise ValueError(f"points are counted per half-year (a period like 2026-H1), got the {half.kind} {half.key}")
    total = rule.base
    counts: Counter[Result] = Counter()
    for outcome in outcomes:
        if outcome.department != department or outcome.due_on not in half:
            continue
        unknown = sorted(outcome.flags - rule.multipliers.keys())
        if unknown:
            known = ", ".join(sorted(rule.multipliers)) or "none"
            raise ValueError(f"{outcome.obligation} {outcome.period}: unknown flag {unknown[0]!r} "
                             f"(multipliers: {known})")
        points = {"on_time": rule.on_time, "late": rule.late, "missing": rule.missing}[outcome.result]
        for flag in outcome.flags:
            points *= rule.multipliers[flag]
        total += points
        counts[outcome.result] += 1
    return PointsTally(department=department, half_year=half.key, base=rule.base,
                       counts={r: counts[r] for r in ("on_time", "late", "missing")}, total=total)
