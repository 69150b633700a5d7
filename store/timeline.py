"""A request's audit events in people's words, in Chinese (zh-CN, the default) or English, with names and
local times: what GET /api/requests/{id}/timeline answers, and what the pages can show.

An action with no sentence of its own is shown by its name rather than left out: the timeline must not
hide anything the trail holds. Times are the institution's wall time (`tz`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.notices import to_local
from store.organisation import people_by_id
from store.tables import AuditEventRow, PersonRow, StepRow

SYSTEM = "system"
_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "system": "系统", "nobody": "（无人）", "sep": "、", "requester": "申请人", "quote": "「{}」",
        "request.filed": "提交申请",
        "attachment.attached": "附上文件（{count} 个）",
        "step.opened": "{step}分配给 {assignees}",
        "due": "，时限 {due}", "provisional": "（暂定）",
        "step.approve": "批准{step}", "waiting": "（会签，等待其他审批人）",
        "behalf": "（代 {who} 审批）",
        "step.reject": "驳回{step}", "reason": "（理由：{reason}）",
        "step.send_back": "将{step}退回至{target}",
        "step.transfer": "将{step}转交给 {to}",
        "step.add_approver": "在{step}{position}：{to}",
        "before": "前加签", "after": "后加签", "parallel": "并行加签",
        "request.resubmitted": "重新提交申请",
        "request.withdrawn": "撤回申请",
        "request.commented": "评论：{text}",
        "request.approved": "审批结束：申请已批准", "request.rejected": "审批结束：申请已驳回",
        "step.reminded": "提醒 {to} 审批{step}",
        "step.escalated": "督办：{step}已超时，通知 {to}", "waiting_on": "（等待 {who} 审批）",
        "step.reassigned": "{step}已超时，改由 {to} 审批",
        "step.escalation_failed": "{step}超时处理未能执行：{message}",
        "automatic": "（超时自动处理）",
    },
    "en": {
        "system": "System", "nobody": "(nobody)", "sep": ", ", "requester": "the requester", "quote": "\"{}\"",
        "request.filed": "filed the request",
        "attachment.attached": "attached {count} file(s)",
        "step.opened": "{step} assigned to {assignees}",
        "due": ", due {due}", "provisional": " (provisional)",
        "step.approve": "approved {step}", "waiting": " (all must approve; waiting for the others)",
        "behalf": " (on behalf of {who})",
        "step.reject": "rejected {step}", "reason": " (reason: {reason})",
        "step.send_back": "sent {step} back to {target}",
        "step.transfer": "transferred {step} to {to}",
        "step.add_approver": "added approvers to {step} ({position}): {to}",
        "before": "before", "after": "after", "parallel": "in parallel",
        "request.resubmitted": "resubmitted the request",
        "request.withdrawn": "withdrew the request",
        "request.commented": "commented: {text}",
        "request.approved": "approval ended: the request is approved",
        "request.rejected": "approval ended: the request is rejected",
        "step.reminded": "reminded {to} to decide {step}",
        "step.escalated": "escalated: {step} is overdue, {to} notified", "waiting_on": " (waiting for {who})",
        "step.reassigned": "{step} was overdue and now goes to {to}",
        "step.escalation_failed": "the timeout rule of {step} could not be applied: {message}",
        "automatic": " (automatic, after the time limit)",
    },
}
_TONES = {"step.approve": "ok", "request.approved": "ok", "step.reject": "bad", "request.rejected": "bad",
          "request.withdrawn": "bad", "step.send_back": "warn", "step.escalated": "warn", "step.reassigned": "warn",
          "step.escalation_failed": "bad"}


@dataclass(frozen=True)
class Entry:
    """One line of a timeline: who did what, in words."""

    seq: int
    at: pendulum.DateTime
    action: str
    actor: str | None
    actor_name: str
    text: str
    tone: str  # ok | bad | warn | ""


def language(requested: str | None, person_lang: str | None) -> str:
    """"en" if asked for (or the person reads English), else "zh"."""
    chosen = requested or person_lang or "zh-CN"
    return "en" if chosen.lower().startswith("en") else "zh"


async def request_timeline(session: AsyncSession, request_id: int, *, tz: str, lang: str) -> list[Entry]:
    events = list((await session.execute(select(AuditEventRow).where(
        AuditEventRow.subject_type == "request", AuditEventRow.subject_id == str(request_id))
        .order_by(AuditEventRow.seq))).scalars())  # type: ignore[arg-type]
    titles = dict((await session.execute(select(StepRow.step_key, StepRow.title).where(
        StepRow.request_id == request_id))).all())  # type: ignore[arg-type]
    people = await people_by_id(session, set(_people_in(events)))
    return [describe(e, people, titles, tz=tz, lang=lang) for e in events]


def describe(event: AuditEventRow, people: dict[str, PersonRow], step_titles: dict[str, str], *, tz: str,
             lang: str) -> Entry:
    words = _WORDS["en" if lang == "en" else "zh"]
    data: dict[str, Any] = event.data or {}

    def name(person_id: str | None) -> str:
        if not person_id or person_id == SYSTEM:
            return words["system"]
        return people[person_id].name if person_id in people else person_id

    def names(ids: Iterable[str] | None) -> str:
        return words["sep"].join(name(i) for i in ids or ()) or words["nobody"]

    def step_name(key: str | None) -> str:
        return words["quote"].format(step_titles.get(key or "", key or ""))

    action = event.action
    fill = {"step": step_name(data.get("step")), "assignees": names(data.get("assignees")),
            "to": names(data.get("to")), "text": data.get("text") or "", "message": data.get("message") or "",
            "count": len(data.get("attachments") or ()),
            "position": words.get(str(data.get("position")), str(data.get("position"))),
            "target": words["requester"] if data.get("target") == "requester" else step_name(data.get("target"))}
    text = words[action].format(**fill) if action in words else action
    if action == "step.opened" and data.get("due_at"):
        text += words["due"].format(due=_wall_time(data["due_at"], tz, lang))
        text += words["provisional"] if data.get("provisional") else ""
    if action == "step.approve" and data.get("result") == "pending":
        text += words["waiting"]
    if data.get("on_behalf_of"):
        text += words["behalf"].format(who=name(data["on_behalf_of"]))
    if action in ("step.reject", "step.send_back", "step.transfer", "step.add_approver", "request.withdrawn") \
            and data.get("reason"):
        text += words["reason"].format(reason=data["reason"])
    if action == "step.escalated" and data.get("waiting_on"):
        text += words["waiting_on"].format(who=names(data["waiting_on"]))
    if data.get("automatic"):
        text += words["automatic"]
    return Entry(seq=event.seq or 0, at=to_local(event.at, tz), action=action, actor=event.actor_id,  # type: ignore[arg-type]
                 actor_name=name(event.actor_id), text=text, tone=_TONES.get(action, ""))


def _people_in(events: Iterable[AuditEventRow]) -> list[str]:
    found: list[str] = []
    for event in events:
        if event.actor_id:
            found.append(event.actor_id)
        data = event.data or {}
        for key in ("assignees", "to", "waiting_on"):
            found.extend(p for p in data.get(key) or () if isinstance(p, str))
        if isinstance(data.get("on_behalf_of"), str):
            found.append(data["on_behalf_of"])
    return found


def _wall_time(value: str, tz: str, lang: str) -> str:
    local = pendulum.instance(datetime.fromisoformat(value)).in_timezone(tz)
    if lang == "en":
        return local.format("D MMM HH:mm", locale="en")
    return f"{local.month}月{local.day}日 {local:%H:%M}"
