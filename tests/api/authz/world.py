"""The world the authorisation matrix runs in: the app served by uvicorn on loopback (once per module, not
per test), the five personas with their HTTP clients, and the objects the matrix's calls point at.

Personas (config/demo-organisation.yaml):
- anonymous: no credentials;
- requester: huang.lei (信息科 staff), who filed the world's pending request;
- approver: liu.yang, head of 综合管理部 — an it-hardware-purchase of at most 50000 goes to him;
- other_department: lin.fang (医务部 doctor), no role over 信息科 or over any request;
- admin: the administrator (role `admin`; note: also in 信息科, the requester's department).

A row that needs an object the world does not have yet adds it in `open_world` (an attribute here, created
through the API where one exists) or builds it per call (see `World.file_request`).
"""

from __future__ import annotations

import itertools
import shutil
import smtplib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pendulum
from fastapi import FastAPI
from sqlalchemy import select, update

from config import clock
from config.settings import Settings
from notifications.catcher import MailCatcher, free_port, list_caught
from policies.due import next_period, period_containing
from store.obligations import materialise_policy
from store.runtime import Runtime
from store.tables import ObligationRow
from tests.serving import serve_app

PASSWORD = "duly-demo"
PERSONAS: dict[str, str | None] = {
    "anonymous": None,
    "requester": "huang.lei",
    "approver": "liu.yang",
    "other_department": "lin.fang",
    "admin": "admin",
}
REQUESTER_DEPARTMENT = "it"
PURCHASE = "it-hardware-purchase"  # at most 50000: one step, the head of 综合管理部 (liu.yang)


@dataclass
class World:
    url: str
    app: FastAPI
    maildir: Path
    request_id: int = 0
    """A pending request filed by the requester; its open step is assigned to the approver."""
    step_id: int = 0
    obligation_id: int = 0
    """An open obligation owned by the requester's department (信息科)."""
    foreign_obligation_id: int = 0
    """An open obligation of 绩效办, a department none of the personas belongs to."""
    mail_key: str = ""
    """A message in the built-in mail catcher addressed to the requester only."""
    spare_obligations: list[int] = field(default_factory=list)
    """Open obligations of the requester's department for calls that change one (`fresh_obligation`)."""
    waived_obligation_id: int = 0
    """An obligation of the requester's department that the administrator waived (免报)."""
    delegation_id: int = 0
    """A delegation in force from the requester to he.jing (no persona receives it)."""
    attachment_id: int = 0
    """A file the requester uploaded and has not attached to anything: theirs alone."""
    submitted_attachment_id: int = 0
    """A file the administrator uploaded and handed in with a report for one of the requester's department's
    obligations: visible to whoever sees that obligation."""
    token_id: int = 0
    """An API token of the requester."""
    purchase_version: int = 0
    """The current version of the it-hardware-purchase policy."""
    _clients: dict[str, httpx.Client] = field(default_factory=dict)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def client(self, persona: str) -> httpx.Client:
        """The persona's HTTP client (HTTP Basic), kept open for the world's life."""
        if persona not in self._clients:
            user = PERSONAS[persona]
            self._clients[persona] = httpx.Client(base_url=self.url, auth=(user, PASSWORD) if user else None,
                                                  timeout=30)
        return self._clients[persona]

    def file_request(self, requester: str = "requester", amount: str = "1200") -> tuple[int, int]:
        """File a fresh IT purchase as `requester` (a persona); returns (request id, open step id).
        The step is the approver's (asserted, so a change of routing cannot quietly void the matrix)."""
        answer = self.client(requester).post("/api/requests", json={
            "policy": PURCHASE, "form": {"items": "无线网卡 2块", "amount": amount}})
        assert answer.status_code == 201, answer.text
        request = answer.json()
        assert [s["assignees"] for s in request["steps"]] == [[PERSONAS["approver"]]], request
        return request["id"], request["steps"][0]["id"]

    def number(self) -> int:
        """A number not handed out before in this world (unique names, codes and dates)."""
        return next(self._numbers)

    def fresh_obligation(self) -> int:
        """An open obligation of the requester's department that no call has used yet."""
        assert self.spare_obligations, "the world ran out of spare obligations: materialise more periods"
        return self.spare_obligations.pop()

    def upload(self, persona: str, name: str = "说明.txt") -> int:
        """Upload a small text file as `persona`; returns the attachment's id."""
        answer = self.client(persona).post("/api/attachments",
                                           files={"file": (name, "矩阵测试附件。".encode(), "text/plain")})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def delegate(self, persona: str, to: str, *, days_from_now: int = 0, days: int = 30) -> int:
        """A delegation from `persona` to the person `to` (an account, not a persona); returns its id."""
        starts = pendulum.instance(clock.now()).add(days=days_from_now)
        answer = self.client(persona).post("/api/delegations", json={
            "to": to, "starts": starts.isoformat(), "ends": starts.add(days=days).isoformat(),
            "reason": "矩阵测试"})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def token(self, persona: str) -> int:
        """A new API token of `persona`; returns its id."""
        answer = self.client(persona).post("/api/tokens", json={"name": f"矩阵测试 {self.number()}"})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def settings_for(database_url: str, workdir: Path, mail: MailCatcher) -> Settings:
    return Settings(data_dir=workdir / "data", database_url=database_url, demo=True,
                    smtp={"mode": "smtp", "host": mail.host, "port": mail.port, "security": "none"},
                    scheduler={"enabled": False}, prefect={"mode": "external"})


