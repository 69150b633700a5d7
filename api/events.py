"""Events that open reporting obligations (`trigger:` in calendar policies): a case created, an accident,
a departure confirmed. `GET /api/events` lists the kinds the current policies know; `POST` reports one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.auth import CurrentPerson
from api.idempotency import Write
from api.obligations import item
from api.schemas import Body, Text
from api.schemas_reports import ObligationItem
from config import clock
from store.event_obligations import report_event, triggered_by

router = APIRouter(prefix="/api", tags=["events"])


class EventKind(BaseModel):
    event: str
    policy: str
    obligation: str
    title: str
    due: str = Field(description="the rule counted from the event, e.g. within 5 working days")
    departments: list[str] = Field(description="departments whose obligation it is")


class EventCreate(Body):
    event: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    reference: Annotated[Text, Field(min_length=1, max_length=200,
                                     description="case number or other reference; reporting it again opens nothing")]
    occurred_at: datetime | None = Field(default=None, description="with its zone; default: now")
    department: Annotated[str | None, Field(max_length=64, description="default: the obligation's one owner, "
                                                                       "else your department")] = None
    policy: Annotated[str | None, Field(max_length=100, description="only this policy's obligations")] = None


class EventReported(BaseModel):
    event: str
    reference: str
    department: str
    occurred_at: datetime
    opened: list[ObligationItem] = Field(description="obligations this call opened")
    existing: list[ObligationItem] = Field(description="obligations an earlier report of the same reference opened")


@router.get("/events", response_model=list[EventKind])
async def list_event_kinds(person: CurrentPerson, http: Request) -> list[EventKind]:
    """The kinds of event that open obligations, and what each opens."""
    return [EventKind(event=t.rules.trigger or "", policy=t.policy.id, obligation=t.obligation_id,
                      title=t.policy.obligation(t.obligation_id).title, due=str(t.rules.due),
                      departments=list(t.rules.owner.codes))
            for t in triggered_by(http.app.state.runtime)]


@router.post("/events", response_model=EventReported, status_code=201)
async def report(body: EventCreate, person: CurrentPerson, write: Write, http: Request,
                 response: Response) -> EventReported:
    """Report that something happened: its obligations open, due as the policy counts from the event.
    201 when something opened, 200 when the reference was reported before."""
    runtime = http.app.state.runtime
    now = clock.now()
    async with write() as session:
        report = await report_event(session, runtime, event=body.event, reference=body.reference,
                                    occurred_at=body.occurred_at or now, reporter=person, now=now,
                                    department=body.department, policy_id=body.policy)
        tz = runtime.timezone
        answer = write.respond(EventReported(event=report.event, reference=report.reference,
                                             department=report.department, occurred_at=report.occurred_at,
                                             opened=[item(r, tz) for r in report.opened],
                                             existing=[item(r, tz) for r in report.existing]),
                               status_code=201 if report.opened else 200)
    response.status_code = 201 if report.opened else 200
    return answer
