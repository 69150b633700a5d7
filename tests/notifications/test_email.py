from __future__ import annotations

import copy
import email.policy
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

import notifications.email
from notifications.email import (
    EVENTS,
    HeaderInjectionError,
    InvalidAddressError,
    RenderContextError,
    RenderedMessage,
    build_email,
    local_date,
    local_time,
    markdown_escape,
    render,
)

PROVISIONAL = {
    "zh-CN": "（暂定：该年度节假日安排未公布）",
    "en": "provisional: holiday calendar for that year not yet published",
}
REQUEST_LINK = "https://duly.example.cn/requests/12"
OBLIGATION_LINK = "https://duly.example.cn/obligations/7"
INBOX_LINK = "https://duly.example.cn/inbox"
CALENDAR_LINK = "https://duly.example.cn/calendar"
BEIJING = timezone(timedelta(hours=8))
# One request or obligation per message; the digest, the escalation report and audit_broken are tested with
# the contexts their flows build (tests/flows/test_digest.py, test_escalation_report.py, test_housekeeping.py).
ITEM_EVENTS = EVENTS - {"digest", "escalation_report", "audit_broken"}
# The events sent to chat bots too: each has a short markdown form (`<event>.<lang>.md.j2`).
CHAT_EVENTS = ITEM_EVENTS
UNDATED_EVENTS = {"request_decided", "request_returned", "request_withdrawn", "delegated", "weekly_points"}


