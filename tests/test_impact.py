"""`duly impact`: which running requests and open obligations a policy change would affect."""

from __future__ import annotations

from pathlib import Path

import pendulum

from duly.impact import describe, impact_of
from policies.loader import load_policy
from store.approvals import file_request

LIBRARY = Path(__file__).resolve().parents[1] / "policies" / "library" / "hospital"


async def test_changed_approval_policy_lists_the_requests_that_stay_on_the_old_version(runtime, tmp_path):
    async with runtime.sessions() as session, session.begin():
        request = await file_request(session, runtime, policy_id="it-hardware-purchase",
                                     form={"items": "服务器", "amount": "9000"}, requester_id="huang.lei",
                                     now=pendulum.datetime(2026, 11, 2, 10, tz="Asia/Shanghai"))
    changed = tmp_path / "it-hardware-purchase.yaml"
    changed.write_text((LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8")
                       .replace("amount <= 50000", "amount <= 30000").replace("amount > 50000", "amount > 30000"),
                       encoding="utf-8")
    unchanged = load_policy(LIBRARY / "municipal-monthly-reports.yaml")
    async with runtime.sessions() as session:
        impacts = await impact_of(session, [load_policy(changed), unchanged])
    by_id = {i.policy_id: i for i in impacts}
    assert by_id["it-hardware-purchase"].status == "changed"
    assert by_id["it-hardware-purchase"].open_requests == [request.id]
    assert f"#{request.id}" in describe(by_id["it-hardware-purchase"])
    assert by_id["municipal-monthly-reports"].status == "unchanged"


async def test_a_policy_the_database_has_never_seen_is_new(runtime, tmp_path):
    text = (LIBRARY / "it-hardware-purchase.yaml").read_text(encoding="utf-8").replace(
        "id: it-hardware-purchase", "id: it-hardware-purchase-v2")
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    async with runtime.sessions() as session:
        [impact] = await impact_of(session, [load_policy(path)])
    assert impact.status == "new"
