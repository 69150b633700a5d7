"""A stand-in for the WeCom, DingTalk and Feishu robot servers on 127.0.0.1.

It serves the vendors' webhook paths, records every request, and checks signatures the way
each vendor's server does, from the documented algorithms written out again here, not
imported from the code under test:

    DingTalk  /robot/send?access_token=T&timestamp=<ms>&sign=<urlencoded b64 HMAC(secret, "<ms>\\n<secret>")>
    Feishu    /open-apis/bot/v2/hook/T, body "timestamp" (s) and "sign" = b64 HMAC("<s>\\n<secret>", "")

A robot registered with `require_signature(token, secret)` answers a missing, wrong or stale
(more than an hour from the receiver's `clock`) signature with the vendor's error code. Other
answers are scripted with `reply(...)`, one per request, else the vendor's success answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from notifications.catcher import free_port

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
FEISHU_PATH = "/open-apis/bot/v2/hook/"
SUCCESS: dict[str, dict[str, Any]] = {
    "wecom": {"errcode": 0, "errmsg": "ok"},
    "dingtalk": {"errcode": 0, "errmsg": "ok"},
    "feishu": {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"},
}
SIGN_MISMATCH: dict[str, dict[str, Any]] = {
    "dingtalk": {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/x]"},
    "feishu": {"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not within one hour"},
}
MAX_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None  # None: the vendor's success answer; str: sent as is
    delay: float = 0.0  # seconds to wait before answering


@dataclass(frozen=True)
class Received:
    vendor: str
    token: str  # the robot: WeCom key, DingTalk access_token, Feishu path token
    path: str
    query: dict[str, str]
    body: Any  # the parsed JSON, or None when the body was not JSON
    peer_port: int  # one value per TCP connection
    signature_checked: bool
    signature_problem: str  # "" when the signature was checked and is right


@dataclass
class ChatReceiver:
    host: str
    port: int
    clock: datetime  # the vendor server's "now" for freshness checks; tests set it
    received: list[Received] = field(default_factory=list)
    _replies: deque[Reply] = field(default_factory=deque)
    _secrets: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, vendor: str, token: str) -> str:
        """A webhook URL of `vendor`'s shape on this receiver."""
        if vendor == "wecom":
            return f"{self.base}{WECOM_PATH}?key={token}"
        if vendor == "dingtalk":
            return f"{self.base}{DINGTALK_PATH}?access_token={token}"
        return f"{self.base}{FEISHU_PATH}{token}"

    def require_signature(self, token: str, secret: str) -> None:
        self._secrets[token] = secret

    def reply(self, *replies: Reply) -> None:
        self._replies.extend(replies)

    def answer(self, path: str, raw: bytes, peer_port: int) -> tuple[Reply, dict[str, Any] | str]:
        """Record one request and decide the answer, as the vendor would."""
        parts = urlsplit(path)
        query = dict(parse_qsl(parts.query))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if parts.path == WECOM_PATH:
            vendor, token = "wecom", query.get("key", "")
        elif parts.path == DINGTALK_PATH:
            vendor, token = "dingtalk", query.get("access_token", "")
        elif parts.path.startswith(FEISHU_PATH):
            vendor, token = "feishu", parts.path[len(FEISHU_PATH):]
        else:
            vendor, token = "unknown", ""
        secret = self._secrets.get(token)
        problem = self._check_signature(vendor, secret, query, body) if secret is not None else ""
        with self._lock:
            self.received.append(
                Received(vendor, token, parts.path, query, body, peer_port, secret is not None, problem)
            )
            scripted = self._replies.popleft() if self._replies else None
        if vendor == "unknown":
            return Reply(status=404), "404 page not found"
        if problem:
            return Reply(), SIGN_MISMATCH[vendor]
        reply = scripted or Reply()
        return reply, SUCCESS[vendor] if reply.body is None else reply.body

    def _check_signature(self, vendor: str, secret: str, query: dict[str, str], body: Any) -> str:
        if vendor == "dingtalk":
            timestamp, sign = query.get("timestamp"), query.get("sign")  # parse_qsl has URL-decoded sign
            if not timestamp or not sign:
                return "no timestamp or sign in the query"
            expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
            sent_at = datetime.fromtimestamp(int(timestamp) / 1000, tz=self.clock.tzinfo)
        elif vendor == "feishu":
            timestamp, sign = (body or {}).get("timestamp"), (body or {}).get("sign")
            if not timestamp or not sign:
                return "no timestamp or sign in the body"
            expected = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
            sent_at = datetime.fromtimestamp(int(timestamp), tz=self.clock.tzinfo)
        else:
            return f"{vendor} robots have no signing"
        try:
            sent_sign = base64.b64decode(sign, validate=True)
        except binascii.Error:
            return "sign is not base64"
        if not hmac.compare_digest(sent_sign, expected):
            return "sign does not match"
        if abs(sent_at - self.clock) > MAX_SKEW:
            return f"timestamp {sent_at.isoformat()} is more than an hour from {self.clock.isoformat()}"
        return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed
    disable_nagle_algorithm = True  # headers and body in one go, not 40 ms apart (delayed ACK)
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply, body = self.server.receiver.answer(self.path, raw, self.client_address[1])
        if reply.delay and self.server.stopping.wait(reply.delay):
            return
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: ChatReceiver
    stopping: threading.Event


class ReceiverServer:
    """The HTTP server; each test takes a `fresh` receiver (its own records and script) from it."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self.host, self.port = "127.0.0.1", server.server_address[1]

    def fresh(self, clock: datetime) -> ChatReceiver:
        self._server.receiver = ChatReceiver(self.host, self.port, clock)
        return self._server.receiver


@contextmanager
def running_server() -> Iterator[ReceiverServer]:
    """A receiver server on a free 127.0.0.1 port until the block ends."""
    server = _Server(("127.0.0.1", free_port()), _Handler)
    server.stopping = threading.Event()
    started = ReceiverServer(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield started
    finally:
        server.stopping.set()  # delayed answers give up at once
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