def sqlite_copy(template: Path, workdir: Path) -> str:
    path = workdir / "duly.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@asynccontextmanager
async def open_world(database_url: str, workdir: Path) -> AsyncIterator[World]:
    """Prepare the database (demo organisation, shipped policies, obligations), serve the app, create the
    world's objects; close everything afterwards."""
    from duly.bootstrap import prepare

    mail = MailCatcher(workdir / "mail", host="127.0.0.1", port=free_port())
    mail.start()
    try:
        settings = settings_for(database_url, workdir, mail)
        runtime = await prepare(settings, now=clock.now())
        try:
            obligation_id, foreign_obligation_id, spare = await _obligations(runtime, REQUESTER_DEPARTMENT)
        finally:
            await runtime.close()
        with serve_app(settings, mail.maildir) as (url, app):
            world = World(url=url, app=app, maildir=mail.maildir, obligation_id=obligation_id,
                          foreign_obligation_id=foreign_obligation_id, spare_obligations=spare)
            try:
                world.request_id, world.step_id = world.file_request()
                world.mail_key = _mail_to(world, mail, "requester")
                world.delegation_id = world.delegate("requester", "he.jing")
                world.attachment_id = world.upload("requester")
                world.submitted_attachment_id = _handed_in(world)
                world.waived_obligation_id = _waived(world)
                world.token_id = world.token("requester")
                policy = world.client("admin").get(f"/api/policies/{PURCHASE}")
                assert policy.status_code == 200, policy.text
                world.purchase_version = policy.json()["version"]
                yield world
            finally:
                world.close()
    finally:
        mail.stop()


async def _obligations(runtime: Runtime, department: str) -> tuple[int, int, list[int]]:
    """Materialise the municipal reports (owned by 绩效办 in the shipped profile) of the next three months and
    hand all but one to `department`; returns the first (the world's obligation of the requester's department),
    the one left to 绩效办, and the spare ones of `department` for calls that change an obligation."""
    (version_id, loaded), = [c for c in runtime.registry.calendars() if c[1].id == "municipal-monthly-reports"]
    now = clock.now()
    first_period = next_period(period_containing(pendulum.instance(now).in_timezone(runtime.timezone).date(),
                                                 "monthly"))
    periods = [first_period, next_period(first_period), next_period(next_period(first_period))]
    async with runtime.sessions() as session, session.begin():
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, periods=periods, now=now)
        first, second, *spare = (await session.execute(select(ObligationRow.id).order_by(ObligationRow.id))).scalars()
        await session.execute(update(ObligationRow).where(ObligationRow.id != second)
                              .values(owner_department=department))
    return first, second, spare


def _handed_in(world: World) -> int:
    """The administrator uploads a file and hands it in with a report for an obligation of the requester's
    department (administrators may submit any report); returns the file's id."""
    attachment_id = world.upload("admin", "月报.txt")
    answer = world.client("admin").post(f"/api/obligations/{world.fresh_obligation()}/submissions",
                                        json={"attachments": [attachment_id], "note": "矩阵测试"})
    assert answer.status_code == 201, answer.text
    return attachment_id


def _mail_to(world: World, mail: MailCatcher, persona: str) -> str:
    """Send one message to the persona over real SMTP to the catcher; returns its maildir key."""
    address = world.client(persona).get("/api/me").json()["email"]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "duly@hospital.example", address, "矩阵测试"
    message["Message-ID"] = "<authz-matrix@hospital.example>"
    message.set_content("只发给申请人的一封信。")
    with smtplib.SMTP(mail.host, mail.port, timeout=10) as smtp:
        smtp.send_message(message)
    caught = list_caught(mail.maildir, recipient=address)
    assert len(caught) == 1, caught
    return caught[0].id


def _waived(world: World) -> int:
    """The administrator waives (免报) an obligation of the requester's department; returns its id."""
    obligation_id = world.fresh_obligation()
    answer = world.client("admin").post(f"/api/obligations/{obligation_id}/waive", json={"reason": "本月停报"})
    assert answer.status_code == 200, answer.text
    return obligation_id


