"""Notification throughput to loopback servers (prints figures; not pass/fail).

Three measurements, each on a freshly seeded database (SQLite, PostgreSQL):
1. smtp only — `send_batch` of N ready-built messages over one connection to a real aiosmtpd server on
   127.0.0.1 that keeps nothing (the client's and the protocol's cost alone);
2. deliver, e-mail — N `step_assigned` e-mails queued in the outbox (the real context an approval queues),
   drained by the deliver flow's function `deliver_due` in batches of 100: claim, render zh-CN/en templates,
   build the MIME message, send over one connection per batch, mark sent; to the built-in mail catcher
   (aiosmtpd writing each message to a Maildir, as `duly run` does) and to the keep-nothing server;
3. deliver, chat — N chat rows to one loopback HTTP receiver speaking the DingTalk robot API (signed), no rate
   limit (the real robots allow 20 a minute; this is the machinery's own speed).

Usage: python bench/notify_throughput.py [--scale 2000] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pendulum  # noqa: E402
from _seed import Stopwatch, bench_settings, common_arguments, database, db_kinds, load_note, print_table  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import update  # noqa: E402

from duly.bootstrap import prepare  # noqa: E402
from notifications.catcher import MailCatcher, free_port  # noqa: E402
from notifications.delivery import DeliverySettings, deliver_due  # noqa: E402
from notifications.email import RenderedMessage, build_email  # noqa: E402
from notifications.smtp import SmtpSettings, send_batch  # noqa: E402
from store.outbox import queue_message  # noqa: E402
from store.runtime import Runtime  # noqa: E402
from store.tables import ChatHookRow, OutboxRow, PersonRow  # noqa: E402

NOW = pendulum.datetime(2026, 11, 16, 9, tz="Asia/Shanghai")
BATCH = 100
CONTEXT = {"request": {"id": 12, "title": "信息化硬件采购申请：核心交换机 2 台", "policy_title": "信息化硬件采购",
                       "requester_name": "黄磊", "requester_department": "信息科",
                       "fields": [{"label": "采购内容", "value": "核心交换机"},
                                  {"label": "金额", "value": "¥48,000.00"}]},
           "step": {"title": "部门负责人审批", "due_at": "2026-11-18T17:00:00+08:00", "provisional": False},
           "link": "http://127.0.0.1:8000/requests/12"}


class Discard:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        return "250 OK"


class _Robot(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body go in two segments and delayed ACKs cost 40 ms each

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


async def seed(runtime: Runtime, n: int) -> None:
    """n e-mails to four demo people in turn (one of them reads English)."""
    async with runtime.write() as session:
        people = [await session.get(PersonRow, p) for p in ("liu.yang", "sun.li", "zheng.hao", "he.jing")]
        people[3].lang = "en"
        for i in range(n):
            await queue_message(session, event_key=f"bench:{i}", event="step_assigned", recipient=people[i % 4],
                                context=CONTEXT, now=NOW)


async def drain(runtime: Runtime, settings: DeliverySettings) -> tuple[int, float]:
    clock = Stopwatch()
    sent = 0
    while True:
        report = await deliver_due(runtime, settings, now=NOW, batch_size=BATCH)
        sent += report.sent
        if report.claimed == 0:
            return sent, clock.seconds


async def smtp_only(n: int, port: int) -> float:
    def message(i: int) -> Any:
        rendered = RenderedMessage(subject=f"请审批：信息化硬件采购申请 #{i}", text="正文\n", html="<p>正文</p>")
        return build_email(rendered, sender="duly@localhost", to_address="liu.yang@hospital.example", to_name="刘洋",
                           message_id=f"bench.{i}@duly.local", date=NOW)

    messages = [message(i) for i in range(n)]
    clock = Stopwatch()
    for start in range(0, n, BATCH):
        outcomes = await send_batch(messages[start:start + BATCH], SmtpSettings(host="127.0.0.1", port=port))
        assert all(o.ok for o in outcomes)
    return clock.seconds


async def one_database(kind: str, url: str, n: int, discard_port: int, rows: list[list[Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="duly-bench-") as tmp:
        settings = bench_settings(url, Path(tmp) / "data")
        runtime = await prepare(settings, now=NOW)
        try:
            # e-mail to the keep-nothing server, then to the Maildir catcher
            await seed(runtime, n)
            sent, seconds = await drain(runtime, DeliverySettings(smtp=SmtpSettings(port=discard_port)))
            rows.append([kind, "deliver e-mail → aiosmtpd (discard)", sent, f"{seconds:.2f}", f"{sent / seconds:,.0f}"])
            with MailCatcher(Path(tmp) / "mail", host="127.0.0.1", port=free_port()) as catcher:
                await seed_again(runtime, n)
                sent, seconds = await drain(runtime, DeliverySettings(smtp=SmtpSettings(port=catcher.port)))
            rows.append([kind, "deliver e-mail → mail catcher (Maildir)", sent, f"{seconds:.2f}",
                         f"{sent / seconds:,.0f}"])
            port = free_port()
            server = ThreadingHTTPServer(("127.0.0.1", port), _Robot)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                await seed_chat(runtime, n, port)
                sent, seconds = await drain(runtime, DeliverySettings(smtp=SmtpSettings(port=discard_port),
                                                                      chat_per_hook_per_minute=10**6))
            finally:
                server.shutdown()
                server.server_close()
            rows.append([kind, "deliver chat → DingTalk-like receiver (signed)", sent, f"{seconds:.2f}",
                         f"{sent / seconds:,.0f}"])
        finally:
            await runtime.close()


async def seed_again(runtime: Runtime, n: int) -> None:
    async with runtime.write() as session:
        person = await session.get(PersonRow, "liu.yang")
        for i in range(n):
            await queue_message(session, event_key=f"bench2:{i}", event="step_assigned", recipient=person,
                                context=CONTEXT, now=NOW)


async def seed_chat(runtime: Runtime, n: int, port: int) -> None:
    """A DingTalk hook of liu.yang's on the receiver; n events → n chat rows. The n e-mails queued with them are
    marked sent here (bench set-up, not the product's path) so that the row measures chat alone."""
    async with runtime.write() as session:
        session.add(ChatHookRow(scope="person", owner="liu.yang", kind="dingtalk",
                                url=f"http://127.0.0.1:{port}/robot/send?access_token=bench", secret="SECbench",
                                created_at=NOW, created_by="admin"))
    async with runtime.write() as session:
        person = await session.get(PersonRow, "liu.yang")
        for i in range(n):
            await queue_message(session, event_key=f"bench3:{i}", event="step_assigned", recipient=person,
                                context=CONTEXT, now=NOW)
        await session.execute(update(OutboxRow).where(OutboxRow.channel == "email", OutboxRow.state == "pending")
                              .values(state="sent", sent_at=NOW.subtract(hours=1)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    common_arguments(parser, scale=2000)
    args = parser.parse_args()
    n = args.scale
    discard = Controller(Discard(), hostname="127.0.0.1", port=free_port())
    discard.start()
    rows: list[list[Any]] = []
    try:
        seconds = await smtp_only(n, discard.port)
        rows.append(["-", "send_batch only → aiosmtpd (discard)", n, f"{seconds:.2f}", f"{n / seconds:,.0f}"])
        for kind in db_kinds(args.db):
            with database(kind) as url:
                await one_database(kind, url, n, discard.port, rows)
    finally:
        discard.stop()
    print_table(f"Notification throughput, {n:,} messages per row, batches of {BATCH} ({load_note()})",
                ["db", "what", "sent", "seconds", "per second"], rows)


if __name__ == "__main__":
    asyncio.run(main())
