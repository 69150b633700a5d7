"""The form of a submission's review request, built from the obligation and the submission.

A calendar obligation with `review: POLICY` has its submissions reviewed under that approval policy; the
review request needs that policy's form filled. Each field is filled from what the submission knows, by the
field's name and type; what cannot be known (an amount, a vendor) comes from the submitter's `review_form`.
Values derived here win over `review_form`, so a submitter cannot misstate which report is reviewed.

| field (type)                                       | value                                              |
|----------------------------------------------------|----------------------------------------------------|
| report, title, subject, name (text)                | the obligation's title, e.g. 对外报送统计报表（月报） |
| period (text)                                      | the period key, e.g. 2026-10                       |
| year (number)                                      | the year the period starts in                      |
| department, owner (department)                     | the owning department's code                       |
| note, remark, comment, summary, description (text) | the submission's note, when it has one             |
| report_kind (choice 初报/修报/补报)                  | 初报 original, 修报 correction, 补报 late           |
| corrects (text)                                    | the corrected submission, as "submission #12"      |
| scope (choice with an 对外… option)                 | that option: an obligation is a report owed to the |
|                                                    | authority that set the calendar (对外上报)          |
| an attachment field                                | the id of the attachment whose kind is the field's |
|                                                    | name, else the first unused one whose file type    |
|                                                    | fits the field's kinds (report-signoff's `file`)    |

The form is then validated by the review policy as any request's form (problems are answered 422 as
`review_form.<field>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policies.models import ApprovalPolicy, FormField
from store.tables import AttachmentRow, ObligationRow, SubmissionRow

TITLE_FIELDS = {"report", "title", "subject", "name"}
NOTE_FIELDS = {"note", "remark", "comment", "summary", "description"}
KIND_WORDS = {"original": "初报", "correction": "修报", "late": "补报"}
_FILE_KINDS = {"application/pdf": "pdf", "image/png": "image", "image/jpeg": "image",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "excel",
               "application/vnd.ms-excel": "excel",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "word",
               "application/msword": "word", "text/csv": "text", "text/plain": "text"}


def file_kind(content_type: str) -> str:
    """The policy language's attachment kind (pdf, image, word, excel, text) of a stored content type."""
    return _FILE_KINDS.get(content_type.split(";")[0].strip(), "other")


def build_review_form(policy: ApprovalPolicy, *, obligation: ObligationRow, submission: SubmissionRow,
                      attachments: Sequence[AttachmentRow], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The review request's form (module docstring): derived values over the submitter's `given` ones."""
    form: dict[str, Any] = dict(given or {})
    unused = list(attachments)
    for name, spec in policy.form.items():
        value = _derived(name, spec, obligation, submission, unused)
        if value is not None:
            form[name] = value
    return form


def _derived(name: str, spec: FormField, obligation: ObligationRow, submission: SubmissionRow,
             unused: list[AttachmentRow]) -> Any:
    if spec.type == "attachment":
        return _attachment_for(name, spec, unused)
    if spec.type == "text":
        if name in TITLE_FIELDS:
            return obligation.title[:spec.max_length]
        if name == "period":
            return obligation.period_key
        if name in NOTE_FIELDS and submission.note:
            return submission.note[:spec.max_length]
        if name == "corrects" and submission.corrects_id is not None:
            return f"submission #{submission.corrects_id}"
        return None
    if spec.type == "choice" and spec.choices:
        if name == "report_kind" and KIND_WORDS[submission.kind] in spec.choices:
            return KIND_WORDS[submission.kind]
        if name == "scope":
            return next((c for c in spec.choices if c.startswith("对外")), None)
        return None
    if spec.type == "number" and name == "year":
        return int(obligation.period_start[:4])
    if spec.type == "department" and name in ("department", "owner"):
        return obligation.owner_department
    return None


def _attachment_for(name: str, spec: FormField, unused: list[AttachmentRow]) -> str | None:
    chosen = next((a for a in unused if a.kind == name), None)
    if chosen is None and not spec.paper:
        chosen = next((a for a in unused if spec.kinds is None or file_kind(a.content_type) in spec.kinds), None)
    if chosen is None:
        return None
    unused.remove(chosen)
    return str(chosen.id)
