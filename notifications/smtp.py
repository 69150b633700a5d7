"""Send a batch of e-mails over one SMTP connection and report each message's fate.

`send_batch` never raises for delivery problems. Each message gets a `SendOutcome`:

    ok                      the server accepted the message for every recipient
    not ok, permanent       a 5xx answer, or a message no server could accept (bad
                            recipient address, no recipient): retrying will not help
    not ok, temporary       a 4xx answer, or the connection failed or was lost before
                            the message was accepted: retry later

Connection-level failures (refused, timed out, TLS or login failed) are temporary for
every unsent message even when the server's code is 5xx: they describe our settings or
the server's state, not the message, and the message should go out once they are fixed.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["SendOutcome", "SmtpSettings", "send_batch"]

_log = logging.getLogger(__name__)


class SmtpSettings(BaseModel):
    """Where and how to hand mail over. The defaults talk to the built-in catcher."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="SMTP server name or address")
    port: int = Field(default=1025, ge=1, le=65535, description="25/587 for starttls, 465 for tls")
    security: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none: plain (loopback only); starttls: upgrade; tls: implicit TLS"
    )
    username: str | None = Field(default=None, description="login name, if the server requires AUTH")
    password: SecretStr | None = Field(default=None, description="password for `username`")
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, description="per connect and per command")
    sender: str = Field(default="duly@localhost", min_length=3, description="From address of notifications")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle that signed the server's certificate "
                                                           "(starttls/tls); default: the system's trust store")

    @model_validator(mode="after")
    def _login_needs_both(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both to log in, or neither")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {str(self.ca_file)!r} is not a readable file (a PEM bundle of CA certificates)")
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """Certificates are always verified; `ca_file` adds an internal CA instead of the system's store."""
        if self.security == "none":
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    permanent: bool  # True for 5xx answers or a malformed recipient: do not retry
    detail: str  # for people, e.g. "421 try again later" or "connection refused to 127.0.0.1:1025"


async def send_batch(messages: Sequence[EmailMessage], settings: SmtpSettings) -> list[SendOutcome]:
    """Send `messages` in order over one connection; one outcome per message, same order."""
    if not messages:
        return []
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.security == "tls",
        # False, not None: None means "upgrade if offered", which the "none" setting excludes.
        start_tls=settings.security == "starttls",
        timeout=settings.timeout_seconds,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        tls_context=settings.tls_context(),
    )
    try:
        await client.connect()
    except (SMTPException, OSError) as exc:
        detail = _connect_failure(exc, settings)
        _log.warning("smtp: %s; %d message(s) not sent", detail, len(messages))
        return [_temporary(detail)] * len(messages)

    outcomes: list[SendOutcome] = []
    try:
        for message in messages:
            if not client.is_connected:
                break
            outcome = await _send_one(client, message, settings)
            outcomes.append(outcome)
            if not outcome.ok:
                _log.warning(
                    "smtp: %s not sent: %s", message.get("Message-ID", "(no Message-ID)"), outcome.detail
                )
    finally:
        await _quit(client)

    unsent = len(messages) - len(outcomes)
    if unsent:
        detail = f"not sent: connection to {_endpoint(settings)} was lost earlier in the batch"
        outcomes.extend([_temporary(detail)] * unsent)
    return outcomes


async def _send_one(client: aiosmtplib.SMTP, message: EmailMessage, settings: SmtpSettings) -> SendOutcome:
    try:
        refused, reply = await client.send_message(message)
    except SMTPRecipientsRefused as exc:  # every recipient refused
        return _refusal(exc.recipients)
    except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
        # The session is in an unknown state (a late reply would be read as the answer to
        # the next command), so drop it; the rest of the batch is reported unsent.
        client.close()
        return _temporary(f"connection to {_endpoint(settings)} lost: {exc}")
    except SMTPResponseException as exc:  # MAIL FROM or DATA refused
        return _by_code(exc.code, exc.message)
    except SMTPNotSupported as exc:  # e.g. a non-ASCII address and no SMTPUTF8 on the server
        return SendOutcome(ok=False, permanent=True, detail=f"not sendable to this server: {exc}")
    except ValueError as exc:  # aiosmtplib: unparsable address, no From or no recipient header
        return SendOutcome(ok=False, permanent=True, detail=f"malformed message: {exc}")
    if refused:  # some recipients accepted, some not
        return _refusal(
            [
                SMTPRecipientRefused(response.code, response.message, rcpt)
                for rcpt, response in refused.items()
            ]
        )
    return SendOutcome(ok=True, permanent=False, detail=f"accepted: {reply}")


def _refusal(refusals: Sequence[SMTPRecipientRefused]) -> SendOutcome:
    detail = "; ".join(f"{r.code} {r.message} (recipient {r.recipient})" for r in refusals)
    return SendOutcome(ok=False, permanent=all(_is_permanent(r.code) for r in refusals), detail=detail)


def _by_code(code: int, message: str) -> SendOutcome:
    return SendOutcome(ok=False, permanent=_is_permanent(code), detail=f"{code} {message}")


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _temporary(detail: str) -> SendOutcome:
    return SendOutcome(ok=False, permanent=False, detail=detail)


def _endpoint(settings: SmtpSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _connect_failure(exc: BaseException, settings: SmtpSettings) -> str:
    """Say what went wrong while connecting, in words that point at the likely fix."""
    where = _endpoint(settings)
    cause = exc.__cause__
    if isinstance(cause, ConnectionRefusedError):
        return f"connection refused to {where} (is the SMTP server running, and is the port right?)"
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve SMTP host {settings.host!r}: {cause.strerror}"
    if isinstance(exc, SMTPConnectTimeoutError):
        return f"timed out after {settings.timeout_seconds:g} s connecting to {where}"
    if isinstance(exc, SMTPAuthenticationError):
        return f"login as {settings.username!r} refused by {where}: {exc.code} {exc.message}"
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        return (
            f"TLS with {where} failed ({cause or exc}); check `security`: tls is implicit TLS "
            "(usually port 465), starttls upgrades a plain connection (usually 587 or 25)"
        )
    if settings.security == "starttls" and "STARTTLS" in str(exc):
        return f"{where} does not offer STARTTLS; use security 'tls' for implicit TLS (port 465)"
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message} (from {where} while connecting)"
    return f"cannot connect to {where}: {exc}"


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (SMTPException, OSError):
        # Accepted messages stay accepted whatever happens to QUIT.
        client.close()
