"""`duly impact`: what loading these policy files would change in a running database.

A new version of an approval policy does not move running requests: they finish on the version they
started with. The command lists them, so an administrator knows which requests still follow the old
rules, and the open obligations of a changed calendar policy, whose dates the next materialisation
recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.loader import LoadedPolicy
from store.tables import ObligationRow, PolicyVersionRow, RequestRow


@dataclass
class PolicyImpact:
    policy_id: str
    source: str
    status: str  # new | unchanged | changed
    current_version: int | None = None
    open_requests: list[int] = field(default_factory=list)
    open_obligations: int = 0


async def impact_of(session: AsyncSession, loaded: list[LoadedPolicy]) -> list[PolicyImpact]:
    impacts = []
    for item in loaded:
        current = (await session.execute(select(PolicyVersionRow).where(
            PolicyVersionRow.policy_id == item.id, PolicyVersionRow.current))).scalar_one_or_none()
        if current is None:
            impacts.append(PolicyImpact(item.id, item.source, "new"))
            continue
        if current.content_hash == item.content_hash:
            impacts.append(PolicyImpact(item.id, item.source, "unchanged", current.id))
            continue
        requests = list((await session.execute(select(RequestRow.id).where(
            RequestRow.policy_id == item.id, RequestRow.state == "pending").order_by(RequestRow.id))).scalars())
        obligations = (await session.execute(select(func.count()).select_from(ObligationRow).where(
            ObligationRow.policy_id == item.id, ObligationRow.state.in_(["open", "late"])))).scalar_one()  # type: ignore[attr-defined]
        impacts.append(PolicyImpact(item.id, item.source, "changed", current.id,
                                    [r for r in requests if r is not None], obligations))
    return impacts


def describe(impact: PolicyImpact) -> str:
    if impact.status == "new":
        return f"new        {impact.policy_id}  ({impact.source})"
    if impact.status == "unchanged":
        return f"unchanged  {impact.policy_id}  (version {impact.current_version})"
    lines = [f"changed    {impact.policy_id}  (replaces version {impact.current_version})"]
    if impact.open_requests:
        shown = ", ".join(f"#{r}" for r in impact.open_requests[:20])
        more = f" and {len(impact.open_requests) - 20} more" if len(impact.open_requests) > 20 else ""
        lines.append(f"  {len(impact.open_requests)} running request(s) stay on the old version: {shown}{more}")
    if impact.open_obligations:
        lines.append(f"  {impact.open_obligations} open obligation(s) will have their dates recomputed")
    return "\n".join(lines)
