"""The read-only pages over HTTP: what each person sees, what they may not see, and escaping."""

from __future__ import annotations

import re
from contextlib import closing
from urllib.parse import quote

import httpx
import pendulum
import pytest
from sqlalchemy import update

from store.tables import ObligationRow

# Rendering alone is the same on both databases; the tests whose queries differ (deadlines compared with
# now, visibility, filters, the audit trail's subject ids) run on SQLite and PostgreSQL.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHANGHAI = "Asia/Shanghai"
FILED_BEFORE_NATIONAL_DAY = pendulum.datetime(2026, 9, 30, 16, 0, tz=SHANGHAI)  # due Thu 2026-10-08 16:00
PAGES = ["/inbox", "/calendar", "/requests/1", "/obligations/1"]


def text_of(html: str) -> str:
    """The page's words without tags, whitespace collapsed: what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def signed_in(server, user: str) -> httpx.Client:  # type: ignore[no-untyped-def]
    """A client that signed in through the login form, as a browser does (the pages take no HTTP Basic
    prompt any more); it holds the session cookie."""
    client = httpx.Client(base_url=server.url, timeout=30)
    answer = client.post("/login", data={"username": user, "password": "duly-demo", "next": "/inbox"})
    assert answer.status_code == 303 and answer.headers["location"] == "/inbox", answer.text[:300]
    return client


def get_page(server, user: str, path: str, status: int = 200) -> str:
    with closing(signed_in(server, user)) as client:
        answer = client.get(path)
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


class TestRequestPage:
    @sqlite_only
    def test_requester_sees_fields_with_labels_and_money_in_yuan(self, live_server, file_purchase):
        request = file_purchase("48000")
        page = text_of(get_page(live_server, "huang.lei", f"/requests/{request['id']}"))
        assert "信息化硬件采购申请" in page
        assert "申请人 黄磊" in page and "所在部门 信息科" in page
        assert "采购内容 笔记本电脑 10台" in page
        assert "单笔合同金额（元） ¥48,000.00" in page
        assert "审批中" in page

    @sqlite_only
    def test_open_step_shows_title_mode_state_assignee_and_due_time(self, live_server, file_purchase):
        request = file_purchase("48000")
        due = pendulum.parse(request["steps"][0]["due_at"]).in_timezone(SHANGHAI)
        page = text_of(get_page(live_server, "liu.yang", f"/requests/{request['id']}"))
        assert "综合管理部负责人审批 或签 待审批" in page
        assert "审批人： 刘洋" in page
        assert f"时限： {due.month}月{due.day}日 {due:%H:%M}" in page
        assert "已超时" not in page and "暂定" not in page
        # the approver gets the step's forms; the requester gets none of them, but may withdraw
        html = get_page(live_server, "liu.yang", f"/requests/{request['id']}")
        assert f'action="/requests/{request["id"]}/act"' in html
        assert f'name="step_id" value="{request["steps"][0]["id"]}"' in html
        assert "批准 驳回" in page and "撤回" not in page
        requester = get_page(live_server, "huang.lei", f"/requests/{request['id']}")
        assert 'name="step_id"' not in requester and 'value="withdraw"' in requester

    @sqlite_only
    def test_timeline_tells_filing_and_assignment_in_words(self, live_server, file_purchase):
        request = file_purchase("48000")
        page = text_of(get_page(live_server, "huang.lei", f"/requests/{request['id']}"))
        assert "黄磊 提交申请" in page
        assert "系统 「综合管理部负责人审批」分配给 刘洋，时限" in page

    @sqlite_only
    def test_rejection_shows_state_and_reason(self, live_server, file_purchase):
        request = file_purchase("1200")
        with live_server.client("liu.yang") as client:
            answer = client.post(f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision",
                                 json={"verb": "reject", "reason": "预算已用完"})
        assert answer.status_code == 200, answer.text
        page = text_of(get_page(live_server, "huang.lei", f"/requests/{request['id']}"))
        assert "综合管理部负责人审批 或签 已驳回" in page
        assert "刘洋 驳回「综合管理部负责人审批」（理由：预算已用完）" in page
        assert "审批结束：申请已驳回" in page

    @sqlite_only
    def test_approval_shows_approver_tick_and_outcome(self, live_server, file_purchase):
        request = file_purchase("1200")
        with live_server.client("liu.yang") as client:
            client.post(f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision",
                        json={"verb": "approve"})
        html = get_page(live_server, "huang.lei", f"/requests/{request['id']}")
        assert 'title="已批准"' in html
        page = text_of(html)
        assert "刘洋 批准「综合管理部负责人审批」" in page and "审批结束：申请已批准" in page

    async def test_unanswered_step_past_its_deadline_reads_overdue_and_escalated(self, live_server,
                                                                                 file_purchase_at):
        request_id = await file_purchase_at(FILED_BEFORE_NATIONAL_DAY)
        page = text_of(get_page(live_server, "huang.lei", f"/requests/{request_id}"))
        assert "待审批 已超时" in page
        assert "时限： 10月8日 16:00" in page
        assert "督办：「综合管理部负责人审批」已超时，通知 李明（等待 刘洋 审批）" in page
        # the leader in charge was escalated to, so he may read it now
        assert "督办" in text_of(get_page(live_server, "li.ming", f"/requests/{request_id}"))

    @sqlite_only
    async def test_deadline_in_a_year_without_published_holidays_is_marked_provisional(self, live_server,
                                                                                       file_purchase_at):
        request_id = await file_purchase_at(pendulum.datetime(2099, 3, 4, 10, tz=SHANGHAI), sweep=False)
        page = text_of(get_page(live_server, "huang.lei", f"/requests/{request_id}"))
        assert "暂定" in page and "已超时" not in page

    @sqlite_only
    def test_someone_not_involved_gets_404_page(self, live_server, file_purchase):
        request = file_purchase("1200")
        page = get_page(live_server, "lin.fang", f"/requests/{request['id']}", status=404)
        assert "不存在，或您无权查看" in page
        assert "笔记本电脑" not in page
        get_page(live_server, "lin.fang", "/requests/999999", status=404)

    @sqlite_only
    def test_form_values_are_escaped(self, live_server, file_purchase):
        request = file_purchase("100", items='<script>alert("x")</script> & <b>粗体</b>')
        html = get_page(live_server, "huang.lei", f"/requests/{request['id']}")
        assert "<script>" not in html and "<b>粗体" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;粗体&lt;/b&gt;" in html

    @sqlite_only
    def test_rejection_reason_is_escaped(self, live_server, file_purchase):
        request = file_purchase("100")
        with live_server.client("liu.yang") as client:
            client.post(f"/api/requests/{request['id']}/steps/{request['steps'][0]['id']}/decision",
                        json={"verb": "reject", "reason": "<img src=x onerror=alert(1)>"})
        html = get_page(live_server, "huang.lei", f"/requests/{request['id']}")
        assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


LEADERS_REVIEW = """\
kind: approval
id: leaders-review
title: 院领导审议
form:
  subject: {type: text, label: 事项}
