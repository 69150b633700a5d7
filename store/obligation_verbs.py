"""What the statistics office does to an obligation by hand: mark it late, waive it (免报).

Rules:
- mark late: only an `open` obligation; it becomes `late` (and `late` is recorded) at once, and its pending
  mark-late threshold is cancelled (the sweep would only say it again). Already late → 409.
- waive: an `open` or `late` obligation becomes `waived` with the reason (required); its pending thresholds
  (reminders, mark-late, escalations) are cancelled. Submitted, under review or already waived → 409.
Each writes one audit event in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import ConflictError, InvalidInputError
from store.obligation_access import require_rules_on, visible_obligation
from store.tables import ObligationRow, PersonRow, ThresholdRow

STATE_WORDS = {"open": "open", "late": "late", "under_review": "under review", "submitted": "submitted",
               "waived": "waived"}


async def cancel_obligation_thresholds(session: AsyncSession, obligation_id: int, now: datetime, *,
                                       actions: Sequence[str] | None = None) -> int:
    """Cancel the obligation's pending thresholds (only those of `actions`, if given); returns how many."""
    query = update(ThresholdRow).where(
        ThresholdRow.subject_type == "obligation", ThresholdRow.subject_id == obligation_id,  # type: ignore[arg-type]
        ThresholdRow.state == "pending")
    if actions is not None:
        query = query.where(ThresholdRow.action.in_(list(actions)))  # type: ignore[attr-defined]
    result = await session.execute(query.values(state="cancelled", fired_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_late(session: AsyncSession, *, obligation_id: int, person: PersonRow, reason: str | None,
                    now: datetime) -> ObligationRow:
    obligation = await visible_obligation(session, obligation_id, person, lock=True)
    require_rules_on(person, "mark late")
    if obligation.state == "late":
        raise ConflictError(f"obligation {obligation_id} is already marked late")
    if obligation.state != "open":
        raise ConflictError(f"only an open obligation can be marked late; this one is "
                            f"{STATE_WORDS.get(obligation.state, obligation.state)}")
    obligation.state, obligation.late = "late", True
    session.add(obligation)
    await cancel_obligation_thresholds(session, obligation_id, now, actions=("mark_late",))
    await append_audit(session, at=now, actor_id=person.id, action="obligation.marked_late",
                       subject_type="obligation", subject_id=obligation_id,
                       data={"reason": reason, "due_at": obligation.due_at.isoformat()})
    return obligation


async def waive(session: AsyncSession, *, obligation_id: int, person: PersonRow, reason: str,
                now: datetime) -> ObligationRow:
    obligation = await visible_obligation(session, obligation_id, person, lock=True)
    require_rules_on(person, "waive")
    if not reason.strip():
        raise InvalidInputError("a reason is required to waive an obligation", {"reason": "required (免报理由)"})
    if obligation.state not in ("open", "late"):
        raise ConflictError(f"only an open or late obligation can be waived; this one is "
                            f"{STATE_WORDS.get(obligation.state, obligation.state)}")
    before = obligation.state
    obligation.state, obligation.waived_reason = "waived", reason.strip()
    session.add(obligation)
    cancelled = await cancel_obligation_thresholds(session, obligation_id, now)
    await append_audit(session, at=now, actor_id=person.id, action="obligation.waived", subject_type="obligation",
                       subject_id=obligation_id,
                       data={"reason": obligation.waived_reason, "was": before, "thresholds_cancelled": cancelled})
    return obligation
