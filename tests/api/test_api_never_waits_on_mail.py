"""The API never waits on a mail server: with the configured relay a tarpit (it accepts the connection and
never says a word), filing and deciding answer at once, and their e-mails wait in the outbox as rows."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from store.tables import OutboxRow


@pytest.fixture
def tarpit() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, tarpit: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, demo=True,
                    smtp={"mode": "smtp", "host": "127.0.0.1", "port": tarpit, "security": "none",
                          "timeout_seconds": 60},
                    scheduler={"enabled": False}, prefect={"mode": "external"})


async def test_filing_and_deciding_answer_at_once_while_the_relay_hangs(live_server, runtime):
    started = time.monotonic()
    with live_server.client("huang.lei") as client:
        filed = client.post("/api/requests", json={"policy": "it-hardware-purchase",
                                                   "form": {"items": "笔记本电脑 10台", "amount": "48000"}})
    assert filed.status_code == 201, filed.text
    request = filed.json()
    with live_server.client("liu.yang") as client:
        decided = client.post(f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision",
                              json={"verb": "approve"})
    assert decided.status_code == 200, decided.text
    assert time.monotonic() - started < 10  # a relay timeout of 60 s would show here

    async with runtime.sessions() as session:
        rows = list((await session.execute(select(OutboxRow.event, OutboxRow.state)
                                           .where(OutboxRow.channel == "email").order_by(OutboxRow.id))).all())
    assert rows == [("step_assigned", "pending"), ("request_filed", "pending"), ("request_decided", "pending")]