steps:
  - id: leaders
    title: 院领导审议
    approvers: {role: vice_president}
    mode: quorum
    quorum: 2
    sla: 3 working days
"""


class TestQuorumStep:
    @pytest.fixture
    def settings(self, settings, tmp_path):
        """The demo system running one policy whose step needs a number of approvals (mode: quorum)."""
        folder = tmp_path / "quorum-policies"
        folder.mkdir()
        (folder / "leaders-review.yaml").write_text(LEADERS_REVIEW, encoding="utf-8")
        return settings.model_copy(update={"policy_paths": [folder]})

    @sqlite_only
    def test_quorum_step_reads_as_a_number_of_approvals_not_as_all_of(self, live_server):
        with live_server.client("huang.lei") as client:
            answer = client.post("/api/requests", json={"policy": "leaders-review", "form": {"subject": "机房改造"}})
        assert answer.status_code == 201, answer.text
        html = get_page(live_server, "huang.lei", f"/requests/{answer.json()['id']}")
        assert "院领导审议 按人数签 待审批" in text_of(html)
        assert 'title="达到规定人数的审批人批准即通过"' in html
        assert "全部审批人批准才通过" not in html and "会签" not in text_of(html)


class TestInbox:
    def test_approver_sees_the_same_tasks_as_the_api_linking_to_request_pages(self, live_server, file_purchase):
        first, second = file_purchase("48000"), file_purchase("3000", items="打印机")
        with live_server.client("liu.yang") as client:
            api_ids = [t["request_id"] for t in client.get("/api/tasks").json()["items"]]
        html = get_page(live_server, "liu.yang", "/inbox")
        assert [int(i) for i in re.findall(r'href="/requests/(\d+)"', html)] == api_ids
        assert set(api_ids) == {first["id"], second["id"]}
        page = text_of(html)
        assert "共 2 项待审批" in page and "申请人： 黄磊" in page and "环节： 综合管理部负责人审批" in page

    async def test_overdue_task_is_highlighted(self, live_server, file_purchase_at):
        request_id = await file_purchase_at(FILED_BEFORE_NATIONAL_DAY)
        html = get_page(live_server, "liu.yang", "/inbox")
        assert re.search(rf'<li class="overdue">\s*<div class="task">.*?<a href="/requests/{request_id}">', html,
                         re.DOTALL)
        assert "其中 1 项已超时" in text_of(html) and "超时 1" in text_of(html)

    @sqlite_only
    def test_requester_has_nothing_to_do(self, live_server, file_purchase):
        file_purchase("48000")
        assert "暂无待办事项" in text_of(get_page(live_server, "huang.lei", "/inbox"))


class TestObligationPages:
    async def test_statistician_sees_an_obligation_with_policy_period_department_and_state(
            self, live_server, materialise, periods):
        ids = await materialise(periods["open"])
        page = text_of(get_page(live_server, "he.jing", f"/obligations/{ids[periods['open'].key][0]}"))
        year, month = periods["open"].key.split("-")
        assert "医院工作报表（门诊部分）" in page
        assert "依据制度 卫生统计月报（市卫生统计报表制度）" in page
        assert f"报送期 {year}年{int(month)}月" in page
        assert "责任部门 绩效办" in page
        assert "非工作日调整 不调整" in page
        assert "状态 待报送" in page

    async def test_obligation_past_due_reads_late_before_the_sweep_marks_it(self, live_server, materialise, periods):
        ids = await materialise(periods["late"])
        page = text_of(get_page(live_server, "he.jing", f"/obligations/{ids[periods['late'].key][0]}"))
        assert "状态 逾期" in page and "已超过报送时限" in page

    @sqlite_only
    async def test_obligation_in_unpublished_year_is_provisional(self, live_server, materialise, periods):
        ids = await materialise(periods["provisional"])
        page = text_of(get_page(live_server, "he.jing", f"/obligations/{ids['2099-01'][0]}"))
        assert "暂定" in page and "2099年2月15日 23:59" in page

    async def test_other_departments_get_404_and_leaders_see_all(self, live_server, materialise, periods):
        ids = await materialise(periods["open"])
        path = f"/obligations/{ids[periods['open'].key][0]}"
        assert "无权查看" in get_page(live_server, "lin.fang", path, status=404)
        get_page(live_server, "feng.xue", path)  # head of the owner department, no special role
        get_page(live_server, "li.ming", path)  # vice president


class TestCalendar:
    async def test_groups_by_due_date_with_state_badges(self, live_server, materialise, periods):
        await materialise(periods["late"], periods["open"], periods["provisional"])
        html = get_page(live_server, "he.jing", "/calendar")
        page = text_of(html)
        headings = re.findall(r'<h2 class="day">(.*?) <small>(\d+) 项</small>', html)
        assert [n for _, n in headings] == ["13", "13", "13"]
        assert headings[-1][0] == "2099年2月15日 星期日"
        assert page.count("逾期") >= 13 and page.count("待报送") >= 26
        assert "暂定" in page
        assert len(re.findall(r'href="/obligations/\d+"', html)) == 39

    async def test_period_and_state_filters(self, live_server, materialise, periods):
        await materialise(periods["late"], periods["open"])
        late = periods["late"].key
        html = get_page(live_server, "he.jing", f"/calendar?period={late}")
        assert len(re.findall(r'href="/obligations/\d+"', html)) == 13
        html = get_page(live_server, "he.jing", "/calendar?state=late")
        assert len(re.findall(r'<li class="late">', html)) == 13
        assert '<li class="open">' not in html
        html = get_page(live_server, "he.jing", f"/calendar?period={late}&state=open")
        assert "没有符合条件的报送事项" in html

    async def test_people_see_only_their_departments_obligations(self, live_server, materialise, periods):
        await materialise(periods["open"])
        assert "没有符合条件的报送事项" in get_page(live_server, "lin.fang", "/calendar")
        assert len(re.findall(r'href="/obligations/\d+"', get_page(live_server, "feng.xue", "/calendar"))) == 13

    @sqlite_only
    async def test_submitted_report_reads_submitted_with_its_time(self, live_server, runtime, materialise, periods):
        """No API submits a report yet, so the row is changed as a submission would change it."""
        ids = await materialise(periods["late"])
        submitted = ids[periods["late"].key][0]
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(ObligationRow).where(ObligationRow.id == submitted).values(
                state="submitted", submitted_at=pendulum.datetime(2026, 10, 12, 9, 30, tz=SHANGHAI)))
        html = get_page(live_server, "he.jing", "/calendar?state=submitted")
        assert re.findall(r'<li class="(\w+)">\s*<a href="/obligations/(\d+)"', html) == [("submitted", str(submitted))]
        page = text_of(get_page(live_server, "he.jing", f"/obligations/{submitted}"))
        assert "状态 已报送 报送于 10月12日 09:30" in page

    @sqlite_only
    def test_bad_filters_are_ignored_with_a_notice_and_empty_ones_silently(self, live_server):
        page = text_of(get_page(live_server, "he.jing", "/calendar?period=2026-13&state=gone"))
        assert "格式不对" in page and "无法识别" in page
        page = text_of(get_page(live_server, "he.jing", "/calendar?period=&state="))  # the form sent empty
        assert "格式不对" not in page and "无法识别" not in page


@sqlite_only
def test_every_page_sends_a_browser_without_a_session_to_the_login_page(live_server):
    with live_server.client(None) as client:
        answers = {path: client.get(path) for path in PAGES}
    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(PAGES, 303)
    assert {path: a.headers["location"] for path, a in answers.items()} == {
        path: "/login?next=" + quote(path, safe="") for path in PAGES}
    assert all("www-authenticate" not in a.headers for a in answers.values())  # no browser Basic prompt


@sqlite_only
def test_scripts_may_still_read_a_page_with_http_basic(live_server):
    with live_server.client("liu.yang") as client:
        answer = client.get("/inbox")
    assert answer.status_code == 200 and "我的待办" in answer.text
    assert "退出登录" not in answer.text  # nothing to sign out of


@sqlite_only
def test_pages_run_no_scripts_are_not_cached_and_home_links_to_them(live_server):
    with closing(signed_in(live_server, "liu.yang")) as client:
        answer = client.get("/inbox")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "script-src" not in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "private, no-store"
    assert '<html lang="zh-CN">' in answer.text and "<script" not in answer.text
    with live_server.client(None) as client:
        home = client.get("/").text
    assert 'href="/inbox"' in home and 'href="/calendar"' in home
