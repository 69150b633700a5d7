"""Fixtures for the notification tests: a real aiosmtpd server on 127.0.0.1 and message factories."""

from __future__ import annotations

import asyncio
import email.policy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller

from notifications.catcher import free_port
from notifications.email import RenderedMessage, build_email
from tests.notifications.chat_receiver import ReceiverServer, running_server

BEIJING = timezone(timedelta(hours=8))
SENT_AT = datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING)
# A test message carrying this header gets the header's value as the answer to DATA.
REPLY_TO_DATA = "X-Test-Data-Reply"


@dataclass(frozen=True)
class Received:
    peer: tuple[str, int]  # the client's address and port: one value per TCP connection
    rcpt_tos: list[str]
    message: EmailMessage


class RecordingHandler:
    """Accepts mail like a relay, except where the test asks for a refusal.

    RCPT for a local part starting "refuse550" gets 550, "later451" gets 451; a message
    with an X-Test-Data-Reply header gets that answer to DATA; `drop_after=n` closes the
    connection when message n+1 arrives, as a crashing server would; `data_delay` seconds pass between
    storing a message and answering 250, as on a slow relay (a client that gives up meanwhile does not know
    its message was taken).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.drop_after: int | None = None
        self.data_delay: float = 0.0
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        local_part = address.split("@", 1)[0].lower()
        if local_part.startswith("refuse550"):
            return "550 5.1.1 Mailbox unavailable"
        if local_part.startswith("later451"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.original_content)
        assert isinstance(message, EmailMessage)
        with self._lock:
            if self.drop_after is not None and len(self.received) >= self.drop_after:
                server.transport.close()
                return "421 4.3.0 Closing connection"
            if REPLY_TO_DATA in message:
                return str(message[REPLY_TO_DATA])
            self.received.append(Received(tuple(session.peer[:2]), list(envelope.rcpt_tos), message))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 OK"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    # Controller(port=0) does not work in aiosmtpd 1.4.6: pick the port first.
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="test-smtpd")
    controller.start()
    try:
        yield SmtpServer(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


MakeEmail = Callable[..., EmailMessage]


@pytest.fixture
def make_email() -> MakeEmail:
    """Build a real notification message; each call gets a unique Message-ID."""

    def make(
        to_address: str = "approver@example.test",
        *,
        to_name: str = "张三",
        subject: str = "请审批：信息化硬件采购申请 #12（12月1日 17:00 前）",
        text: str = "信息中心 王芳 提交的申请需要您审批。\n",
        html: str = "<p>信息中心 王芳 提交的申请需要您审批。</p>",
        message_id: str | None = None,
        data_reply: str | None = None,
    ) -> EmailMessage:
        message = build_email(
            RenderedMessage(subject=subject, text=text, html=html),
            sender="duly@localhost",
            to_address=to_address,
            to_name=to_name,
            message_id=message_id or f"test-{uuid4().hex}@duly.test",
            date=SENT_AT,
        )
        if data_reply is not None:
            message[REPLY_TO_DATA] = data_reply
        return message

    return make


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[ReceiverServer]:
    """A loopback stand-in for the WeCom, DingTalk and Feishu robot servers (chat_receiver.py), per module;
    each test module takes a fresh receiver from it with its own clock."""
    with running_server() as server:
        yield server
