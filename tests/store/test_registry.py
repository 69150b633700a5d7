"""Policy versions: what the files hold is what is current; a policy taken out of the files is withdrawn."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select

from policies.loader import load_policies
from store.errors import NotFoundError
from store.registry import PolicyRegistry
from store.tables import PolicyVersionRow

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library" / "hospital"
NOW = pendulum.datetime(2026, 11, 2, 10, tz="Asia/Shanghai")


async def _current_in_database(runtime) -> list[str]:
    async with runtime.sessions() as session:
        return sorted((await session.execute(select(PolicyVersionRow.policy_id)
                                             .where(PolicyVersionRow.current))).scalars())


async def _sync(runtime, policy_ids: set[str]) -> None:
    loaded = [p for p in load_policies([LIBRARY]) if p.id in policy_ids]
    async with runtime.sessions() as session, session.begin():
        await runtime.registry.sync(session, loaded, now=NOW)


async def test_a_policy_removed_from_the_files_is_no_longer_current(runtime):
    assert await _current_in_database(runtime) == ["it-hardware-purchase", "municipal-monthly-reports"]

    await _sync(runtime, {"municipal-monthly-reports"})

    assert await _current_in_database(runtime) == ["municipal-monthly-reports"]
    assert set(runtime.registry.current_ids()) == {"municipal-monthly-reports"}
    with pytest.raises(NotFoundError):
        runtime.registry.current("it-hardware-purchase")


async def test_another_process_reloading_the_registry_forgets_a_withdrawn_policy(runtime):
    replica = PolicyRegistry()
    async with runtime.sessions() as session:
        await replica.load_current(session)
    assert set(replica.current_ids()) == {"it-hardware-purchase", "municipal-monthly-reports"}

    await _sync(runtime, {"municipal-monthly-reports"})
    async with runtime.sessions() as session:
        await replica.load_current(session)

    assert set(replica.current_ids()) == {"municipal-monthly-reports"}


async def test_a_withdrawn_policy_put_back_unchanged_is_current_again_with_its_old_version(runtime):
    version_id, _ = runtime.registry.current("it-hardware-purchase")
    await _sync(runtime, {"municipal-monthly-reports"})

    await _sync(runtime, {"it-hardware-purchase", "municipal-monthly-reports"})

    assert runtime.registry.current("it-hardware-purchase")[0] == version_id
    assert await _current_in_database(runtime) == ["it-hardware-purchase", "municipal-monthly-reports"]


async def _upload(runtime, text: str) -> int:
    from policies.loader import load_policy_text
    from store.registry import UPLOAD_SOURCE

    item = load_policy_text(text, file="<upload>")
    async with runtime.sessions() as session, session.begin():
        row, _ = await runtime.registry.store_version(session, item, now=NOW, source=UPLOAD_SOURCE + item.id)
    assert row.id is not None
    runtime.registry.publish(row.id, item)
    return row.id


PURCHASE = (LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8")
BOTH = {"it-hardware-purchase", "municipal-monthly-reports"}


async def test_an_uploaded_version_stays_current_when_the_files_still_hold_the_text_it_replaced(runtime):
    uploaded = await _upload(runtime, PURCHASE.replace("50000", "40000"))

    await _sync(runtime, BOTH)  # a restart of `duly run` syncs the files again

    assert runtime.registry.current("it-hardware-purchase")[0] == uploaded
    replica = PolicyRegistry()
    async with runtime.sessions() as session:
        await replica.load_current(session)
    assert replica.current("it-hardware-purchase")[0] == uploaded


async def test_an_edited_file_wins_over_an_earlier_upload(runtime, tmp_path):
    uploaded = await _upload(runtime, PURCHASE.replace("50000", "40000"))
    edited = tmp_path / "it-hardware-purchase.yaml"
    edited.write_text(PURCHASE.replace("50000", "30000"), encoding="utf-8")
    async with runtime.sessions() as session, session.begin():
        await runtime.registry.sync(session, load_policies([edited, LIBRARY / "municipal-monthly-reports.yaml"]),
                                    now=NOW)

    version_id, loaded = runtime.registry.current("it-hardware-purchase")
    assert version_id > uploaded
    assert "amount <= 30000" in loaded.text


async def test_a_policy_only_an_upload_made_is_not_withdrawn_by_a_sync(runtime):
    text = PURCHASE.replace("id: it-hardware-purchase", "id: it-software-purchase")
    uploaded = await _upload(runtime, text)

    await _sync(runtime, BOTH)

    assert runtime.registry.current("it-software-purchase")[0] == uploaded
    assert await _current_in_database(runtime) == ["it-hardware-purchase", "it-software-purchase",
                                                   "municipal-monthly-reports"]
