from __future__ import annotations

import copy
import email.policy
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from jinja2 import UndefinedError

from notifications.email import (
    EVENTS,
    HeaderInjectionError,
    InvalidAddressError,
    RenderContextError,
    RenderedMessage,
    build_email,
    local_time,
    render,
)

PROVISIONAL = {
    "zh-CN": "（暂定：该年度节假日安排未公布）",
    "en": "provisional: holiday calendar for that year not yet published",
}
REQUEST_LINK = "https://duly.example.cn/requests/12"
OBLIGATION_LINK = "https://duly.example.cn/obligations/7"
BEIJING = timezone(timedelta(hours=8))
# One request or obligation per message; the digest, the escalation report and audit_broken are tested with
# the contexts their flows build (tests/flows/test_digest.py, test_escalation_report.py, test_housekeeping.py).
ITEM_EVENTS = EVENTS - {"digest", "escalation_report", "audit_broken"}


def representative_context(event: str, *, provisional: bool = False) -> dict[str, Any]:
    request = {
        "id": 12,
        "title": "信息化硬件采购申请",
        "policy_title": "信息化设备采购审批办法",
        "requester_name": "王芳",
        "requester_department": "信息中心",
        "fields": [
            {"label": "金额", "value": "¥48,000.00"},
            {"label": "用途", "value": "门诊叫号系统服务器"},
        ],
    }
    step = {"title": "分管院领导审批", "due_at": "2026-12-01T17:00:00+08:00", "provisional": provisional}
    obligation = {
        "id": 7,
        "title": "医院工作报表（门诊部分）",
        "policy_title": "卫生健康统计调查制度",
        "period": "2026-10",
        "due_at": "2026-11-15T23:59:59+08:00",
        "provisional": provisional,
        "owner_department": "门诊部",
    }
    contexts: dict[str, dict[str, Any]] = {
        "step_assigned": {"request": request, "step": step, "link": REQUEST_LINK},
        "request_decided": {
            "request": request,
            "outcome": "rejected",
            "decider_name": "李院长",
            "reason": "预算已用完，请下季度重新申请。",
            "link": REQUEST_LINK,
        },
        "step_escalated": {"request": request, "step": step, "approver_name": "张主任", "link": REQUEST_LINK},
        "obligation_reminder": {"obligation": obligation, "link": OBLIGATION_LINK},
        "obligation_overdue": {"obligation": obligation, "link": OBLIGATION_LINK},
        "submission_reviewed": {"obligation": obligation, "submission": {"id": 3, "kind": "original",
                                                                         "state": "returned"},
                                "outcome": "rejected", "submitter_name": "马超", "link": OBLIGATION_LINK},
        "request_returned": {"request": request, "decider_name": "李院长", "reason": "请补充报价单。",
                             "link": REQUEST_LINK},
        "request_withdrawn": {"request": request, "decider_name": "王芳", "reason": None, "link": REQUEST_LINK},
    }
    return contexts[event]


def rendered_sample(subject: str = "请审批：信息化硬件采购申请 #12") -> RenderedMessage:
    return RenderedMessage(subject=subject, text="正文\n", html="<p>正文</p>")


def build(rendered: RenderedMessage | None = None, **overrides: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "sender": "duly@localhost",
        "to_address": "zhang.san@hospital.example.cn",
        "to_name": "张三",
        "message_id": "step-12-1.user-3@duly.example.cn",
        "date": datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING),
    }
    arguments.update(overrides)
    return build_email(rendered or rendered_sample(), **arguments)


