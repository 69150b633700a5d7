"""STARTTLS, implicit TLS and AUTH against a real aiosmtpd server with a throw-away CA (trustme): certificates
are verified, `ca_file` names an internal CA, and every failure says what to fix."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.catcher import free_port
from notifications.smtp import SmtpSettings, send_batch

from .conftest import RecordingHandler

USER, PASSWORD = "duly", "s3cret-密码"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def run(controller: Controller) -> Iterator[Controller]:
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[Controller]:
    """Port 587 style: plain connect, STARTTLS required before AUTH and MAIL."""
    yield from run(Controller(RecordingHandler(), hostname="127.0.0.1", port=free_port(),
                              tls_context=server_context(ca),
                              require_starttls=True, auth_required=True, auth_require_tls=True,
                              authenticator=authenticate, server_hostname="relay.hospital.example"))


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Controller]:
    """Port 465 style: TLS from the first byte. (aiosmtpd only counts STARTTLS as TLS for `auth_require_tls`, so
    that flag stays off here: the whole connection is TLS anyway.)"""
    yield from run(Controller(RecordingHandler(), hostname="127.0.0.1", port=free_port(),
                              ssl_context=server_context(ca),
                              auth_required=True, auth_require_tls=False, authenticator=authenticate,
                              server_hostname="relay.hospital.example"))


def settings(server: Controller, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": server.port, "timeout_seconds": 5, "username": USER,
                              "password": PASSWORD}
    return SmtpSettings(**{**values, **changes})


async def test_starttls_with_login_delivers_when_the_internal_ca_is_given(starttls_server, ca_file, make_email):
    outcomes = await send_batch([make_email(), make_email()], settings(starttls_server, security="starttls",
                                                                        ca_file=ca_file))
    assert [o.ok for o in outcomes] == [True, True]
    received = starttls_server.handler.received
    assert len(received) == 2 and len({r.peer for r in received}) == 1  # one connection for the batch


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_with_login_delivers(tls_server, ca_file, make_email):
    [outcome] = await send_batch([make_email()], settings(tls_server, security="tls", ca_file=ca_file))
    assert outcome.ok, outcome.detail
    assert tls_server.handler.received[0].message["Subject"].startswith("请审批")


async def test_a_certificate_from_an_unknown_ca_is_refused_and_says_what_to_set(starttls_server, make_email):
    [outcome] = await send_batch([make_email()], settings(starttls_server, security="starttls"))
    assert not outcome.ok and not outcome.permanent
    assert "TLS with 127.0.0.1" in outcome.detail and "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert starttls_server.handler.received == []


async def test_a_wrong_password_is_a_temporary_failure_naming_the_login(starttls_server, ca_file, make_email):
    [outcome] = await send_batch([make_email()], settings(starttls_server, security="starttls", ca_file=ca_file,
                                                           password="wrong"))
    assert not outcome.ok and not outcome.permanent  # fix the settings and the message still goes out
    assert outcome.detail.startswith("login as 'duly' refused by 127.0.0.1")
    assert "wrong" not in outcome.detail and PASSWORD not in outcome.detail


async def test_plain_smtp_to_a_server_that_requires_starttls_is_not_sent(starttls_server, make_email):
    [outcome] = await send_batch([make_email()], settings(starttls_server, username=None, password=None))
    assert not outcome.ok
    assert "530" in outcome.detail and "STARTTLS" in outcome.detail
    assert starttls_server.handler.received == []


async def test_implicit_tls_setting_against_a_starttls_port_explains_the_two_modes(starttls_server, ca_file,
                                                                                   make_email):
    [outcome] = await send_batch([make_email()], settings(starttls_server, security="tls", ca_file=ca_file))
    assert not outcome.ok and not outcome.permanent
    assert "check `security`: tls is implicit TLS (usually port 465), starttls upgrades" in outcome.detail


def test_a_ca_file_that_does_not_exist_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_file '.*missing.pem' is not a readable file"):
        SmtpSettings(security="starttls", ca_file=tmp_path / "missing.pem")
