"""The built-in mail catcher: a real SMTP server on loopback that keeps every message.

`duly run` embeds it so the demo works without a mail server. Messages go to a
`mailbox.Maildir` directory, so they survive restarts and any other process (the web
pages, a test) can list them with `list_caught` without talking to the server.

Each stored message is the received bytes, untouched, preceded by three trace headers:

    X-Duly-Received-At  when the catcher accepted it (UTC, ISO 8601)
    X-MailFrom          the envelope sender (MAIL FROM)
    X-RcptTo            the envelope recipients (RCPT TO), comma-separated
"""

from __future__ import annotations

import asyncio
import email.policy
import errno
import logging
import mailbox
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from config import clock as config_clock

__all__ = ["CaughtMessage", "MailCatcher", "free_port", "get_caught", "list_caught"]

_log = logging.getLogger(__name__)

RECEIVED_AT = "X-Duly-Received-At"
MAIL_FROM = "X-MailFrom"
RCPT_TO = "X-RcptTo"
_SERVER_NAME = "duly-catcher"  # greeting name; avoids a socket.getfqdn() DNS lookup per start
_BIND_ATTEMPTS = 3
_NEVER = datetime.min.replace(tzinfo=UTC)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`.

    aiosmtpd's Controller cannot take port 0 (it connects to the port it was given to
    check that the server is up), so the port is chosen before the server starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class CaughtMessage:
    id: str  # maildir key, stable for the life of the message
    message_id: str  # Message-ID without angle brackets, as given to build_email
    sender: str  # the From header as a reader sees it; the envelope sender if there is none
    recipients: list[str]  # envelope recipients
    subject: str  # decoded
    received_at: str  # ISO 8601, UTC
    text: str  # the text/plain part, decoded
    html: str | None  # the text/html part, if any


class MailCatcher:
    """An SMTP server on `host:port` that stores every message in `maildir`.

    Use `start()`/`stop()` or `with MailCatcher(path) as catcher:`. Port 0 picks a free
    port once, at construction, so a stop and start serve on the same port.
    """

    def __init__(
        self,
        maildir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.maildir = Path(maildir)
        self.host = host
        self._port_was_chosen = port == 0
        self.port = port or free_port(host)
        self._clock = clock or config_clock.now
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError(f"mail catcher already running on {self.host}:{self.port}")
        listener = self._bind()
        controller = _BoundController(
            _MaildirHandler(self.maildir, self._clock), listener, server_hostname=_SERVER_NAME
        )
        try:
            controller.start()
        except BaseException:
            controller.stop(no_assert=True)
            listener.close()
            raise
        self._controller = controller
        _log.info("mail catcher listening on %s:%d, storing in %s", self.host, self.port, self.maildir)

    def stop(self) -> None:
        if self._controller is None:
            return
        self._controller.stop()  # closes the listening socket too
        self._controller = None

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        # Binding here rather than inside aiosmtpd turns "port in use" into an immediate
        # error (aiosmtpd only reports it after its 5 s ready timeout).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            listener = socket.socket(family, socket.SOCK_STREAM)
            # A restart on the same port must not wait for old connections in TIME_WAIT.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.host, self.port))
            except OSError as exc:
                listener.close()
                # Another process may take the port between free_port() and bind; only a
                # port we picked ourselves may be swapped for another.
                if exc.errno == errno.EADDRINUSE and self._port_was_chosen and attempt < _BIND_ATTEMPTS:
                    self.port = free_port(self.host)
                    continue
                raise OSError(
                    exc.errno,
                    f"mail catcher cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; "
                    "is another SMTP server using this port? Pass port=0 to pick a free one",
                ) from exc
            return listener
        raise AssertionError("unreachable: the last bind attempt returns or raises")


class _BoundController(Controller):
    """A Controller serving on a socket we already bound (aiosmtpd's documented override point)."""

    def __init__(self, handler: Any, listener: socket.socket, **kwargs: Any) -> None:
        host, port = listener.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._listener = listener

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener)


class _MaildirHandler:
    """aiosmtpd handler: prepend trace headers to the raw bytes and add them to the maildir."""

    def __init__(self, maildir: Path, clock: Callable[[], datetime]) -> None:
        self._maildir = maildir
        self._box = mailbox.Maildir(maildir, create=True)
        self._clock = clock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received_at = self._clock().astimezone(UTC).isoformat()
        # The raw bytes are kept as sent; re-serialising a parsed message could change it.
        trace = (
            _header_line(RECEIVED_AT, received_at)
            + _header_line(MAIL_FROM, envelope.mail_from or "")
            + _header_line(RCPT_TO, ", ".join(envelope.rcpt_tos))
        )
        try:
            key = self._box.add(trace + envelope.original_content)
        except OSError as exc:
            _log.error("mail catcher could not store a message in %s: %s", self._maildir, exc)
            return "451 4.3.0 Mail catcher could not store the message, try again later"
        _log.info("caught message %s for %s", key, ", ".join(envelope.rcpt_tos))
        return "250 OK"


def list_caught(maildir: Path, *, recipient: str | None = None, limit: int = 200) -> list[CaughtMessage]:
    """Caught messages, newest first, optionally only those whose envelope includes `recipient`.

    The recipient comparison ignores case. A missing maildir means nothing was caught yet.
    """
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    box = _open(maildir)
    if box is None:
        return []
    wanted = recipient.strip().casefold() if recipient else None
    found: list[tuple[datetime, str]] = []
    for key, headers in _headers_by_key(box):
        if wanted is not None and wanted not in _recipients(headers, casefold=True):
            continue
        found.append((_received_at(headers), key))
    found.sort(reverse=True)
    loaded = (_load(box, key) for _, key in found[:limit])
    return [message for message in loaded if message is not None]


def get_caught(maildir: Path, message_id_or_key: str) -> CaughtMessage | None:
    """One caught message by maildir key, or by Message-ID (with or without <>).

    A Message-ID is stable per event and recipient, so a resent notification shares it;
    the newest copy is returned.
    """
    box = _open(maildir)
    if box is None:
        return None
    wanted = message_id_or_key.strip()
    if wanted in box:
        return _load(box, wanted)
    wanted_id = wanted.strip("<>")
    matches = [
        (_received_at(headers), key)
        for key, headers in _headers_by_key(box)
        if _message_id(headers) == wanted_id
    ]
    return _load(box, max(matches)[1]) if matches else None


def _header_line(name: str, value: str) -> bytes:
    # policy.SMTP folds long recipient lists and RFC 2047-encodes non-ASCII (SMTPUTF8) addresses.
    return email.policy.SMTP.fold(name, value).encode("ascii")


def _open(maildir: Path) -> mailbox.Maildir | None:
    try:
        return mailbox.Maildir(maildir, create=False)
    except mailbox.NoSuchMailboxError:
        return None


def _headers_by_key(box: mailbox.Maildir) -> list[tuple[str, EmailMessage]]:
    parser = BytesHeaderParser(policy=email.policy.default)
    result: list[tuple[str, EmailMessage]] = []
    for key in box.keys():
        try:
            with box.get_file(key) as stream:
                headers = parser.parse(stream)  # type: ignore[arg-type]
        except (KeyError, FileNotFoundError):
            continue  # removed by another process while we were listing
        result.append((key, headers))  # type: ignore[arg-type]
    return result


def _load(box: mailbox.Maildir, key: str) -> CaughtMessage | None:
    try:
        raw = box.get_bytes(key)
    except (KeyError, FileNotFoundError):
        return None
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return CaughtMessage(
        id=key,
        message_id=_message_id(message),
        sender=_text_header(message, "From") or _text_header(message, MAIL_FROM),
        recipients=_recipients(message, casefold=False),
        subject=_text_header(message, "Subject"),
        received_at=_text_header(message, RECEIVED_AT),
        text=_content(plain) if isinstance(plain, EmailMessage) else "",
        html=_content(html) if isinstance(html, EmailMessage) else None,
    )


def _text_header(message: EmailMessage, name: str) -> str:
    # The catcher accepts mail from anything; the header parser can fail in many ways on
    # malformed input, and one bad header must not hide the message.
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001
        return ""
    return "" if value is None else str(value).strip()


def _received_at(message: EmailMessage) -> datetime:
    # Compared as instants, not strings: isoformat() drops ".000000", which breaks string order.
    try:
        return datetime.fromisoformat(_text_header(message, RECEIVED_AT))
    except ValueError:
        return _NEVER  # dropped into the maildir by something else: list it last


def _message_id(message: EmailMessage) -> str:
    return _text_header(message, "Message-ID").strip("<>")


def _recipients(message: EmailMessage, *, casefold: bool) -> list[str]:
    addresses = [part.strip() for part in _text_header(message, RCPT_TO).split(",") if part.strip()]
    return [address.casefold() for address in addresses] if casefold else addresses


def _content(part: EmailMessage) -> str:
    """The decoded body with "\n" line ends (on the wire they are CRLF; readers want lines)."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):
        # Unknown or lying charset: show what we can rather than nothing.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""