def parse(message: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


class TestRender:
    @pytest.mark.parametrize("lang", ["zh-CN", "en"])
    @pytest.mark.parametrize("event", sorted(ITEM_EVENTS))
    def test_every_event_renders_subject_text_and_html_with_the_link(self, event: str, lang: str) -> None:
        context = representative_context(event)

        rendered = render(event, context, lang=lang)

        assert rendered.subject and "\n" not in rendered.subject
        assert context["link"] in rendered.text
        assert f'href="{context["link"]}"' in rendered.html
        assert rendered.html.startswith("<!DOCTYPE html>")
        title = context["request"]["title"] if "request" in context else context["obligation"]["title"]
        assert title in rendered.subject and title in rendered.text and title in rendered.html

    @pytest.mark.parametrize(
        ("event", "changes", "subject"),
        [
            ("step_assigned", {}, "请审批：信息化硬件采购申请 #12（12月1日 17:00 前）"),
            ("request_decided", {"outcome": "approved", "reason": None}, "已批准：信息化硬件采购申请 #12"),
            ("request_decided", {}, "已驳回：信息化硬件采购申请 #12"),
            ("step_escalated", {}, "督办：信息化硬件采购申请 #12 已超时未审批"),
            ("obligation_reminder", {}, "请在 11月15日 23:59 前报送：医院工作报表（门诊部分）"),
            ("obligation_overdue", {}, "逾期未报：医院工作报表（门诊部分）（2026-10）"),
        ],
    )
    def test_chinese_subjects_read_as_institutions_write_them(
        self, event: str, changes: dict[str, Any], subject: str
    ) -> None:
        assert render(event, {**representative_context(event), **changes}).subject == subject

    @pytest.mark.parametrize(
        ("event", "changes", "subject"),
        [
            ("step_assigned", {}, "Approval needed: 信息化硬件采购申请 #12 (by 1 Dec 17:00)"),
            ("request_decided", {"outcome": "approved", "reason": None}, "Approved: 信息化硬件采购申请 #12"),
            ("request_decided", {}, "Rejected: 信息化硬件采购申请 #12"),
            ("step_escalated", {}, "Follow-up: 信息化硬件采购申请 #12 is overdue for approval"),
            ("obligation_reminder", {}, "Please submit by 15 Nov 23:59: 医院工作报表（门诊部分）"),
            ("obligation_overdue", {}, "Overdue, not submitted: 医院工作报表（门诊部分） (2026-10)"),
        ],
    )
    def test_english_subjects(self, event: str, changes: dict[str, Any], subject: str) -> None:
        assert render(event, {**representative_context(event), **changes}, lang="en").subject == subject

    @pytest.mark.parametrize(("lang", "label"), [("zh-CN", "驳回理由："), ("en", "Reason: ")])
    def test_rejection_reason_is_in_text_and_html(self, lang: str, label: str) -> None:
        rendered = render("request_decided", representative_context("request_decided"), lang=lang)

        assert f"{label}预算已用完，请下季度重新申请。" in rendered.text
        assert "预算已用完，请下季度重新申请。" in rendered.html and "李院长" in rendered.text

    def test_approval_without_reason_has_no_reason_line(self) -> None:
        context = {**representative_context("request_decided"), "outcome": "approved", "reason": None}

        rendered = render("request_decided", context)

        assert "已由 李院长 批准" in rendered.text
        assert "理由" not in rendered.text and "意见" not in rendered.text

    @pytest.mark.parametrize("lang", ["zh-CN", "en"])
    @pytest.mark.parametrize("event", sorted(ITEM_EVENTS - {"request_decided", "request_returned",
                                                         "request_withdrawn"}))
    def test_provisional_deadline_is_marked_in_text_and_html(self, event: str, lang: str) -> None:
        marked = render(event, representative_context(event, provisional=True), lang=lang)
        plain = render(event, representative_context(event, provisional=False), lang=lang)

        assert PROVISIONAL[lang] in marked.text and PROVISIONAL[lang] in marked.html
        assert PROVISIONAL[lang] not in plain.text and PROVISIONAL[lang] not in plain.html

    def test_provisional_marker_reaches_the_subject_of_an_assignment(self) -> None:
        rendered = render("step_assigned", representative_context("step_assigned", provisional=True))

        assert rendered.subject == "请审批：信息化硬件采购申请 #12（12月1日 17:00 前，暂定）"

    def test_html_escapes_user_text_and_plain_text_keeps_it(self) -> None:
        context = copy.deepcopy(representative_context("step_assigned"))
        context["request"]["title"] = '<script>alert("x")</script> & 采购'

        rendered = render("step_assigned", context)

        assert "<script>" not in rendered.html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 采购" in rendered.html
        assert '<script>alert("x")</script> & 采购' in rendered.text

    def test_title_with_line_break_still_gives_a_one_line_subject(self) -> None:
        context = copy.deepcopy(representative_context("step_assigned"))
        context["request"]["title"] = "采购申请\r\nBcc: everyone@example.test"

        rendered = render("step_assigned", context)

        assert rendered.subject.startswith("请审批：采购申请 Bcc: everyone@example.test #12")

    def test_missing_context_key_is_an_error_naming_the_key(self) -> None:
        context = copy.deepcopy(representative_context("step_assigned"))
        del context["step"]["due_at"]

        with pytest.raises(RenderContextError) as caught:
            render("step_assigned", context)

        assert "due_at" in str(caught.value)
        assert isinstance(caught.value.__cause__, UndefinedError)  # StrictUndefined, not a blank

    def test_unknown_event_names_the_allowed_events(self) -> None:
        with pytest.raises(ValueError) as caught:
            render("step_assinged", representative_context("step_assigned"))

        assert all(event in str(caught.value) for event in EVENTS)

    def test_unknown_language_names_the_allowed_languages(self) -> None:
        with pytest.raises(ValueError) as caught:
            render("step_assigned", representative_context("step_assigned"), lang="fr")

        assert "zh-CN" in str(caught.value) and "en" in str(caught.value)

    def test_zh_and_zh_cn_render_the_same_and_are_the_default(self) -> None:
        context = representative_context("obligation_reminder")

        assert render("obligation_reminder", context, lang="zh") == render("obligation_reminder", context)

    def test_outcome_other_than_approved_or_rejected_is_refused(self) -> None:
        context = {**representative_context("request_decided"), "outcome": "withdrawn"}

        with pytest.raises(RenderContextError) as caught:
            render("request_decided", context)

        assert "withdrawn" in str(caught.value)


class TestLocalTime:
    @pytest.mark.parametrize(
        ("instant", "lang", "shown"),
        [
            ("2026-11-15T23:59:59+08:00", "zh", "11月15日 23:59"),
            ("2026-11-15T23:59:59+08:00", "en", "15 Nov 23:59"),
            ("2026-12-01T09:00:00+00:00", "zh", "12月1日 09:00"),
            ("2026-12-01T09:00:00Z", "en", "1 Dec 09:00"),
        ],
    )
    def test_instant_is_shown_in_its_own_offset(self, instant: str, lang: str, shown: str) -> None:
        assert local_time(instant, lang) == shown

    def test_instant_without_offset_is_refused(self) -> None:
        with pytest.raises(ValueError) as caught:
            local_time("2026-11-15T23:59:59")

        assert "offset" in str(caught.value)


class TestBuildEmail:
    def test_chinese_subject_and_name_survive_the_wire(self) -> None:
        rendered = render("step_assigned", representative_context("step_assigned"))

        parsed = parse(build(rendered))

        assert parsed["Subject"] == "请审批：信息化硬件采购申请 #12（12月1日 17:00 前）"
        assert parsed["To"].addresses[0].display_name == "张三"
        assert parsed["To"].addresses[0].addr_spec == "zhang.san@hospital.example.cn"
        assert parsed["From"].addresses[0].addr_spec == "duly@localhost"

    def test_message_is_multipart_alternative_text_then_html_in_utf8(self) -> None:
        rendered = render("step_assigned", representative_context("step_assigned"))

        parsed = parse(build(rendered))

        assert parsed.get_content_type() == "multipart/alternative"
        parts = list(parsed.iter_parts())
        assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
        assert all(part.get_content_charset() == "utf-8" for part in parts)
        # Bodies travel with CRLF line ends, as SMTP requires.
        assert parts[0].get_content() == rendered.text.replace("\n", "\r\n")
        assert "王芳" in parts[1].get_content()

    def test_message_id_and_date_are_used_verbatim(self) -> None:
        date = datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING)

        raw = build(message_id="step-12-1.user-3@duly.example.cn", date=date).as_bytes()

        assert b"\r\nMessage-ID: <step-12-1.user-3@duly.example.cn>\r\n" in raw
        assert b"\r\nDate: Sat, 28 Nov 2026 09:30:00 +0800\r\n" in raw

    def test_wire_form_is_ascii_with_crlf_lines_within_smtp_limits(self) -> None:
        long_title = "关于申请购置门诊医技楼信息化硬件设备及配套软件系统的请示" * 3
        raw = build(rendered_sample(f"请审批：{long_title}")).as_bytes()

        assert raw.isascii()
        lines = raw.split(b"\r\n")
        assert all(len(line) <= 998 and b"\n" not in line for line in lines)
        assert parse(build(rendered_sample(f"请审批：{long_title}")))["Subject"] == f"请审批：{long_title}"

    def test_display_name_with_comma_and_quotes_round_trips(self) -> None:
        parsed = parse(build(to_name='Li, "Boss"'))

        assert parsed["To"].addresses[0].display_name == 'Li, "Boss"'
        assert len(parsed["To"].addresses) == 1

    @pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\x00"])
    @pytest.mark.parametrize("field", ["subject", "to_name", "to_address", "sender", "message_id"])
    def test_line_break_or_nul_in_a_header_value_is_refused(self, field: str, bad: str) -> None:
        values = {
            "subject": "请审批",
            "to_name": "张三",
            "to_address": "zhang.san@hospital.example.cn",
            "sender": "duly@localhost",
            "message_id": "step-12-1@duly.example.cn",
        }
        values[field] = values[field] + bad + "Bcc: everyone@example.test"
        subject = values.pop("subject")

        with pytest.raises(HeaderInjectionError) as caught:
            build(rendered_sample(subject), **values)

        assert field in str(caught.value)

    @pytest.mark.parametrize(
        "address",
        [
            "",
            "zhang.san",
            "zhang.san@",
            "@hospital.example.cn",
            "zhang san@hospital.example.cn",
            "<zhang.san@hospital.example.cn>",
            "张三 <zhang.san@hospital.example.cn>",
            "a@hospital.example.cn, b@hospital.example.cn",
            "zhang.san@hospital@example.cn",
            "张三@hospital.example.cn",
            "zhang.san@医院.中国",
        ],
    )
    def test_address_that_is_not_a_plain_addr_spec_is_refused(self, address: str) -> None:
        with pytest.raises(InvalidAddressError) as caught:
            build(to_address=address)

        assert "to_address" in str(caught.value)

    def test_invalid_sender_is_refused(self) -> None:
        with pytest.raises(InvalidAddressError):
            build(sender="duly")

    @pytest.mark.parametrize("message_id", ["<step-12@duly>", "step 12@duly", "step-12", ""])
    def test_message_id_must_be_left_at_right_without_brackets(self, message_id: str) -> None:
        with pytest.raises(ValueError) as caught:
            build(message_id=message_id)

        assert "message_id" in str(caught.value)

    def test_naive_date_is_refused(self) -> None:
        with pytest.raises(ValueError) as caught:
            build(date=datetime(2026, 11, 28, 9, 30))

        assert "timezone-aware" in str(caught.value)
