"""`duly impact`: what loading these policy files would change in a running database.

A new version of an approval policy does not move running requests: they finish on the version they
started with. The command lists them, so an administrator knows which requests still follow the old
rules, and counts the open obligations of a changed calendar policy: their dates were computed from the
current version and are not recomputed when the new one is loaded (only obligations materialised later
follow it).

It only reads: a database that is missing or not migrated is refused (DatabaseNotReadyError), never created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.loader import LoadedPolicy
from store.db import create_engine_for, is_sqlite, session_factory
from store.tables import ObligationRow, PolicyVersionRow, RequestRow

TABLES_READ = (PolicyVersionRow.__tablename__, RequestRow.__tablename__, ObligationRow.__tablename__)
UPGRADE_HINT = "run `duly db upgrade` (or `duly run`) first, or name another database with --database URL"


class DatabaseNotReadyError(RuntimeError):
    """The database to compare with is missing, unreachable or not migrated."""


@dataclass
class PolicyImpact:
    policy_id: str
    source: str
    status: str  # new | unchanged | changed
    current_version: int | None = None
    open_requests: list[int] = field(default_factory=list)
    open_obligations: int = 0


async def impact_on_database(url: str, loaded: list[LoadedPolicy]) -> list[PolicyImpact]:
    """`impact_of` against the database at `url`, which must exist and be migrated (nothing is created)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # not echoed: an unparsable URL may still hold a password
        raise DatabaseNotReadyError("the database URL cannot be parsed: use sqlite:///path or "
                                    "postgresql://user@host/db") from None
    if is_sqlite(url):
        path = make_url(url).database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise DatabaseNotReadyError(f"no database at {shown} (missing or not migrated); {UPGRADE_HINT}")
    engine = create_engine_for(url)
    try:
        async with session_factory(engine)() as session:
            connection = await session.connection()
            names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
            if not names.issuperset(TABLES_READ):
                raise DatabaseNotReadyError(f"the database at {shown} is not migrated; {UPGRADE_HINT}")
            return await impact_of(session, loaded)
    except DBAPIError as exc:  # the server is down, the database does not exist, the password is wrong
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise DatabaseNotReadyError(f"cannot read the database at {shown}: {reason}; check the URL and that the "
                                    "server is running (a database that is not migrated needs `duly db upgrade`)"
                                    ) from None
    finally:
        await engine.dispose()


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
        lines.append(f"  {impact.open_obligations} open obligation(s) were computed from the current version")
    return "\n".join(lines)
