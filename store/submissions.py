"""Report submissions: hand in a report for an obligation, review it through its review chain, correct it.

Rules:
- Who: people of the owning department, statisticians, administrators (store.obligation_access).
- What: the listed attachments (uploaded by the submitter, not yet attached) must cover every attachment kind
  the obligation's rules require, else 422 listing the missing kinds with their labels.
- Kind: `original`; `late` (补报) when handed in after the due instant; `correction` (修报) when `corrects`
  names an accepted submission of the same obligation. A correction is a new row pointing at the old one;
  the old one becomes `superseded` when the correction is accepted. Nothing is overwritten.
- Without a review policy the submission is `accepted` at once and the obligation `submitted`
  (submitted_at = now; a correction keeps the first submitted_at). With `review: POLICY`, a review request is
  filed under POLICY (requester: the submitter; form: store.review_form), the submission is `under_review`
  and so is the obligation.
- `review_finished` applies the review's end: approved → accepted and submitted; rejected, sent back or
  withdrawn → the submission is `returned` and the obligation goes back to `open` (`late` when past due, or
  `submitted` again when a correction was returned: the accepted report still stands); the submitter is told.
- An original or late submission needs the obligation `open` or `late`; a correction needs it `submitted`.
- Submitted or waived: the obligation's pending thresholds (reminders, mark-late, escalations) are cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.models import CalendarPolicy, ObligationRules
from store.approvals import file_request
from store.attachments import attach
from store.audit import append_audit
from store.errors import ConflictError, InvalidInputError
from store.notices import obligation_context
from store.obligation_access import require_may_submit, visible_obligation
from store.obligation_verbs import STATE_WORDS, cancel_obligation_thresholds
from store.outbox import queue_message
from store.review_form import build_review_form
from store.runtime import Runtime
from store.tables import DepartmentRow, ObligationRow, PersonRow, RequestRow, SubmissionRow

REVIEW_ENDS = {"approved": "accepted", "rejected": "returned", "returned": "returned", "withdrawn": "returned"}


async def obligation_rules(session: AsyncSession, runtime: Runtime,
                           obligation: ObligationRow) -> tuple[CalendarPolicy, ObligationRules]:
    """The calendar policy (the version the obligation was made under) and the obligation's rules."""
    policy = (await runtime.registry.version(session, obligation.policy_version_id)).policy
    assert isinstance(policy, CalendarPolicy)
    return policy, policy.rules_for(obligation.obligation_key)


async def submit_report(session: AsyncSession, runtime: Runtime, *, obligation_id: int, person: PersonRow,
                        attachment_ids: Sequence[int], note: str | None, corrects: int | None,
                        review_form: Mapping[str, Any] | None, now: datetime) -> SubmissionRow:
    """Hand in a report (module docstring) in the caller's transaction."""
    obligation = await visible_obligation(session, obligation_id, person, lock=True)
    await require_may_submit(session, person, obligation)
    policy, rules = await obligation_rules(session, runtime, obligation)
    corrected = await _corrected(session, obligation, corrects)
    if corrected is None and obligation.state not in ("open", "late"):
        hint = " (to correct it, name the accepted submission in `corrects`: 修报)" \
            if obligation.state == "submitted" else ""
        raise ConflictError(f"obligation {obligation_id} is {STATE_WORDS.get(obligation.state, obligation.state)}; "
                            f"a report can be submitted only while it is open or late{hint}")
    late = now > obligation.due_at
    kind = "correction" if corrected is not None else "late" if late else "original"
    submission = SubmissionRow(obligation_id=obligation_id, kind=kind, corrects_id=corrects, submitted_by=person.id,
                               submitted_at=now, note=note, late=late,
                               state="under_review" if rules.review else "accepted")
    session.add(submission)
    await session.flush()
    attachments = await _attachments(session, rules, submission, attachment_ids, person, now)
    before = obligation.state
    request: RequestRow | None = None
    if late and corrected is None:
        obligation.late = True
    if rules.review:
        request = await _file_review(session, runtime, rules.review, obligation, submission, attachments,
                                     review_form, person, now)
        submission.review_request_id = request.id
        obligation.state = "under_review"
    else:
        await _accept(session, obligation, submission, corrected, now)
    session.add_all([submission, obligation])
    await append_audit(session, at=now, actor_id=person.id, action="submission.submitted",
                       subject_type="obligation", subject_id=obligation_id,
                       data={"submission": submission.id, "kind": kind, "late": late, "corrects": corrects,
                             "attachments": list(attachment_ids), "note": note, "state": submission.state,
                             "review_request": submission.review_request_id, "obligation_was": before,
                             "policy": policy.id})
    if request is not None and request.state in REVIEW_ENDS:  # a chain that ended as it was filed
        await review_finished(session, runtime, request, request.state, now)
    return submission


