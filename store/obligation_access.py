"""Who may see a reporting obligation, and who may act on it.

- See: department staff see their department's obligations, a department's head and its leader in charge
  see the department's (a head need not be a member: a committee chaired by the director); the statistics
  office (statistician), 绩效办 (performance), the hospital's leaders and administrators see all. Anything
  else answers 404.
- Submit a report: people of the owning department, its head, statisticians, administrators.
- Mark late, waive: statisticians, 绩效办 (performance), administrators.
Someone who sees an obligation but may not do a thing gets 403 naming who may.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select, true
from sqlmodel.ext.asyncio.session import AsyncSession

from store.errors import ForbiddenError, NotFoundError
from store.tables import DepartmentRow, ObligationRow, PersonRow, ThresholdRow

SEES_ALL = frozenset({"admin", "statistician", "performance", "president", "vice_president"})
SUBMITS_FOR_ANY = frozenset({"admin", "statistician"})
RULES_ON = frozenset({"admin", "statistician", "performance"})
RULES_ON_TEXT = "the statistics office (statistician), 绩效办 (performance) or an administrator (admin)"


def visible_obligations(person: PersonRow) -> ColumnElement[bool]:
    """The obligations `person` may see, as a WHERE clause (module docstring)."""
    if SEES_ALL & set(person.roles):
        return true()
    overseen = select(DepartmentRow.code).where(or_(DepartmentRow.head_id == person.id,
                                                    DepartmentRow.leader_in_charge_id == person.id))
    return or_(ObligationRow.owner_department == person.department_code,  # type: ignore[return-value]
               ObligationRow.owner_department.in_(overseen))  # type: ignore[attr-defined]


async def sees(session: AsyncSession, person: PersonRow, obligation: ObligationRow) -> bool:
    if SEES_ALL & set(person.roles) or obligation.owner_department == person.department_code:
        return True
    department = await session.get(DepartmentRow, obligation.owner_department)
    return department is not None and person.id in (department.head_id, department.leader_in_charge_id)


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
    if obligation is None or not await sees(session, person, obligation):
        raise NotFoundError(f"no obligation {obligation_id}")
    return obligation


async def require_may_submit(session: AsyncSession, person: PersonRow, obligation: ObligationRow) -> None:
    if person.department_code == obligation.owner_department or SUBMITS_FOR_ANY & set(person.roles):
        return
    department = await session.get(DepartmentRow, obligation.owner_department)
    if department is None or department.head_id != person.id:
        raise ForbiddenError(f"only people of department {obligation.owner_department!r}, its head, "
                             "statisticians (statistician) or administrators (admin) may submit this report")


def require_rules_on(person: PersonRow, verb: str) -> None:
    if not RULES_ON & set(person.roles):
        raise ForbiddenError(f"only {RULES_ON_TEXT} may {verb} an obligation")
