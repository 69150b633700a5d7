"""Policy versions: the current version of each policy, and any older version a request still runs on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.loader import LoadedPolicy, load_policy_text
from policies.models import ApprovalPolicy, CalendarPolicy
from store.errors import NotFoundError
from store.tables import PolicyVersionRow

UPLOAD_SOURCE = "upload:"
"""`source` of a version an administrator uploaded: "upload:<policy id>" (a file's version holds its path)."""


def is_uploaded(row: PolicyVersionRow) -> bool:
    return row.source.startswith(UPLOAD_SOURCE)


class PolicyRegistry:
    """In-memory cache of parsed policy versions, keyed by the version row id."""

    def __init__(self) -> None:
        self._by_version: dict[int, LoadedPolicy] = {}
        self._current: dict[str, int] = {}

    def current_ids(self) -> dict[str, int]:
        return dict(self._current)

    def current(self, policy_id: str) -> tuple[int, LoadedPolicy]:
        version_id = self._current.get(policy_id)
        if version_id is None:
            raise NotFoundError(f"no policy {policy_id!r}")
        return version_id, self._by_version[version_id]

    def current_approval(self, policy_id: str) -> tuple[int, ApprovalPolicy]:
        version_id, loaded = self.current(policy_id)
        if not isinstance(loaded.policy, ApprovalPolicy):
            raise NotFoundError(f"{policy_id!r} is not an approval policy")
        return version_id, loaded.policy

    def calendars(self) -> list[tuple[int, LoadedPolicy]]:
        return [(vid, self._by_version[vid]) for vid in self._current.values()
                if isinstance(self._by_version[vid].policy, CalendarPolicy)]

    def approvals(self) -> list[tuple[int, LoadedPolicy]]:
        return [(vid, self._by_version[vid]) for vid in self._current.values()
                if isinstance(self._by_version[vid].policy, ApprovalPolicy)]

    async def version(self, session: AsyncSession, version_id: int) -> LoadedPolicy:
        """The policy a request was filed under (parsed from the stored text if not cached)."""
        if version_id not in self._by_version:
            row = await session.get(PolicyVersionRow, version_id)
            if row is None:
                raise NotFoundError(f"no policy version {version_id}")
            self._by_version[version_id] = load_policy_text(row.text, file=row.source)
        return self._by_version[version_id]

    async def sync(self, session: AsyncSession, loaded: Iterable[LoadedPolicy], *, now: datetime) -> None:
        """Store any new versions and make the given ones current (in the caller's transaction).

        `loaded` is every policy the files hold: a policy id that is not among them was withdrawn, so no
        version of it stays current (requests already filed keep running on theirs). A version uploaded
        by an administrator (POST /api/policies) outlives a restart: it stays current when the files hold
        no newer text of that policy, and a policy that only an upload made is not withdrawn."""
        loaded = list(loaded)
        kept = {item.id for item in loaded}
        current_rows = {row.policy_id: row for row in (await session.execute(
            select(PolicyVersionRow).where(PolicyVersionRow.current))).scalars()}
        uploaded = {pid: row for pid, row in current_rows.items() if is_uploaded(row)}
        await session.execute(update(PolicyVersionRow).where(
            PolicyVersionRow.current, PolicyVersionRow.policy_id.not_in(kept | set(uploaded)))  # type: ignore[arg-type,attr-defined]
            .values(current=False))
        self._current = {policy_id: vid for policy_id, vid in self._current.items()
                         if policy_id in kept or policy_id in uploaded}
        for policy_id, row in uploaded.items():
            if policy_id not in kept:
                self._remember(row)
        for item in loaded:
            row = await _stored(session, item)
            newer_upload = uploaded.get(item.id)
            if row is not None and newer_upload is not None and (newer_upload.id or 0) > (row.id or 0):
                self._remember(newer_upload)  # the files still hold the text the upload replaced
                continue
            row = await _store_current(session, item, row, source=item.source, now=now)
            assert row.id is not None
            self.publish(row.id, item)

    async def store_version(self, session: AsyncSession, item: LoadedPolicy, *, now: datetime,
                            source: str) -> tuple[PolicyVersionRow, bool]:
        """Store `item` as a version of its policy (unless that text is stored already) and mark it the
        current one in the database; returns the row and whether it is new. The cache is not touched:
        call `publish` once the transaction has committed."""
        row = await _stored(session, item)
        return await _store_current(session, item, row, source=source, now=now), row is None

    def publish(self, version_id: int, item: LoadedPolicy) -> None:
        """Make a stored version current in this process (new requests are filed under it)."""
        self._by_version[version_id] = item
        self._current[item.id] = version_id

    def _remember(self, row: PolicyVersionRow) -> None:
        assert row.id is not None
        self._by_version.setdefault(row.id, load_policy_text(row.text, file=row.source))
        self._current[row.policy_id] = row.id

    async def load_current(self, session: AsyncSession) -> None:
        """Fill the cache with the versions marked current in the database (API replicas, workers)."""
        rows = (await session.execute(select(PolicyVersionRow).where(PolicyVersionRow.current))).scalars()
        current: dict[str, int] = {}
        for row in rows:
            assert row.id is not None
            self._by_version.setdefault(row.id, load_policy_text(row.text, file=row.source))
            current[row.policy_id] = row.id
        self._current = current  # a policy withdrawn since the last call is no longer current here either


async def _stored(session: AsyncSession, item: LoadedPolicy) -> PolicyVersionRow | None:
    return (await session.execute(select(PolicyVersionRow).where(
        PolicyVersionRow.policy_id == item.id,
        PolicyVersionRow.content_hash == item.content_hash))).scalar_one_or_none()


async def _store_current(session: AsyncSession, item: LoadedPolicy, row: PolicyVersionRow | None, *,
                         source: str, now: datetime) -> PolicyVersionRow:
    """`row` (or a new row holding `item`) becomes the one current version of the policy."""
    await session.execute(update(PolicyVersionRow).where(PolicyVersionRow.policy_id == item.id)
                          .values(current=False))
    if row is None:
        row = PolicyVersionRow(policy_id=item.id, kind=item.policy.kind, title=item.policy.title,
                               content_hash=item.content_hash, source=source, text=item.text, loaded_at=now)
        session.add(row)
    row.current = True
    await session.flush()
    return row
