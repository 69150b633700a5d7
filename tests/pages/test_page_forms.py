"""The pages' forms over HTTP, as a browser posts them: the CSRF token is required, refusals come back as the
page with the reason in Chinese and the typed text kept, and every change redirects (303) with a notice."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select

from config import clock
from policies.recurrence import period_containing
from store.obligations import materialise_policy
from store.tables import ObligationRow
from tests.pages.test_pages_http import signed_in, text_of

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def token(client, path: str) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the signed-in session, as the page puts it in its forms."""
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]


def act(client, request: dict, verb: str, **fields) -> object:  # type: ignore[no-untyped-def]
    """Post one verb from the request page's forms, with the token unless `csrf_token` is given."""
    path = f"/requests/{request['id']}"
    data = {"csrf_token": token(client, path), "verb": verb, **fields}
    if verb in ("approve", "reject", "send_back", "transfer", "add_approver"):
        data.setdefault("step_id", str(request["steps"][0]["id"]))
    return client.post(f"{path}/act", data={k: v for k, v in data.items() if v is not None})


def state_of(live_server, request: dict) -> str:  # type: ignore[no-untyped-def]
    with live_server.client("huang.lei") as client:
        return client.get(f"/api/requests/{request['id']}").json()["state"]


class TestCsrf:
    @sqlite_only
    def test_a_form_without_the_sessions_token_is_refused_and_changes_nothing(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            step = str(request["steps"][0]["id"])
            missing = client.post(f"/requests/{request['id']}/act", data={"verb": "approve", "step_id": step})
            wrong = client.post(f"/requests/{request['id']}/act",
                                data={"verb": "approve", "step_id": step, "csrf_token": "forged"})
            bulk = client.post("/inbox/approve", data={"item": f"{request['id']}:{step}"})
        for answer in (missing, wrong, bulk):
            assert answer.status_code == 403
            assert answer.headers["content-type"].startswith("text/html")
            assert "操作没有执行" in text_of(answer.text) and "<script" not in answer.text
        assert state_of(live_server, request) == "pending"

    @sqlite_only
    def test_without_a_session_the_form_sends_the_browser_to_sign_in_and_back_to_the_page(self, live_server,
                                                                                          file_purchase):
        request = file_purchase("1200")
        with live_server.client(None) as client:
            answer = client.post(f"/requests/{request['id']}/act", data={"verb": "approve"})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next=%2Frequests%2F{request['id']}"


class TestStepVerbs:
    def test_approve_redirects_to_the_page_which_says_so(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            answer = act(client, request, "approve")
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/requests/{request['id']}?done=approve"
            page = text_of(client.get(answer.headers["location"]).text)
        assert "已批准。" in page and "审批结束：申请已批准" in page
        assert "刘洋 批准「综合管理部负责人审批」" in page
        assert state_of(live_server, request) == "approved"

    @sqlite_only
    def test_reject_needs_a_reason_in_chinese_and_nothing_changes(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            answer = act(client, request, "reject", reason="   ")
        assert answer.status_code == 422
        assert "驳回须填写理由。" in text_of(answer.text)
        assert re.search(r"<details open>\s*<summary>驳回</summary>", answer.text)  # the form stays open
        assert state_of(live_server, request) == "pending"

    def test_someone_deciding_first_gives_409_on_the_page_and_keeps_the_typed_reason(self, live_server,
                                                                                      file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            path = f"/requests/{request['id']}"
            csrf = token(client, path)  # the page is open, the reason is being typed …
            with live_server.client("liu.yang") as other:  # … while the approval is given elsewhere
                assert other.post(f"/api{path}/steps/{request['steps'][0]['id']}/decision",
                                  json={"verb": "approve"}).status_code == 200
            answer = client.post(f"{path}/act", data={"csrf_token": csrf, "verb": "reject", "reason": "预算<不足>",
                                                      "step_id": str(request["steps"][0]["id"])})
        assert answer.status_code == 409
        assert "刚刚已由他人处理" in text_of(answer.text)
        assert "预算&lt;不足&gt;</textarea>" in answer.text  # kept for copying, though the form is gone
        assert "已批准" in text_of(answer.text)
        assert state_of(live_server, request) == "approved"

    @sqlite_only
    def test_typed_reason_stays_in_its_field_after_a_refusal(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            answer = act(client, request, "send_back", reason="请补充报价单", target="nowhere")
        assert answer.status_code == 422
        assert "请选择退回到哪里。" in text_of(answer.text)
        assert "请补充报价单</textarea>" in answer.text

    @sqlite_only
    def test_send_back_to_the_requester_who_resubmits(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            page = client.get(f"/requests/{request['id']}").text
            assert '<option value="requester">申请人（黄磊）</option>' in page
            assert act(client, request, "send_back", reason="请补充报价单", target="requester").status_code == 303
        assert state_of(live_server, request) == "returned"
        with closing(signed_in(live_server, "huang.lei")) as client:
            page = text_of(client.get(f"/requests/{request['id']}").text)
            assert "重新提交" in page and "刘洋 将「综合管理部负责人审批」退回至申请人（理由：请补充报价单）" in page
            answer = act(client, request, "resubmit")
        assert answer.status_code == 303 and answer.headers["location"].endswith("?done=resubmit")
        assert state_of(live_server, request) == "pending"

    @sqlite_only
    def test_transfer_to_a_person_picked_from_the_list(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            page = client.get(f"/requests/{request['id']}").text
            assert '<option value="zheng.hao">郑浩 · 信息科 信息科科长</option>' in page
            assert 'value="huang.lei"' not in page  # the requester cannot be made an approver
            nobody = act(client, request, "transfer", person="")
            assert nobody.status_code == 422 and "请选择要转交的人员。" in text_of(nobody.text)
            assert act(client, request, "transfer", person="zheng.hao", reason="出差").status_code == 303
        with closing(signed_in(live_server, "zheng.hao")) as client:
            inbox = client.get("/inbox").text
        assert f'href="/requests/{request["id"]}"' in inbox

    @sqlite_only
    def test_add_approver_before_opens_a_step_for_the_added_person(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "liu.yang")) as client:
            page = client.get(f"/requests/{request['id']}").text
            assert "前加签" in page and "后加签" in page and "并行加签" not in page  # or签 step: no parallel
            answer = act(client, request, "add_approver", person="zhou.min", position="before")
            assert answer.status_code == 303
            page = text_of(client.get(answer.headers["location"]).text)
        assert "已加签。" in page and "综合管理部负责人审批（加签） 会签 待审批" in page
        assert "在「综合管理部负责人审批」前加签：周敏" in page

    @sqlite_only
    def test_delegate_sees_the_task_marked_and_approves_from_the_page(self, live_server, file_purchase):
        request = file_purchase("1200")
        now = pendulum.instance(clock.now())
        with live_server.client("liu.yang") as client:
            answer = client.post("/api/delegations", json={
                "to": "zheng.hao", "starts": now.subtract(hours=1).isoformat(), "ends": now.add(days=3).isoformat()})
            assert answer.status_code == 201, answer.text
        with closing(signed_in(live_server, "zheng.hao")) as client:
            inbox = text_of(client.get("/inbox").text)
            assert "代 刘洋" in inbox
            page = client.get(f"/requests/{request['id']}").text
            assert "转交" not in text_of(page)  # a delegate decides; transferring the place is the holder's
            assert act(client, request, "approve").status_code == 303
            page = text_of(client.get(f"/requests/{request['id']}").text)
        assert "郑浩 批准「综合管理部负责人审批」（代 刘洋 审批）" in page


class TestRequesterVerbs:
    @sqlite_only
    def test_requester_withdraws_before_any_decision(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "huang.lei")) as client:
            answer = act(client, request, "withdraw", reason="重复提交")
            assert answer.status_code == 303
            page = text_of(client.get(answer.headers["location"]).text)
        assert "申请已撤回。" in page and "黄磊 撤回申请（理由：重复提交）" in page
        assert state_of(live_server, request) == "withdrawn"

    @sqlite_only
    def test_after_a_decision_withdrawing_is_refused_in_words(self, live_server, file_purchase):
        request = file_purchase("60000")  # over 50000: the CFO, who adds 李明 after himself and approves
        with closing(signed_in(live_server, "zhao.weidong")) as client:
            assert act(client, request, "add_approver", person="li.ming", position="after").status_code == 303
            assert act(client, request, "approve").status_code == 303
        with closing(signed_in(live_server, "huang.lei")) as client:
            page = client.get(f"/requests/{request['id']}").text
            assert 'value="withdraw"' not in page
            answer = act(client, request, "withdraw")
        assert answer.status_code == 403
        assert "不能再撤回" in text_of(answer.text)

    @sqlite_only
    def test_comment_appears_in_the_timeline_and_empty_ones_are_refused(self, live_server, file_purchase):
        request = file_purchase("1200")
        with closing(signed_in(live_server, "huang.lei")) as client:
            empty = act(client, request, "comment", reason="")
            assert empty.status_code == 422 and "评论内容不能为空。" in text_of(empty.text)
            assert act(client, request, "comment", reason="报价单已补充").status_code == 303
            page = text_of(client.get(f"/requests/{request['id']}").text)
        assert "黄磊 评论：报价单已补充" in page


class TestBulkApprove:
    def test_each_ticked_task_is_approved_or_said_why_not(self, live_server, file_purchase):
        first, second, third = file_purchase("1200"), file_purchase("3000", items="打印机"), file_purchase("800")
        with live_server.client("liu.yang") as other:  # decided elsewhere before the button is pressed
            assert other.post(f"/api/requests/{third['id']}/steps/{third['steps'][0]['id']}/decision",
                              json={"verb": "approve"}).status_code == 200
        with closing(signed_in(live_server, "liu.yang")) as client:
            inbox = client.get("/inbox").text
            assert "待办 2 超时 0" in text_of(inbox) and "批量批准" in inbox
            items = [f"{r['id']}:{r['steps'][0]['id']}" for r in (first, second, third)]
            answer = client.post("/inbox/approve", data={"csrf_token": token(client, "/inbox"), "item": items})
            assert answer.status_code == 303
            assert answer.headers["location"].startswith(f"/inbox?approved={first['id']},{second['id']}&failed=")
            page = text_of(client.get(answer.headers["location"]).text)
            nothing = client.post("/inbox/approve", data={"csrf_token": token(client, "/inbox")})
            assert nothing.headers["location"] == "/inbox?empty=1"
        assert f"信息化硬件采购申请 #{first['id']} ：已批准" in page
        assert f"信息化硬件采购申请 #{third['id']} ： 未批准 ，该环节已由他人处理或已关闭" in page
        assert "暂无待办事项" in page
        assert [state_of(live_server, r) for r in (first, second)] == ["approved", "approved"]


# --- obligations ----------------------------------------------------------------------------------------

PROFILE = [ROOT / "policies" / "library" / "hospital",
           ROOT / "policies" / "library" / "hospital-statistics-office" / "report-signoff.yaml",
           ROOT / "tests" / "fixtures" / "reports" / "finance-reports.yaml"]


@pytest.fixture
def finance(settings, runtime):  # type: ignore[no-untyped-def]
    """finance-reports' obligations of this month (F-PLAIN, F-SEALED needing two files, F-REVIEWED): key → id."""

    async def make(months_ago: int = 0) -> dict[str, int]:
        version_id, loaded = runtime.registry.current("finance-reports")
        day = clock.now().in_timezone("Asia/Shanghai").subtract(months=months_ago).date()
        period = period_containing(day, "monthly")
        async with runtime.write() as session:
            await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=clock.now(),
                                     periods=[period])
            rows = (await session.execute(select(ObligationRow).where(
                ObligationRow.period_key == period.key))).scalars()
            return {r.obligation_key: r.id for r in rows}

    return make


class TestObligationForms:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"policy_paths": PROFILE})

    async def test_report_with_its_required_files_is_submitted_and_listed_with_download_links(self, live_server,
                                                                                             finance):
        ids = await finance()
        path = f"/obligations/{ids['F-SEALED']}"
        with closing(signed_in(live_server, "ma.chao")) as client:
            page = client.get(path).text
            assert 'enctype="multipart/form-data"' in page
            assert "盖章纸质报表（必需）" in text_of(page) and 'name="file.paper_copy_sealed"' in page
            csrf = token(client, path)
            missing = client.post(f"{path}/submit", data={"csrf_token": csrf, "note": "十月数据"},
                                  files={"file.data_sheet": ("数据.pdf", PDF, "application/pdf")})
            assert missing.status_code == 422
            assert "缺少必需的附件：盖章纸质报表。" in text_of(missing.text)
            assert "十月数据</textarea>" in missing.text
            answer = client.post(f"{path}/submit", data={"csrf_token": csrf, "note": "十月数据"},
                                 files=[("file.data_sheet", ("数据.pdf", PDF, "application/pdf")),
                                        ("file.paper_copy_sealed", ("盖章件.pdf", PDF, "application/pdf"))])
            assert answer.status_code == 303 and answer.headers["location"] == f"{path}?done=submitted"
            page = client.get(answer.headers["location"]).text
            links = re.findall(r'<a href="(/api/attachments/\d+/content)">([^<]+)</a>', page)
            download = client.get(links[0][0])
        assert "报送已提交。" in text_of(page)
        assert "原报 已接收 马超" in text_of(page) and "已报送" in text_of(page)
        assert sorted(name for _, name in links) == ["数据.pdf", "盖章件.pdf"]
        assert download.status_code == 200 and download.content == PDF
        assert "马超 提交原报（说明：十月数据）" in text_of(page)
        assert "提交修报" in text_of(page)  # the accepted report may be corrected

    @sqlite_only
    async def test_a_file_that_is_not_what_it_says_is_refused_and_nothing_is_kept(self, live_server, finance):
        ids = await finance()
        path = f"/obligations/{ids['F-PLAIN']}"
        with closing(signed_in(live_server, "ma.chao")) as client:
            answer = client.post(f"{path}/submit", data={"csrf_token": token(client, path)},
                                 files={"file": ("报表.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "application/pdf")})
            page = text_of(client.get(path).text)
        assert answer.status_code == 422
        assert "文件「报表.pdf」的扩展名或声明的类型与文件内容不符。请重新选择文件。" in text_of(answer.text)
        assert "尚未报送" in page

    @sqlite_only
    async def test_report_under_review_reads_under_review(self, live_server, finance):
        ids = await finance()
        path = f"/obligations/{ids['F-REVIEWED']}"
        with closing(signed_in(live_server, "ma.chao")) as client:
            csrf = token(client, path)
            bare = client.post(f"{path}/submit", data={"csrf_token": csrf})
            assert bare.status_code == 422 and "本报表须经审核，送审时请附上报表文件" in text_of(bare.text)
            answer = client.post(f"{path}/submit", data={"csrf_token": csrf},
                                 files={"file": ("统计月报.pdf", PDF, "application/pdf")})
            assert answer.status_code == 303, re.findall(r'role="alert"[^>]*>([^<]*)', answer.text)
            assert answer.headers["location"].endswith("?done=under_review")
            page = text_of(client.get(answer.headers["location"]).text)
            calendar = client.get("/calendar?state=under_review").text
        assert "报送已提交，正在审核。" in page and "状态 审核中" in page and "审核单 #" in page
        assert f'href="/obligations/{ids["F-REVIEWED"]}"' in calendar and "审核中" in text_of(calendar)

    async def test_statistician_marks_late_and_waives_with_a_reason(self, live_server, finance):
        ids = await finance()
        plain, sealed = f"/obligations/{ids['F-PLAIN']}", f"/obligations/{ids['F-SEALED']}"
        with closing(signed_in(live_server, "ma.chao")) as client:
            assert "标记逾期" not in text_of(client.get(plain).text)  # not the statistics office
        with closing(signed_in(live_server, "he.jing")) as client:
            csrf = token(client, plain)
            answer = client.post(f"{plain}/late", data={"csrf_token": csrf})
            assert answer.status_code == 303 and answer.headers["location"].endswith("?done=late")
            assert "状态 逾期" in text_of(client.get(plain).text)
            again = client.post(f"{plain}/late", data={"csrf_token": csrf})
            assert again.status_code == 409 and "状态刚刚已经变化" in text_of(again.text)
            no_reason = client.post(f"{sealed}/waive", data={"csrf_token": csrf, "reason": " "})
            assert no_reason.status_code == 422 and "豁免须填写理由。" in text_of(no_reason.text)
            refused = client.post(f"{sealed}/waive", data={"reason": "本月停报"})
            assert refused.status_code == 403
            answer = client.post(f"{sealed}/waive", data={"csrf_token": csrf, "reason": "本月停报"})
            assert answer.status_code == 303 and answer.headers["location"].endswith("?done=waived")
            page = text_of(client.get(answer.headers["location"]).text)
            calendar = client.get("/calendar?state=waived").text
        assert "已豁免本期报送。" in page and "豁免理由：本月停报" in page
        assert "何静 豁免本期报送（理由：本月停报）" in page and "何静 手工标记为逾期" not in page
        assert re.findall(r'<li class="waived">\s*<a href="/obligations/(\d+)"', calendar) == [str(ids["F-SEALED"])]
        assert "已豁免" in text_of(calendar)
