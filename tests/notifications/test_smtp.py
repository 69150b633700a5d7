from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from notifications.catcher import free_port
from notifications.smtp import SendOutcome, SmtpSettings, send_batch


def settings_for(server: Any, **changes: Any) -> SmtpSettings:
    return SmtpSettings(host=server.host, port=server.port, timeout_seconds=5, **changes)


async def test_batch_of_three_is_delivered_over_one_connection(smtp_server: Any, make_email: Any) -> None:
    messages = [make_email(f"approver{n}@example.test") for n in range(3)]

    outcomes = await send_batch(messages, settings_for(smtp_server))

    assert [outcome.ok for outcome in outcomes] == [True, True, True]
    received = smtp_server.handler.received
    assert [r.message["Message-ID"] for r in received] == [m["Message-ID"] for m in messages]
    assert [r.rcpt_tos for r in received] == [[f"approver{n}@example.test"] for n in range(3)]
    assert len({r.peer for r in received}) == 1  # one TCP connection for the whole batch


async def test_recipient_refused_with_550_is_permanent_and_the_batch_goes_on(
    smtp_server: Any, make_email: Any
) -> None:
    messages = [
        make_email("a@example.test"),
        make_email("refuse550@example.test"),
        make_email("b@example.test"),
    ]

    outcomes = await send_batch(messages, settings_for(smtp_server))

    assert [(o.ok, o.permanent) for o in outcomes] == [(True, False), (False, True), (True, False)]
    assert outcomes[1].detail.startswith("550 ") and "refuse550@example.test" in outcomes[1].detail
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["a@example.test"], ["b@example.test"]]


async def test_recipient_refused_with_451_is_temporary(smtp_server: Any, make_email: Any) -> None:
    outcomes = await send_batch([make_email("later451@example.test")], settings_for(smtp_server))

    detail = "451 4.3.0 Try again later (recipient later451@example.test)"
    assert outcomes == [SendOutcome(ok=False, permanent=False, detail=detail)]


@pytest.mark.parametrize(
    ("reply", "permanent"), [("554 5.6.0 Content rejected", True), ("452 4.3.1 Full", False)]
)
async def test_data_refusal_is_permanent_for_5xx_and_temporary_for_4xx(
    smtp_server: Any, make_email: Any, reply: str, permanent: bool
) -> None:
    outcomes = await send_batch([make_email(data_reply=reply), make_email()], settings_for(smtp_server))

    assert (outcomes[0].ok, outcomes[0].permanent, outcomes[0].detail) == (False, permanent, reply)
    assert outcomes[1].ok  # the session was reset and stays usable


async def test_nobody_listening_gives_a_temporary_outcome_per_message_without_raising(
    make_email: Any,
) -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=2)

    outcomes = await send_batch([make_email(), make_email()], settings)

    assert [(o.ok, o.permanent) for o in outcomes] == [(False, False), (False, False)]
    assert outcomes[0].detail.startswith(f"connection refused to 127.0.0.1:{port}")


async def test_connection_lost_mid_batch_leaves_the_rest_temporary(smtp_server: Any, make_email: Any) -> None:
    smtp_server.handler.drop_after = 1

    outcomes = await send_batch([make_email(), make_email(), make_email()], settings_for(smtp_server))

    assert [(o.ok, o.permanent) for o in outcomes] == [(True, False), (False, False), (False, False)]
    assert len(smtp_server.handler.received) == 1


async def test_starttls_against_a_server_without_it_is_a_temporary_failure(
    smtp_server: Any, make_email: Any
) -> None:
    outcomes = await send_batch([make_email()], settings_for(smtp_server, security="starttls"))

    assert (outcomes[0].ok, outcomes[0].permanent) == (False, False)
    assert "STARTTLS" in outcomes[0].detail
    assert smtp_server.handler.received == []


async def test_empty_batch_opens_no_connection() -> None:
    assert await send_batch([], SmtpSettings(port=free_port())) == []


def test_settings_refuse_a_username_without_a_password() -> None:
    with pytest.raises(ValidationError) as caught:
        SmtpSettings(username="duly")

    assert "username and password go together" in str(caught.value)


def test_settings_hide_the_password_and_are_frozen() -> None:
    settings = SmtpSettings(username="duly", password="s3cret")  # type: ignore[arg-type]

    assert "s3cret" not in repr(settings)
    with pytest.raises(ValidationError):
        settings.port = 25  # type: ignore[misc]
