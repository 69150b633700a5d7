"""Bodies of the statistics office's routes: obligations, submissions, attachments (OpenAPI is built from these).

Request bodies never carry a state, a due date or a submission kind: those follow from the rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import Body, Text


class AttachmentPublic(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    kind: str | None
    uploaded_by: str
    uploaded_at: datetime
    attached_to: str | None = Field(description="submission:12 or request:7; null until attached")


class ObligationItem(BaseModel):
    id: int
    policy: str
    obligation: str
    title: str
    owner_department: str
    period: str
    due_at: datetime
    shift: str
    provisional: bool
    state: str = Field(description="open | late | under_review | submitted | waived")
    late: bool = Field(description="was (or is) past its due time without an accepted submission")
    submitted_at: datetime | None
    waived_reason: str | None
    event_ref: str | None = Field(default=None, description="event-relative obligations: the event's reference")
    event_at: datetime | None = Field(default=None, description="event-relative obligations: when it happened")


class ObligationPage(BaseModel):
    count: int
    items: list[ObligationItem]


class RequiredAttachment(BaseModel):
    kind: str
    label: str


class ObligationRulesPublic(BaseModel):
    due: str = Field(description="the due rule as written, e.g. day 15 of next month")
    at: str = Field(description="time of day of the deadline")
    non_working_day: str
    attachments: list[RequiredAttachment]
    review_policy: str | None
    review_policy_title: str | None
    note: str


class ReviewPublic(BaseModel):
    request_id: int
    state: str
    open_steps: list[str]


class SubmissionPublic(BaseModel):
    id: int
    obligation_id: int
    kind: str = Field(description="original | late (补报) | correction (修报)")
    corrects: int | None
    submitted_by: str
    submitted_at: datetime
    note: str | None
    late: bool
    state: str = Field(description="under_review | accepted | returned | superseded")
    review_request_id: int | None
    reviewed_at: datetime | None
    attachments: list[AttachmentPublic]


class SubmissionList(BaseModel):
    count: int
    items: list[SubmissionPublic]


class ObligationDetail(ObligationItem):
    policy_title: str
    rules: ObligationRulesPublic
    review: ReviewPublic | None = Field(description="the review request of the newest submission, if reviewed")
    submissions: list[SubmissionPublic] = Field(description="newest first")


class SubmissionCreate(Body):
    attachments: list[int] = Field(default_factory=list, max_length=50,
                                   description="ids of files uploaded with POST /api/attachments")
    note: Text | None = Field(default=None, max_length=2000)
    corrects: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                 description="the accepted submission this one corrects (修报)")
    review_form: dict[str, Any] | None = Field(
        default=None, description="values of review-policy form fields that the submission cannot fill itself")


class LateCreate(Body):
    reason: Text | None = Field(default=None, max_length=500)


class WaiveCreate(Body):
    reason: Text = Field(min_length=1, max_length=500, description="免报理由 (required)")
