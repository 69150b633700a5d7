"""Who may see a reporting obligation, and who may act on it.

- See: department staff see their department's obligations; the statistics office (statistician), 绩效办
  (performance), the hospital's leaders and administrators see all. Anything else answers 404.
- Submit a report: people of the owning department, statisticians, administrators.
- Mark late, waive: statisticians, 绩效办 (performance), administrators.
Someone who sees an obligation but may not do a thing gets 403 naming who may.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, true
from sqlmodel.ext.asyncio.session import AsyncSession

from store.errors import ForbiddenError, NotFoundError
from store.tables import ObligationRow, PersonRow, ThresholdRow

SEES_ALL = frozenset({"admin", "statistician", "performance", "president", "vice_president"})
SUBMITS_FOR_ANY = frozenset({"admin", "statistician"})
RULES_ON = frozenset({"admin", "statistician", "performance"})
RULES_ON_TEXT = "the statistics office (statistician), 绩效办 (performance) or an administrator (admin)"


def visible_obligations(person: PersonRow) -> ColumnElement[bool]:
    """The obligations `person` may see, as a WHERE clause (module docstring)."""
    if SEES_ALL & set(person.roles):
        return true()
    return ObligationRow.owner_department == person.department_code  # type: ignore[return-value]


def sees(person: PersonRow, obligation: ObligationRow) -> bool:
    return bool(SEES_ALL & set(person.roles)) or obligation.owner_department == person.department_code


async def visible_obligation(session: AsyncSession, obligation_id: int, person: PersonRow, *,
                             lock: bool = False) -> ObligationRow:
    """The obligation if `person` may see it, else NotFoundError. With `lock`, its pending thresholds and
    then the row itself are locked (the sweep's order: thresholds before their subject)."""
    if lock:
        await session.execute(select(ThresholdRow.id).where(
            ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == obligation_id,
            ThresholdRow.state == "pending").with_for_update())
    query = select(ObligationRow).where(ObligationRow.id == obligation_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    obligation = (await session.execute(query)).scalar_one_or_none()
    if obligation is None or not sees(person, obligation):
        raise NotFoundError(f"no obligation {obligation_id}")
    return obligation


def require_may_submit(person: PersonRow, obligation: ObligationRow) -> None:
    if person.department_code != obligation.owner_department and not SUBMITS_FOR_ANY & set(person.roles):
        raise ForbiddenError(f"only people of department {obligation.owner_department!r}, statisticians "
                             "(statistician) or administrators (admin) may submit this report")


def require_rules_on(person: PersonRow, verb: str) -> None:
    if not RULES_ON & set(person.roles):
        raise ForbiddenError(f"only {RULES_ON_TEXT} may {verb} an obligation")
