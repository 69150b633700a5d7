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

import asyncio
import shutil
import smtplib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

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
            obligation_id, foreign_obligation_id = await _obligations(runtime, REQUESTER_DEPARTMENT)
        finally:
            await runtime.close()
        with _serve(settings, mail.maildir) as (url, app):
            world = World(url=url, app=app, maildir=mail.maildir, obligation_id=obligation_id,
                          foreign_obligation_id=foreign_obligation_id)
            try:
                world.request_id, world.step_id = world.file_request()
                world.mail_key = _mail_to(world, mail, "requester")
                yield world
            finally:
                world.close()
    finally:
        mail.stop()


async def _obligations(runtime: Runtime, department: str) -> tuple[int, int]:
    """Materialise next month's municipal reports (owned by 绩效办 in the shipped profile) and hand the first
    to `department`, so the matrix has an obligation of the requester's department; returns its id and the
    id of one left to 绩效办."""
    (version_id, loaded), = [c for c in runtime.registry.calendars() if c[1].id == "municipal-monthly-reports"]
    now = clock.now()
    period = next_period(period_containing(pendulum.instance(now).in_timezone(runtime.timezone).date(), "monthly"))
    async with runtime.sessions() as session, session.begin():
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, periods=[period], now=now)
        first, second = (await session.execute(select(ObligationRow.id).order_by(ObligationRow.id).limit(2))).scalars()
        await session.execute(update(ObligationRow).where(ObligationRow.id == first)
                              .values(owner_department=department))
    return first, second


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


@contextmanager
def _serve(settings: Settings, maildir: Path) -> Iterator[tuple[str, FastAPI]]:
    """The app on a free loopback port, in its own thread and event loop (as tests/conftest.py's live_server)."""
    from api.app import create_app
    from store.runtime import build_runtime

    port = free_port()
    holder: dict[str, object] = {}

    def serve() -> None:
        import uvicorn

        async def main() -> None:
            rt = await build_runtime(settings)
            app = create_app(rt, scheduler=None, maildir=maildir)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            holder["app"], holder["server"] = app, server
            try:
                await server.serve()
            finally:
                await rt.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not getattr(holder.get("server"), "started", False):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", holder["app"]  # type: ignore[misc]
    finally:
        holder["server"].should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
