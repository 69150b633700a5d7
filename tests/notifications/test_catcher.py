from __future__ import annotations

import itertools
import mailbox
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifications.catcher import MailCatcher, get_caught, list_caught
from notifications.smtp import SmtpSettings, send_batch

SUBJECT = "请审批：信息化硬件采购申请 #12（12月1日 17:00 前）"


def ticking_clock(start: datetime = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)) -> Callable[[], datetime]:
    """A clock that moves one minute per reading, so arrival order never depends on timing."""
    minutes = itertools.count()
    return lambda: start + timedelta(minutes=next(minutes))


async def deliver(catcher: MailCatcher, *messages: Any) -> None:
    outcomes = await send_batch(list(messages), SmtpSettings(host=catcher.host, port=catcher.port))
    assert all(outcome.ok for outcome in outcomes), outcomes


async def test_caught_message_is_listed_with_its_chinese_subject_decoded(
    tmp_path: Path, make_email: Any
) -> None:
    message = make_email("approver@example.test", subject=SUBJECT)

    with MailCatcher(tmp_path / "mail") as catcher:
        await deliver(catcher, message)

    [caught] = list_caught(tmp_path / "mail")
    assert caught.subject == SUBJECT
    assert caught.message_id == message["Message-ID"].strip("<>")
    assert caught.recipients == ["approver@example.test"]
    assert caught.sender == "duly@localhost"
    assert caught.text == "信息中心 王芳 提交的申请需要您审批。\n"
    assert caught.html == "<p>信息中心 王芳 提交的申请需要您审批。</p>\n"
    assert datetime.fromisoformat(caught.received_at).utcoffset() == timedelta(0)


async def test_recipient_filter_matches_envelope_recipient_ignoring_case(
    tmp_path: Path, make_email: Any
) -> None:
    with MailCatcher(tmp_path / "mail") as catcher:
        await deliver(
            catcher, make_email("Zhang.San@Hospital.example.cn"), make_email("li.si@hospital.example.cn")
        )

    found = list_caught(tmp_path / "mail", recipient="zhang.san@hospital.EXAMPLE.cn")

    assert [caught.recipients for caught in found] == [["Zhang.San@Hospital.example.cn"]]
    assert list_caught(tmp_path / "mail", recipient="nobody@hospital.example.cn") == []


async def test_messages_survive_a_restart_and_list_newest_first(tmp_path: Path, make_email: Any) -> None:
    maildir = tmp_path / "mail"
    clock = ticking_clock()
    first, second, third = make_email(), make_email(), make_email()
    catcher = MailCatcher(maildir, clock=clock)
    with catcher:
        await deliver(catcher, first)
    with catcher:  # the same catcher again: same port, same maildir
        await deliver(catcher, second)
    with MailCatcher(maildir, clock=clock) as another:  # a new process would do this
        await deliver(another, third)

    listed = list_caught(maildir)

    assert [c.message_id for c in listed] == [m["Message-ID"].strip("<>") for m in (third, second, first)]
    assert list_caught(maildir, limit=1)[0].message_id == third["Message-ID"].strip("<>")


async def test_caught_message_is_found_by_key_or_by_message_id(tmp_path: Path, make_email: Any) -> None:
    message = make_email(message_id="step-12-1.user-3@duly.test")
    with MailCatcher(tmp_path / "mail") as catcher:
        await deliver(catcher, message)
    [listed] = list_caught(tmp_path / "mail")

    assert get_caught(tmp_path / "mail", listed.id) == listed
    assert get_caught(tmp_path / "mail", "step-12-1.user-3@duly.test") == listed
    assert get_caught(tmp_path / "mail", "<step-12-1.user-3@duly.test>") == listed
    assert get_caught(tmp_path / "mail", "unknown@duly.test") is None


async def test_resent_notification_is_found_as_its_newest_copy(tmp_path: Path, make_email: Any) -> None:
    with MailCatcher(tmp_path / "mail", clock=ticking_clock()) as catcher:
        await deliver(catcher, make_email(message_id="obligation-7.dept-3@duly.test", text="第一次\n"))
        await deliver(catcher, make_email(message_id="obligation-7.dept-3@duly.test", text="再次提醒\n"))

    caught = get_caught(tmp_path / "mail", "obligation-7.dept-3@duly.test")

    assert caught is not None and caught.text == "再次提醒\n"


async def test_stored_file_is_a_plain_maildir_message_with_trace_headers(
    tmp_path: Path, make_email: Any
) -> None:
    with MailCatcher(tmp_path / "mail", clock=ticking_clock()) as catcher:
        await deliver(catcher, make_email("approver@example.test"))

    [stored] = mailbox.Maildir(tmp_path / "mail", create=False)

    assert stored["X-Duly-Received-At"] == "2026-11-28T01:00:00+00:00"
    assert stored["X-RcptTo"] == "approver@example.test"
    assert stored["X-MailFrom"] == "duly@localhost"


def test_listing_a_maildir_that_does_not_exist_yet_is_empty(tmp_path: Path) -> None:
    assert list_caught(tmp_path / "never-created") == []
    assert get_caught(tmp_path / "never-created", "anything") is None


def test_port_in_use_fails_at_once_with_a_message_saying_so(tmp_path: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        catcher = MailCatcher(tmp_path / "mail", port=port)
        started = time.monotonic()

        with pytest.raises(OSError) as caught:
            catcher.start()

    assert time.monotonic() - started < 1
    assert f"cannot listen on 127.0.0.1:{port}" in str(caught.value)
    assert not catcher.running


def test_starting_twice_is_refused(tmp_path: Path) -> None:
    with MailCatcher(tmp_path / "mail") as catcher:
        with pytest.raises(RuntimeError):
            catcher.start()


async def test_foreign_message_without_trace_headers_is_listed_last(tmp_path: Path, make_email: Any) -> None:
    with MailCatcher(tmp_path / "mail") as catcher:
        await deliver(catcher, make_email())
    headers = b"Subject: hand-made\r\nContent-Type: text/plain; charset=no-such-charset\r\n"
    mailbox.Maildir(tmp_path / "mail").add(headers + b"\r\n" + "你好\r\n".encode())

    listed = list_caught(tmp_path / "mail")

    assert [c.subject for c in listed][-1] == "hand-made"
    assert listed[-1].text == "你好\n" and listed[-1].recipients == [] and listed[-1].received_at == ""
