"""The chat-bot channel against a real HTTP receiver on 127.0.0.1 that checks signatures like the vendors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote_plus

import pendulum
import pytest

from notifications.catcher import free_port
from notifications.chat import (
    ChatHook,
    ChatMessage,
    build_request,
    dingtalk_sign,
    send_chat_batch,
    validate_hook,
)
from notifications.smtp import SendOutcome
from tests.notifications.chat_receiver import ChatReceiver, ReceiverServer, Reply

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 28, 9, 30, 15, 250000, tzinfo=BEIJING)
NOW_MS = 1795829415250  # NOW in milliseconds since the epoch, worked out independently
TOKEN = "6f1c2e9a4b7d8e0f1a2b3c4d5e6f7a8b"
SECRET = "SEC9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d"
LINK = "https://duly.example.cn/requests/12"
MESSAGE = ChatMessage(
    title="请审批：信息化硬件采购申请 #12（12月1日 17:00 前）",
    markdown="### 请审批：信息化硬件采购申请 #12\n信息中心 王芳 提交的申请需要您审批。",
    link=LINK,
)


@pytest.fixture
def receiver(receiver_server: ReceiverServer) -> ChatReceiver:
    """The vendors' servers, with a clock at NOW, no signing robots and no scripted answers."""
    return receiver_server.fresh(NOW)


def hook_on(receiver: ChatReceiver, kind: str, secret: str | None = None, token: str = TOKEN) -> ChatHook:
    return validate_hook(kind, receiver.url(kind, token), secret)


async def send(hook: ChatHook, message: ChatMessage = MESSAGE, timeout_seconds: float = 5.0) -> SendOutcome:
    [outcome] = await send_chat_batch([(hook, message)], now=NOW, timeout_seconds=timeout_seconds)
    return outcome


def test_now_in_milliseconds_matches_the_constant() -> None:
    assert NOW.timestamp() * 1000 == pytest.approx(NOW_MS)