async def review_finished(session: AsyncSession, runtime: Runtime, request: RequestRow, outcome: str,
                          now: datetime) -> None:
    """The review request `request` ended with `outcome` (approved, rejected, returned, withdrawn): apply it
    to the submission it reviews, if it reviews one (module docstring). Called from store.approvals."""
    submission = (await session.execute(select(SubmissionRow).where(
        SubmissionRow.review_request_id == request.id))).scalar_one_or_none()
    if submission is None or submission.state != "under_review" or outcome not in REVIEW_ENDS:
        return
    obligation = await session.get(ObligationRow, submission.obligation_id)
    assert obligation is not None
    corrected = await session.get(SubmissionRow, submission.corrects_id) if submission.corrects_id else None
    submission.reviewed_at = now
    if outcome == "approved":
        await _accept(session, obligation, submission, corrected, now)
    else:
        submission.state = "returned"
        if corrected is not None and corrected.state == "accepted":
            obligation.state = "submitted"
        else:
            obligation.state = "late" if obligation.late or now > obligation.due_at else "open"
            obligation.late = obligation.state == "late" or obligation.late
    session.add_all([submission, obligation])
    await append_audit(session, at=now, actor_id=None, action=f"submission.{submission.state}",
                       subject_type="obligation", subject_id=obligation.id or 0,
                       data={"submission": submission.id, "review_request": request.id, "outcome": outcome,
                             "obligation_state": obligation.state})
    await _notify_submitter(session, runtime, obligation, submission, outcome, now)


async def list_submissions(session: AsyncSession, obligation_id: int, *, limit: int | None = None,
                           offset: int = 0) -> list[SubmissionRow]:
    """The obligation's submissions, newest first."""
    query = (select(SubmissionRow).where(SubmissionRow.obligation_id == obligation_id)
             .order_by(SubmissionRow.submitted_at.desc(), SubmissionRow.id.desc())  # type: ignore[attr-defined,union-attr]
             .offset(offset))
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())


async def count_submissions(session: AsyncSession, obligation_id: int) -> int:
    return int((await session.execute(select(func.count()).select_from(SubmissionRow).where(
        SubmissionRow.obligation_id == obligation_id))).scalar_one())  # type: ignore[arg-type]


async def _corrected(session: AsyncSession, obligation: ObligationRow, corrects: int | None) -> SubmissionRow | None:
    if corrects is None:
        return None
    old = await session.get(SubmissionRow, corrects)
    if old is None or old.obligation_id != obligation.id:
        raise InvalidInputError(f"obligation {obligation.id} has no submission {corrects}",
                                {"corrects": "name a submission of this obligation"})
    if old.state != "accepted":
        raise ConflictError(f"submission {corrects} is {old.state}; only the accepted submission can be corrected "
                            "(修报)")
    if obligation.state != "submitted":
        raise ConflictError(f"obligation {obligation.id} is {STATE_WORDS.get(obligation.state, obligation.state)}; "
                            "wait for the review in progress to end before correcting")
    return old


async def _attachments(session: AsyncSession, rules: ObligationRules, submission: SubmissionRow,
                       attachment_ids: Sequence[int], person: PersonRow, now: datetime) -> list[Any]:
    rows = await attach(session, attachment_ids=attachment_ids, owner_type="submission",
                        owner_id=submission.id or 0, person_id=person.id, now=now)
    missing = rules.missing_attachments(r.kind for r in rows if r.kind)
    if missing:
        listed = ", ".join(f"{a.kind} ({a.label})" if a.label else a.kind for a in missing)
        raise InvalidInputError(f"required attachments are missing: {listed}",
                                {f"attachments.{a.kind}": f"missing: {a.label or a.kind}" for a in missing})
    return rows


async def _file_review(session: AsyncSession, runtime: Runtime, policy_id: str, obligation: ObligationRow,
                       submission: SubmissionRow, attachments: Sequence[Any], given: Mapping[str, Any] | None,
                       person: PersonRow, now: datetime) -> RequestRow:
    _, review = runtime.registry.current_approval(policy_id)
    form = build_review_form(review, obligation=obligation, submission=submission, attachments=attachments,
                             given=given)
    try:
        return await file_request(session, runtime, policy_id=policy_id, form=form, requester_id=person.id, now=now,
                                  attach_files=False)  # the report's files belong to the submission
    except InvalidInputError as exc:
        problems = {f"review_form.{key}": message for key, message in exc.problems.items()}
        raise InvalidInputError(f"the review request under {policy_id!r} cannot be filed: {exc}", problems) from None


async def _accept(session: AsyncSession, obligation: ObligationRow, submission: SubmissionRow,
                  corrected: SubmissionRow | None, now: datetime) -> None:
    submission.state = "accepted"
    if corrected is not None:
        corrected.state = "superseded"
        session.add(corrected)
    obligation.state = "submitted"
    obligation.submitted_at = obligation.submitted_at or now
    await cancel_obligation_thresholds(session, obligation.id or 0, now)


async def _notify_submitter(session: AsyncSession, runtime: Runtime, obligation: ObligationRow,
                            submission: SubmissionRow, outcome: str, now: datetime) -> None:
    submitter = await session.get(PersonRow, submission.submitted_by)
    department = await session.get(DepartmentRow, obligation.owner_department)
    policy, _ = await obligation_rules(session, runtime, obligation)
    if submitter is None or not submitter.active:
        return
    await queue_message(session, event_key=f"submission:{submission.id}:reviewed", event="submission_reviewed",
                  recipient=submitter, now=now,
                  context={"obligation": obligation_context(obligation, policy.title,
                                                            department.name if department else "", policy.timezone),
                           "submission": {"id": submission.id, "kind": submission.kind, "state": submission.state},
                           "outcome": outcome, "submitter_name": submitter.name,
                           "link": f"{runtime.public_url}/obligations/{obligation.id}"})