def representative_context(event: str, *, provisional: bool = False) -> dict[str, Any]:
    request = {
        "id": 12,
        "title": "信息化硬件采购申请",
        "policy_title": "信息化设备采购审批办法",
        "requester_name": "王芳",
        "requester_department": "信息中心",
        "fields": [
            {"label": "金额", "value": "¥48,000.00", "money": True},
            {"label": "用途", "value": "门诊叫号系统服务器", "money": False},
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
        "request_filed": {"request": request, "step": step, "waiting_on": "张主任、李院长", "link": REQUEST_LINK},
        "step_reminder": {"request": request, "step": step, "link": REQUEST_LINK},
        "delegated": {"delegation_id": 4, "from_name": "张主任", "from_department": "信息中心",
                      "starts_at": "2026-12-01T00:00:00+08:00", "ends_at": "2026-12-08T00:00:00+08:00",
                      "last_day": "2026-12-07", "policies": ["信息化设备采购审批办法"], "reason": "外出培训",
                      "link": INBOX_LINK},
        "obligation_opened": {"obligation": {**obligation, "id": 31, "title": "离职人员信息系统账号变更",
                                             "policy_title": "信息系统账号管理制度", "period": "ev:1f3a9c0d2b4e6f70",
                                             "due_at": "2026-12-03T17:00:00+08:00", "owner_department": "信息中心"},
                              "event": {"name": "staff_departure", "reference": "离职-2026-031",
                                        "occurred_at": "2026-11-26T10:00:00+08:00", "reporter_name": "人事科 赵敏"},
                              "link": OBLIGATION_LINK},
        "weekly_points": {"head_name": "张伟", "week": "2026-W47", "week_start": "2026-11-16",
                          "week_end": "2026-11-22", "previous_week": "2026-W46", "half_year": "2026-H2",
                          "departments": [{"code": "medical_section", "name": "医政科", "total": 2,
                                           "previous_total": -1, "change": 3, "rank": 1, "ranked": 5,
                                           "policies": [{"id": "information-items",
                                                         "title": "信息报送与每周工作安排（积分）", "points": 2,
                                                         "previous": -1,
                                                         "counts": {"on_time": 2, "late": 0, "missing": 0},
                                                         "half_year_total": 63}]}],
                          "link": CALENDAR_LINK},
    }
    return contexts[event]


def headline(event: str, context: dict[str, Any]) -> str:
    """The user text every form of the message names: what it is about."""
    if "request" in context:
        return str(context["request"]["title"])
    if "obligation" in context:
        return str(context["obligation"]["title"])
    return {"delegated": lambda: context["from_name"],
            "weekly_points": lambda: context["departments"][0]["name"]}[event]()


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
        title = headline(event, context)
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
            ("request_filed", {}, "已提交：信息化硬件采购申请 #12，等待分管院领导审批（12月1日 17:00 前）"),
            ("request_filed", {"step": None, "waiting_on": ""}, "已提交：信息化硬件采购申请 #12，审批已结束"),
            ("step_reminder", {}, "提醒：请在 12月1日 17:00 前审批：信息化硬件采购申请 #12"),
            ("delegated", {}, "张主任 委托您代为审批（12月1日 – 12月7日）：信息化设备采购审批办法"),
            ("delegated", {"policies": []}, "张主任 委托您代为审批（12月1日 – 12月7日）"),
            ("obligation_opened", {}, "新报送任务：请在 12月3日 17:00 前报送：离职人员信息系统账号变更"),
            ("weekly_points", {}, "积分周报（2026-W47）：医政科 本周 +2 分，排名 1/5"),
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
            ("request_filed", {}, "Filed: 信息化硬件采购申请 #12, waiting for 分管院领导审批 (by 1 Dec 17:00)"),
            ("request_filed", {"step": None, "waiting_on": ""},
             "Filed: 信息化硬件采购申请 #12, approval already finished"),
            ("step_reminder", {}, "Reminder: please decide by 1 Dec 17:00: 信息化硬件采购申请 #12"),
            ("delegated", {}, "张主任 asks you to decide their approvals (1 Dec – 7 Dec): 信息化设备采购审批办法"),
            ("delegated", {"policies": []}, "张主任 asks you to decide their approvals (1 Dec – 7 Dec)"),
            ("obligation_opened", {}, "New report: please submit by 3 Dec 17:00: 离职人员信息系统账号变更"),
            ("weekly_points", {}, "Weekly points 2026-W47: 医政科 +2 (rank 1 of 5)"),
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
    @pytest.mark.parametrize("event", sorted(ITEM_EVENTS - UNDATED_EVENTS))
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


class TestNewEventBodies:
    @pytest.mark.parametrize(("lang", "waiting"), [
        ("zh-CN", "现等待 张主任、李院长 审批（分管院领导审批），审批期限：12月1日 17:00 前"),
        ("en", "waiting for 张主任、李院长 (分管院领导审批), to be decided by 1 Dec 17:00."),
    ])
    def test_filing_tells_the_requester_who_decides_next_and_by_when(self, lang: str, waiting: str) -> None:
        rendered = render("request_filed", representative_context("request_filed"), lang=lang)

        assert waiting in rendered.text
        assert "张主任、李院长" in rendered.html and "¥48,000.00" in rendered.text

    def test_a_filing_without_an_open_step_says_the_approval_has_finished(self) -> None:
        context = {**representative_context("request_filed"), "step": None, "waiting_on": ""}

        rendered = render("request_filed", context)

        assert "没有需要审批的环节，审批已结束。" in rendered.text and "审批期限" not in rendered.text

    def test_a_step_reminder_is_not_worded_as_a_new_assignment(self) -> None:
        reminder = render("step_reminder", representative_context("step_reminder"))
        assigned = render("step_assigned", representative_context("step_assigned"))

        assert "仍在等待您审批" in reminder.text and "审批期限临近" in reminder.html
        assert reminder.subject != assigned.subject and "仍在等待" not in assigned.text

    @pytest.mark.parametrize(("lang", "period"), [
        ("zh-CN", "自 12月1日 00:00 起至 12月8日 00:00 止代为审批以下事项"),
        ("en", "from 1 Dec 00:00 until 8 Dec 00:00, for: 信息化设备采购审批办法"),
    ])
    def test_a_delegation_states_its_exact_period_scope_and_reason(self, lang: str, period: str) -> None:
        rendered = render("delegated", representative_context("delegated"), lang=lang)

        assert period in rendered.text and "外出培训" in rendered.text and INBOX_LINK in rendered.text

    def test_a_delegation_without_policies_covers_every_approval(self) -> None:
        rendered = render("delegated", {**representative_context("delegated"), "policies": [], "reason": None})

        assert "代为审批其全部审批事项" in rendered.text and "委托原因" not in rendered.text

    def test_an_opened_obligation_names_the_event_that_opened_it(self) -> None:
        rendered = render("obligation_opened", representative_context("obligation_opened"))

        assert "人事科 赵敏 上报了事件「离职-2026-031」（发生于 11月26日 10:00）" in rendered.text
        assert "请在 12月3日 17:00 前报送「离职人员信息系统账号变更」" in rendered.text
        assert "离职-2026-031" in rendered.html and "ev:" not in rendered.text

    @pytest.mark.parametrize(("lang", "line"), [
        ("zh-CN", "- 信息报送与每周工作安排（积分）：本周 +2（按时 2、逾期 0、未报 0），上周 -1，半年累计 63 分"),
        ("en", "- 信息报送与每周工作安排（积分）: +2 (2 on time, 0 late, 0 missing), week before -1, "
               "half-year total 63"),
    ])
    def test_weekly_points_list_each_policy_with_both_weeks_and_the_half_year(self, lang: str, line: str) -> None:
        rendered = render("weekly_points", representative_context("weekly_points"), lang=lang)

        assert line in rendered.text
        assert "11月16日 – 11月22日" in rendered.text or "16 Nov – 22 Nov" in rendered.text
        assert ">+2</td>" in rendered.html and ">63</td>" in rendered.html

    def test_weekly_points_for_a_head_of_two_departments_name_both_in_the_subject(self) -> None:
        context = copy.deepcopy(representative_context("weekly_points"))
        context["departments"].append({**context["departments"][0], "name": "疾病预防控制科", "total": -1,
                                       "rank": 5})

        assert render("weekly_points", context).subject == \
            "积分周报（2026-W47）：医政科 本周 +2 分，排名 1/5；疾病预防控制科 本周 -1 分，排名 5/5"


class TestChatMarkdown:
    @pytest.mark.parametrize(("lang", "action"), [("zh-CN", "查看详情"), ("en", "Open")])
    @pytest.mark.parametrize("event", sorted(CHAT_EVENTS))
    def test_every_chat_event_has_a_short_markdown_form_ending_with_its_link(
            self, event: str, lang: str, action: str) -> None:
        context = representative_context(event)

        markdown = render(event, context, lang=lang).markdown

        lines = markdown.splitlines()
        assert 2 <= len(lines) <= 5, markdown
        assert lines[0].startswith("**") and lines[0].endswith("**")
        assert lines[-1] == f"[{action}]({context['link']})"
        assert headline(event, context) in markdown

    @pytest.mark.parametrize("event", sorted(EVENTS - CHAT_EVENTS))
    def test_digests_and_reports_have_no_chat_form(self, event: str) -> None:
        assert not (Path(notifications.email.__file__).parent / "templates" / f"{event}.zh.md.j2").exists()

    @pytest.mark.parametrize(("lang", "facts"), [("zh-CN", "申请人：信息中心 王芳，金额：¥48,000.00"),
                                                 ("en", "Requester: 王芳 (信息中心); 金额: ¥48,000.00")])
    def test_an_approval_shows_the_requester_and_the_amount_but_not_other_fields(self, lang: str, facts: str) -> None:
        markdown = render("step_assigned", representative_context("step_assigned"), lang=lang).markdown

        assert facts in markdown.splitlines()[1]
        assert "门诊叫号系统服务器" not in markdown

    def test_the_first_line_says_what_to_do_and_by_when(self) -> None:
        markdown = render("step_reminder", representative_context("step_reminder", provisional=True)).markdown

        assert markdown.splitlines()[0] == "**提醒：请在 12月1日 17:00 前审批（日期暂定）：信息化硬件采购申请 #12**"

    def test_a_title_with_markdown_characters_cannot_break_the_markup(self) -> None:
        context = copy.deepcopy(representative_context("step_assigned"))
        context["request"]["title"] = "采购*加急*_[点我](https://evil.example)_`x`\n第二行"

        markdown = render("step_assigned", context).markdown

        assert "采购\\*加急\\*\\_\\[点我\\](https://evil.example)\\_\\`x\\` 第二行" in markdown
        assert "](https://evil.example)" not in markdown.replace("\\]", "")
        assert len(markdown.splitlines()) == 4  # the line break in the title did not add a line

    @pytest.mark.parametrize(("value", "escaped"), [
        ("普通标题", "普通标题"),
        ("a*b*", "a\\*b\\*"),
        ("[x](y)", "\\[x\\](y)"),
        ("snake_case `code`", "snake\\_case \\`code\\`"),
        ("back\\slash", "back\\\\slash"),
        ("两行\r\n文字", "两行 文字"),
        (48000, "48000"),
    ])
    def test_md_filter_escapes_markdown_specials_and_joins_lines(self, value: object, escaped: str) -> None:
        assert markdown_escape(value) == escaped

    def test_plain_text_and_html_keep_the_title_unescaped_for_markdown(self) -> None:
        context = copy.deepcopy(representative_context("step_assigned"))
        context["request"]["title"] = "采购_加急_"

        rendered = render("step_assigned", context)

        assert "采购_加急_" in rendered.text and "采购_加急_" in rendered.html


class TestLocalDate:
    @pytest.mark.parametrize(("value", "lang", "shown"), [
        ("2026-12-07", "zh", "12月7日"),
        ("2026-12-07", "en", "7 Dec"),
        ("2026-12-07T23:30:00+08:00", "zh", "12月7日"),
        ("2026-12-07T23:30:00+00:00", "en", "7 Dec"),  # its own offset: not moved to the 8th
    ])
    def test_a_date_or_an_instants_date_in_its_own_offset(self, value: str, lang: str, shown: str) -> None:
        assert local_date(value, lang) == shown

    def test_an_instant_without_offset_is_refused(self) -> None:
        with pytest.raises(ValueError) as caught:
            local_date("2026-12-07T09:00:00")

        assert "offset" in str(caught.value)


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