class TestPayloads:
    async def test_wecom_gets_markdown_ending_with_a_link_line(self, receiver: ChatReceiver) -> None:
        outcome = await send(hook_on(receiver, "wecom"))

        assert outcome.ok, outcome.detail
        [request] = receiver.received
        assert (request.vendor, request.token) == ("wecom", TOKEN)
        assert request.body == {
            "msgtype": "markdown",
            "markdown": {"content": f"{MESSAGE.markdown}\n\n[→ {LINK}]({LINK})"},
        }

    async def test_wecom_markdown_that_already_holds_the_link_is_sent_as_is(self, receiver: ChatReceiver) -> None:
        message = ChatMessage(title="t", markdown=f"**请审批**\n[打开办理]({LINK})", link=LINK)

        await send(hook_on(receiver, "wecom"), message)

        assert receiver.received[0].body["markdown"]["content"] == f"**请审批**\n[打开办理]({LINK})"

    async def test_wecom_without_markdown_sends_the_title_in_bold_and_the_link(self, receiver: ChatReceiver) -> None:
        await send(hook_on(receiver, "wecom"), ChatMessage(title="请审批：#12", markdown="", link=LINK))

        assert receiver.received[0].body["markdown"]["content"] == f"**请审批：#12**\n\n[→ {LINK}]({LINK})"

    async def test_dingtalk_gets_an_action_card_with_a_button_to_the_link(self, receiver: ChatReceiver) -> None:
        outcome = await send(hook_on(receiver, "dingtalk"))

        assert outcome.ok, outcome.detail
        [request] = receiver.received
        assert request.query == {"access_token": TOKEN}  # no signing without a secret
        assert request.body == {
            "msgtype": "actionCard",
            "actionCard": {
                "title": MESSAGE.title,
                # DingTalk joins lines a single line break separates: each line is its own paragraph
                "text": "### 请审批：信息化硬件采购申请 #12\n\n信息中心 王芳 提交的申请需要您审批。",
                "singleTitle": "查看详情",
                "singleURL": LINK,
            },
        }

    async def test_dingtalk_without_markdown_shows_the_title_as_text(self, receiver: ChatReceiver) -> None:
        await send(hook_on(receiver, "dingtalk"), ChatMessage(title="请审批：#12", markdown="", link=LINK))

        assert receiver.received[0].body["actionCard"]["text"] == "请审批：#12"

    async def test_feishu_gets_an_interactive_card_with_a_primary_button(self, receiver: ChatReceiver) -> None:
        outcome = await send(hook_on(receiver, "feishu"))

        assert outcome.ok, outcome.detail
        [request] = receiver.received
        assert (request.vendor, request.token) == ("feishu", TOKEN)
        assert request.body == {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": MESSAGE.title}},
                "elements": [
                    {"tag": "markdown", "content": MESSAGE.markdown},
                    {
                        "tag": "action",
                        "actions": [
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": "查看详情"},
                                "url": LINK,
                                "type": "primary",
                            }
                        ],
                    },
                ],
            },
        }

    async def test_feishu_without_markdown_has_only_the_header_and_the_button(self, receiver: ChatReceiver) -> None:
        await send(hook_on(receiver, "feishu"), ChatMessage(title="请审批：#12", markdown="", link=LINK))

        card = receiver.received[0].body["card"]
        assert card["header"]["title"]["content"] == "请审批：#12"
        assert [element["tag"] for element in card["elements"]] == ["action"]

    def test_button_text_can_be_chosen(self) -> None:
        hook = validate_hook("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN, None)

        _, body = build_request(hook, MESSAGE, now=NOW, button="Open")

        assert body["actionCard"]["singleTitle"] == "Open"

    async def test_batch_goes_out_in_order_over_one_connection(self, receiver: ChatReceiver) -> None:
        hooks = [hook_on(receiver, kind, token=f"{kind}-robot-token-0001") for kind in ("wecom", "dingtalk", "feishu")]

        outcomes = await send_chat_batch([(hook, MESSAGE) for hook in hooks], now=NOW, timeout_seconds=5)

        assert [outcome.ok for outcome in outcomes] == [True, True, True]
        assert [request.vendor for request in receiver.received] == ["wecom", "dingtalk", "feishu"]
        assert len({request.peer_port for request in receiver.received}) == 1

    async def test_empty_batch_sends_nothing(self) -> None:
        assert await send_chat_batch([], now=NOW, timeout_seconds=1) == []


class TestSignatures:
    def test_dingtalk_sign_matches_a_published_test_vector(self) -> None:
        # from the dingding crate's signature test (docs.rs/crate/dingding, src/signature.rs)
        expected = "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
        assert quote_plus(dingtalk_sign("secret", 1700000000000)) == expected

    async def test_dingtalk_signature_is_accepted_by_a_verifying_server(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)

        outcome = await send(hook_on(receiver, "dingtalk", SECRET))

        assert outcome.ok, outcome.detail
        [request] = receiver.received
        assert request.signature_checked and request.signature_problem == ""
        assert request.query["access_token"] == TOKEN
        assert request.query["timestamp"] == str(NOW_MS)  # from `now`, in milliseconds

    def test_a_pendulum_instant_signs_the_same_as_a_datetime(self) -> None:
        # the flows pass pendulum instants; `pendulum - datetime` is an Interval that once broke the timestamp
        hook = ChatHook(kind="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t", secret=SECRET)
        message = ChatMessage(title="t", markdown="m", link="https://duly.example/x")
        assert build_request(hook, message, now=pendulum.instance(NOW)) == build_request(hook, message, now=NOW)
        assert f"timestamp={NOW_MS}&" in build_request(hook, message, now=pendulum.instance(NOW))[0]

    async def test_dingtalk_wrong_secret_is_refused_and_permanent(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)

        outcome = await send(hook_on(receiver, "dingtalk", "SEC" + "0" * 64))

        assert receiver.received[0].signature_problem == "sign does not match"
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert "310000" in outcome.detail
        assert "check the secret, keyword or IP allow-list" in outcome.detail

    async def test_dingtalk_without_the_secret_is_refused_by_a_signing_robot(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)

        outcome = await send(hook_on(receiver, "dingtalk"))

        assert receiver.received[0].signature_problem == "no timestamp or sign in the query"
        assert outcome.permanent and "310000" in outcome.detail

    async def test_feishu_signature_is_accepted_by_a_verifying_server(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)

        outcome = await send(hook_on(receiver, "feishu", SECRET))

        assert outcome.ok, outcome.detail
        [request] = receiver.received
        assert request.signature_checked and request.signature_problem == ""
        assert request.body["timestamp"] == str(NOW_MS // 1000)  # from `now`, in seconds
        assert request.body["msg_type"] == "interactive"

    async def test_feishu_wrong_secret_is_refused_and_permanent(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)

        outcome = await send(hook_on(receiver, "feishu", "another-secret-entirely"))

        assert receiver.received[0].signature_problem == "sign does not match"
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert "19021" in outcome.detail and "check the secret and the server clock" in outcome.detail

    async def test_feishu_signature_two_hours_off_the_server_clock_is_refused(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)
        receiver.clock = NOW + timedelta(hours=2)

        outcome = await send(hook_on(receiver, "feishu", SECRET))

        assert "more than an hour" in receiver.received[0].signature_problem
        assert outcome.permanent and "server clock" in outcome.detail

    async def test_signature_within_the_hour_of_the_server_clock_is_accepted(self, receiver: ChatReceiver) -> None:
        receiver.require_signature(TOKEN, SECRET)
        receiver.clock = NOW - timedelta(minutes=50)

        outcome = await send(hook_on(receiver, "dingtalk", SECRET))

        assert outcome.ok, outcome.detail

    def test_the_two_vendors_put_key_and_message_in_opposite_order(self) -> None:
        """Feishu's key is "{timestamp}\\n{secret}" with an empty message: DingTalk's algorithm would not pass."""
        feishu_hook = validate_hook("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/" + TOKEN, SECRET)
        seconds = NOW_MS // 1000

        _, body = build_request(feishu_hook, MESSAGE, now=NOW)

        feishu = hmac.new(f"{seconds}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
        dingtalk_style = hmac.new(SECRET.encode(), f"{seconds}\n{SECRET}".encode(), hashlib.sha256).digest()
        assert body["sign"] == base64.b64encode(feishu).decode()
        assert body["sign"] != base64.b64encode(dingtalk_style).decode()

    def test_naive_now_is_refused(self) -> None:
        hook = validate_hook("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/" + TOKEN, SECRET)

        with pytest.raises(ValueError) as caught:
            build_request(hook, MESSAGE, now=datetime(2026, 11, 28, 9, 30))

        assert "timezone-aware" in str(caught.value)


class TestWeComLength:
    async def test_long_markdown_is_cut_to_4096_bytes_at_a_line_end_and_keeps_the_link(
        self, receiver: ChatReceiver
    ) -> None:
        lines = [f"{n:03d}. 信息中心 王芳 提交的申请需要您审批，请在截止前办理。" for n in range(200)]
        message = ChatMessage(title="t", markdown="\n".join(lines) + f"\n[打开办理]({LINK})", link=LINK)

        outcome = await send(hook_on(receiver, "wecom"), message)

        assert outcome.ok, outcome.detail
        content = receiver.received[0].body["markdown"]["content"]
        assert len(content.encode()) <= 4096
        assert content.endswith(f"\n…\n\n[→ {LINK}]({LINK})")
        kept = content.split("\n…\n")[0].split("\n")
        assert kept == lines[: len(kept)]  # whole lines only
        assert len(content.encode()) > 4096 - len(lines[0].encode()) - 40  # and no more cut than needed

    async def test_a_single_long_line_is_cut_between_characters(self, receiver: ChatReceiver) -> None:
        message = ChatMessage(title="t", markdown="审" * 3000, link=LINK)  # 9000 bytes, no line break

        await send(hook_on(receiver, "wecom"), message)

        content = receiver.received[0].body["markdown"]["content"]
        assert 4090 <= len(content.encode()) <= 4096
        assert content.startswith("审" * 1300) and content.endswith(f"[→ {LINK}]({LINK})")


class TestClassification:
    @pytest.mark.parametrize(
        ("kind", "reply", "permanent", "words"),
        [
            ("wecom", Reply(body={"errcode": 45009, "errmsg": "api freq out of limit"}), False, "45009"),
            ("wecom", Reply(body={"errcode": -1, "errmsg": "system busy"}), False, "system busy"),
            ("wecom", Reply(body={"errcode": 93000, "errmsg": "invalid webhook url"}), True, "copy the webhook URL"),
            ("dingtalk", Reply(body={"errcode": 130101, "errmsg": "send too fast"}), False, "130101"),
            ("dingtalk", Reply(body={"errcode": -1, "errmsg": "系统繁忙"}), False, "系统繁忙"),
            (
                "dingtalk",
                Reply(body={"errcode": 310000, "errmsg": "keywords not in content"}),
                True,
                "check the secret, keyword or IP allow-list",
            ),
            ("dingtalk", Reply(body={"errcode": 300001, "errmsg": "token is not exist"}), True, "300001"),
            ("feishu", Reply(body={"code": 9499, "msg": "too many request"}), False, "9499"),
            ("feishu", Reply(body={"code": 11232, "msg": "frequency limited"}), False, "11232"),
            ("feishu", Reply(status=400, body={"code": 9499, "msg": "too many request"}), False, "HTTP 400"),
            ("feishu", Reply(body={"code": 19021, "msg": "sign match fail"}), True, "server clock"),
            ("feishu", Reply(body={"code": 19001, "msg": "param invalid"}), True, "19001 param invalid"),
            ("wecom", Reply(status=500, body="internal error"), False, "HTTP 500"),
            ("dingtalk", Reply(status=502, body="bad gateway"), False, "HTTP 502"),
            ("feishu", Reply(status=429, body="slow down"), False, "HTTP 429"),
            ("wecom", Reply(status=404, body="not found"), True, "HTTP 404"),
            ("dingtalk", Reply(status=403, body={"message": "forbidden"}), True, "HTTP 403"),
            ("feishu", Reply(body="<html>gateway login page</html>"), False, "<html>gateway login page</html>"),
            ("wecom", Reply(body={"unexpected": True}), False, "not a WeCom"),
        ],
        ids=lambda value: str(value.body if isinstance(value, Reply) else value)[:40],
    )
    async def test_answer_is_classified(
        self, receiver: ChatReceiver, kind: str, reply: Reply, permanent: bool, words: str
    ) -> None:
        receiver.reply(reply)

        outcome = await send(hook_on(receiver, kind))

        assert (outcome.ok, outcome.permanent) == (False, permanent), outcome.detail
        assert words in outcome.detail

    async def test_feishu_success_with_only_status_code_is_ok(self, receiver: ChatReceiver) -> None:
        receiver.reply(Reply(body={"StatusCode": 0, "StatusMessage": "success"}))

        outcome = await send(hook_on(receiver, "feishu"))

        assert outcome.ok, outcome.detail

    async def test_non_json_answer_shows_only_its_first_200_characters(self, receiver: ChatReceiver) -> None:
        receiver.reply(Reply(body="x" * 200 + "TAIL" * 100))

        outcome = await send(hook_on(receiver, "dingtalk"))

        assert not outcome.ok and not outcome.permanent
        assert "x" * 200 + "…" in outcome.detail and "TAIL" not in outcome.detail

    async def test_connection_refused_is_temporary(self) -> None:
        hook = validate_hook("wecom", f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={TOKEN}", None)

        outcome = await send(hook)

        assert (outcome.ok, outcome.permanent) == (False, False)
        assert "cannot connect" in outcome.detail

    async def test_slow_receiver_times_out_as_temporary_within_the_timeout(self, receiver: ChatReceiver) -> None:
        receiver.reply(Reply(delay=5))
        started = time.monotonic()

        outcome = await send(hook_on(receiver, "feishu"), timeout_seconds=0.4)

        elapsed = time.monotonic() - started
        assert (outcome.ok, outcome.permanent) == (False, False)
        assert "no answer within 0.4 s" in outcome.detail
        assert 0.3 < elapsed < 1.5

    async def test_batch_goes_on_after_a_timeout(self, receiver: ChatReceiver) -> None:
        receiver.reply(Reply(delay=5))
        hook = hook_on(receiver, "dingtalk")

        outcomes = await send_chat_batch([(hook, MESSAGE), (hook, MESSAGE)], now=NOW, timeout_seconds=0.4)

        assert [(outcome.ok, outcome.permanent) for outcome in outcomes] == [(False, False), (True, False)]
        assert len(receiver.received) == 2


class TestSecretsStayOut:
    async def test_details_mask_the_key_token_secret_and_signature(self, receiver: ChatReceiver) -> None:
        """Even when the answer echoes them, as a misconfigured relay might."""
        sign = base64.b64encode(
            hmac.new(SECRET.encode(), f"{NOW_MS}\n{SECRET}".encode(), hashlib.sha256).digest()
        ).decode()
        receiver.reply(Reply(status=400, body=f"bad request: token={TOKEN} secret={SECRET} sign={quote_plus(sign)}"))

        outcome = await send(hook_on(receiver, "dingtalk", SECRET))

        assert outcome.permanent
        for hidden in (TOKEN, SECRET, sign, quote_plus(sign), SECRET[4:20]):
            assert hidden not in outcome.detail
        assert f"access_token={TOKEN[:4]}…" in outcome.detail  # enough to tell two hooks apart

    async def test_feishu_path_token_is_masked(self, receiver: ChatReceiver) -> None:
        receiver.reply(Reply(status=404, body="no such robot"))

        outcome = await send(hook_on(receiver, "feishu"))

        assert TOKEN not in outcome.detail
        assert f"/open-apis/bot/v2/hook/{TOKEN[:4]}…" in outcome.detail

    async def test_connection_failure_detail_masks_the_key(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={TOKEN}"

        outcome = await send(validate_hook("wecom", url, None))

        assert TOKEN not in outcome.detail and f"key={TOKEN[:4]}…" in outcome.detail

    def test_hook_repr_hides_the_key_and_secret(self) -> None:
        hook = validate_hook("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN, SECRET)

        assert TOKEN not in repr(hook) and SECRET not in repr(hook)


class TestValidateHook:
    @pytest.mark.parametrize(
        ("kind", "url"),
        [
            ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"),
            ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=" + TOKEN),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07-265f269f86fd"),
            ("feishu", "https://open.larksuite.com/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07-265f269f86fd"),
            ("wecom", "http://127.0.0.1:8080/any/relay/path"),
            ("dingtalk", "http://localhost/relay"),
            ("feishu", "http://[::1]:9000/hook"),
        ],
    )
    def test_vendor_and_loopback_urls_are_accepted(self, kind: str, url: str) -> None:
        hook = validate_hook(kind, f"  {url} ", "")

        assert hook == ChatHook(kind=kind, url=url, secret=None)  # type: ignore[arg-type]

    def test_signing_secret_is_kept_for_dingtalk_and_feishu(self) -> None:
        hook = validate_hook("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/" + TOKEN, " s3cr3t ")

        assert hook.secret == "s3cr3t"

    @pytest.mark.parametrize(
        ("kind", "url", "secret", "words"),
        [
            ("slack", "https://hooks.slack.com/x", None, "unknown chat kind 'slack': use one of wecom, dingtalk"),
            ("wecom", "ftp://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", None, "must start with https://"),
            ("wecom", "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", None, "must start with https://"),
            ("wecom", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", None, "must use https://"),
            ("wecom", "https://example.com/cgi-bin/webhook/send?key=k", None, "not a WeCom (企业微信) robot webhook"),
            (
                "wecom",
                "https://oapi.dingtalk.com/robot/send?access_token=t",
                None,
                "DingTalk (钉钉) webhook, not WeCom (企业微信): choose the kind dingtalk",
            ),
            ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", None, "has no key=..."),
            ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=", None, "has no access_token=..."),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/", None, "not a Feishu (飞书) robot webhook"),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/a/b", None, "not a Feishu"),
            (
                "dingtalk",
                "https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1&sign=x",
                "SECabc",
                "remove timestamp= and sign=",
            ),
            ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "s", "WeCom group robots have no"),
            ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t", "abc", "starts with SEC"),
            ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\n", None, "line break or NUL"),
            ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\r\nX-Evil: 1", None, "line break"),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/t\0", None, "NUL"),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/t", "sec\nret", "the secret contains a line"),
            ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/a b", None, "contains a space"),
            ("feishu", "https://me:pw@open.feishu.cn/open-apis/bot/v2/hook/t", None, "user name or password"),
        ],
    )
    def test_bad_input_is_refused_with_a_fix(self, kind: str, url: str, secret: str | None, words: str) -> None:
        with pytest.raises(ValueError) as caught:
            validate_hook(kind, url, secret)

        assert words in str(caught.value)
