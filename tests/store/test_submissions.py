"""Submissions in the store with explicit instants: 补报 after the due time, a review returned after it,
a returned correction that leaves the accepted report standing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select

from policies.recurrence import period_containing
from store.approvals import decide
from store.attachments import store_upload
from store.obligations import materialise_policy
from store.submissions import submit_report
from store.tables import ObligationRow, PersonRow, StepRow, SubmissionRow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = [ROOT / "policies" / "library" / "hospital",
           ROOT / "policies" / "library" / "hospital-statistics-office" / "report-signoff.yaml",
           ROOT / "tests" / "fixtures" / "reports" / "finance-reports.yaml"]
SHANGHAI = "Asia/Shanghai"
MADE = pendulum.datetime(2026, 10, 20, 9, tz=SHANGHAI)
BEFORE_DUE = pendulum.datetime(2026, 11, 10, 9, tz=SHANGHAI)  # October's reports are due 2026-11-15 23:59:59
AFTER_DUE = pendulum.datetime(2026, 11, 16, 9, tz=SHANGHAI)
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"policy_paths": PROFILE})


async def october(runtime) -> dict[str, int]:
    version_id, loaded = runtime.registry.current("finance-reports")
    async with runtime.write() as session:
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=MADE,
                                 periods=[period_containing(date(2026, 10, 1), "monthly")])
        return {r.obligation_key: r.id for r in (await session.execute(select(ObligationRow))).scalars()}


async def hand_in(runtime, obligation_id: int, now, *, corrects: int | None = None, files: int = 0) -> SubmissionRow:
    async with runtime.write() as session:
        person = await session.get(PersonRow, "ma.chao")
        uploads = [await store_upload(session, content=PDF, filename="报表.pdf", declared="application/pdf",
                                      kind=None, uploader_id="ma.chao", now=now) for _ in range(files)]
        return await submit_report(session, runtime, obligation_id=obligation_id, person=person,
                                   attachment_ids=[u.id for u in uploads], note=None, corrects=corrects,
                                   review_form=None, now=now)


async def decide_first_open(runtime, request_id: int, actor: str, verb: str, now) -> None:
    async with runtime.write() as session:
        step = (await session.execute(select(StepRow).where(StepRow.request_id == request_id,
                                                            StepRow.state == "pending"))).scalar_one()
        await decide(session, runtime, request_id=request_id, step_id=step.id, actor_id=actor, verb=verb,
                     reason="数据有误" if verb == "reject" else None, now=now)


async def rows(runtime, obligation_id: int) -> tuple[ObligationRow, list[SubmissionRow]]:
    async with runtime.sessions() as session:
        obligation = await session.get(ObligationRow, obligation_id)
        found = list((await session.execute(select(SubmissionRow).where(SubmissionRow.obligation_id == obligation_id)
                                            .order_by(SubmissionRow.id))).scalars())
    assert obligation is not None
    return obligation, found


async def test_submission_after_the_due_instant_is_a_late_report(runtime):
    ids = await october(runtime)
    late = await hand_in(runtime, ids["F-PLAIN"], AFTER_DUE)
    obligation, _ = await rows(runtime, ids["F-PLAIN"])
    assert (late.kind, late.late, late.state) == ("late", True, "accepted")
    assert (obligation.state, obligation.late) == ("submitted", True)
    assert pendulum.instance(obligation.submitted_at) == AFTER_DUE


async def test_review_rejected_after_the_due_instant_leaves_the_obligation_late(runtime):
    ids = await october(runtime)
    submitted = await hand_in(runtime, ids["F-REVIEWED"], BEFORE_DUE, files=1)
    assert (submitted.kind, submitted.state) == ("original", "under_review")
    await decide_first_open(runtime, submitted.review_request_id, "sun.li", "reject", AFTER_DUE)
    obligation, [submission] = await rows(runtime, ids["F-REVIEWED"])
    assert (submission.state, pendulum.instance(submission.reviewed_at)) == ("returned", AFTER_DUE)
    assert (obligation.state, obligation.late) == ("late", True)


async def test_returned_correction_leaves_the_accepted_report_standing(runtime):
    ids = await october(runtime)
    first = await hand_in(runtime, ids["F-REVIEWED"], BEFORE_DUE, files=1)
    for actor in ("sun.li", "zhang.jianguo", "he.jing"):
        await decide_first_open(runtime, first.review_request_id, actor, "approve", BEFORE_DUE.add(hours=1))
    correction = await hand_in(runtime, ids["F-REVIEWED"], AFTER_DUE, corrects=first.id, files=1)
    assert (correction.kind, correction.corrects_id, correction.state) == ("correction", first.id, "under_review")
    await decide_first_open(runtime, correction.review_request_id, "sun.li", "reject", AFTER_DUE.add(hours=1))
    obligation, found = await rows(runtime, ids["F-REVIEWED"])
    assert [(s.kind, s.state) for s in found] == [("original", "accepted"), ("correction", "returned")]
    assert obligation.state == "submitted"
    assert pendulum.instance(obligation.submitted_at) == BEFORE_DUE.add(hours=1)
