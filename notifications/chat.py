"""Post notifications to group chats through custom-robot webhooks: WeCom, DingTalk, Feishu.

A hook is a webhook URL an administrator copied from a group's robot settings, plus the
signing secret for DingTalk and Feishu when 加签 / 签名校验 is on. `build_request` turns a
message into the exact URL and JSON body for that vendor; `send_chat` posts it and never
raises for delivery problems. Each post gets a `SendOutcome` (the SMTP channel's):

    ok                      the vendor answered with its success code
    not ok, temporary       connection failed or timed out, HTTP 5xx or 429, a rate-limit
                            or "system busy" code, or an answer we cannot read: retry later
    not ok, permanent       any other HTTP 4xx or vendor error code (wrong key, signature
                            mismatch, keyword or IP allow-list): fix the hook first

Vendors answer most errors with HTTP 200 and a code in the JSON body; a vendor code is read
on 4xx answers too, so a rate limit reported as 400 is still temporary.

Signatures (the vendors' documented algorithms; the key/message order differs):

    DingTalk  timestamp in ms; sign = base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")),
              sent URL-encoded as &timestamp=...&sign=...; the server accepts one hour of skew
    Feishu    timestamp in s;  sign = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")),
              sent as "timestamp" and "sign" in the JSON body; one hour of skew
    WeCom     no signing: the key in the URL is the only credential

Details never contain the secret, the webhook key or token, or a signature.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, quote_plus, urlsplit

import httpx

from notifications.smtp import SendOutcome

__all__ = [
    "ChatHook",
    "ChatKind",
    "ChatMessage",
    "build_request",
    "dingtalk_sign",
    "feishu_sign",
    "send_chat",
    "send_chat_batch",
    "validate_hook",
    "wecom_content",
]

_log = logging.getLogger(__name__)

ChatKind = Literal["wecom", "dingtalk", "feishu"]
KINDS: tuple[str, ...] = get_args(ChatKind)

WECOM_MAX_BYTES = 4096  # WeCom refuses markdown content longer than this (UTF-8 bytes)
_LOOPBACK_NAMES = {"localhost"}
_TOKEN_PARAMS = {"wecom": "key", "dingtalk": "access_token"}
_FEISHU_HOSTS = ("open.feishu.cn", "open.larksuite.com")
_FEISHU_PATH = "/open-apis/bot/v2/hook/"
_EXAMPLES = {
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...",
    "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=...",
    "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/... (or open.larksuite.com)",
}
_NAMES = {"wecom": "WeCom (企业微信)", "dingtalk": "DingTalk (钉钉)", "feishu": "Feishu (飞书)"}


@dataclass(frozen=True)
class ChatHook:
    kind: ChatKind
    url: str
    secret: str | None = None  # DingTalk/Feishu signing secret; None when signing is off

    def __repr__(self) -> str:  # keep the key and the secret out of logs and tracebacks
        return f"ChatHook(kind={self.kind!r}, url={_masked_url(self)!r}, secret={'***' if self.secret else None})"


@dataclass(frozen=True)
class ChatMessage:
    title: str  # the e-mail subject
    markdown: str  # the chat form of the message; "" falls back to the title
    link: str  # the page where the person acts


def validate_hook(kind: str, url: str, secret: str | None, *, allow_loopback: bool = True) -> ChatHook:
    """A hook from what an administrator typed, or ValueError saying how to fix it.

    Surrounding spaces are dropped; an empty secret means no signing. Plain http and
    arbitrary paths are allowed only for loopback hosts (local relays and tests), and only when
    `allow_loopback`: a hook set up by someone who is not an administrator must not make the
    server post to its own loopback services.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown chat kind {kind!r}: use one of {', '.join(KINDS)}")
    url = url.strip(" \t")
    secret = (secret or "").strip(" \t") or None
    for label, value in (("webhook URL", url), ("secret", secret or "")):
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"the {label} contains a line break or NUL character: paste it again as one line")
        if any(ch.isspace() for ch in value):
            raise ValueError(f"the {label} contains a space: paste it again without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the webhook URL must start with https://, like {_EXAMPLES[kind]}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the webhook URL must not contain a user name or password before the host")
    if _is_loopback(parts.hostname) and not allow_loopback:
        raise ValueError(f"only administrators may point a hook at this machine; use the robot's own URL, like "
                         f"{_EXAMPLES[kind]}")
    if not _is_loopback(parts.hostname):
        if parts.scheme != "https":
            raise ValueError(
                "the webhook URL must use https:// (plain http is allowed only for 127.0.0.1, localhost and ::1)"
            )
        vendor = _vendor_of(url)
        if vendor is None:
            raise ValueError(f"this is not a {_NAMES[kind]} robot webhook: it looks like {_EXAMPLES[kind]}")
        if vendor != kind:
            raise ValueError(f"this is a {_NAMES[vendor]} webhook, not {_NAMES[kind]}: choose the kind {vendor}")
    query = dict(parse_qsl(parts.query))
    token_param = _TOKEN_PARAMS.get(kind)
    if token_param and not _is_loopback(parts.hostname) and not query.get(token_param):
        raise ValueError(f"the webhook URL has no {token_param}=...: copy the whole URL, like {_EXAMPLES[kind]}")
    if kind == "dingtalk" and ("timestamp" in query or "sign" in query):
        raise ValueError("remove timestamp= and sign= from the webhook URL: duly signs each message itself")
    if kind == "wecom" and secret:
        raise ValueError(
            "WeCom group robots have no signing: leave the secret empty (the key in the URL is the only credential)"
        )
    if kind == "dingtalk" and secret and not secret.startswith("SEC"):
        raise ValueError(
            "a DingTalk signing secret starts with SEC (shown under 加签 in the robot's security settings); "
            "the access_token belongs in the URL"
        )
    return ChatHook(kind=kind, url=url, secret=secret)  # type: ignore[arg-type]  # kind checked above


def build_request(hook: ChatHook, message: ChatMessage, *, now: datetime, button: str = "查看详情") -> tuple[str, dict]:
    """The URL to POST to and the JSON body; a signature's timestamp is taken from `now`.

    WeCom gets markdown (the title in bold when there is no markdown) ending with a link
    line unless the markdown already holds the link, cut to 4096 UTF-8 bytes; DingTalk an
    actionCard and Feishu an interactive card, each with a button to the link.
    """
    millis = _epoch_millis(now)
    if hook.kind == "wecom":
        return hook.url, {"msgtype": "markdown", "markdown": {"content": wecom_content(message)}}
    if hook.kind == "dingtalk":
        return _dingtalk_url(hook, millis), _dingtalk_body(message, button)
    body = _feishu_body(message, button)
    if hook.secret:
        seconds = millis // 1000
        body = {"timestamp": str(seconds), "sign": feishu_sign(hook.secret, seconds), **body}
    return hook.url, body


def _dingtalk_url(hook: ChatHook, millis: int) -> str:
    if not hook.secret:
        return hook.url
    separator = "&" if urlsplit(hook.url).query else ("" if hook.url.endswith("?") else "?")
    return f"{hook.url}{separator}timestamp={millis}&sign={quote_plus(dingtalk_sign(hook.secret, millis))}"


def _dingtalk_body(message: ChatMessage, button: str) -> dict[str, Any]:
    # DingTalk's markdown joins lines separated by a single line break: each line becomes a paragraph
    text = "\n\n".join(line for line in (message.markdown or message.title).splitlines() if line.strip())
    card = {
        "title": message.title,
        "text": text,
        "singleTitle": button,
        "singleURL": message.link,
    }
    return {"msgtype": "actionCard", "actionCard": card}


def _feishu_body(message: ChatMessage, button: str) -> dict[str, Any]:
    link_button = {"tag": "button", "text": {"tag": "plain_text", "content": button}, "url": message.link}
    elements: list[dict[str, Any]] = []
    if message.markdown:  # without markdown the header already shows the title
        elements.append({"tag": "markdown", "content": message.markdown})
    elements.append({"tag": "action", "actions": [{**link_button, "type": "primary"}]})
    card = {"header": {"title": {"tag": "plain_text", "content": message.title}}, "elements": elements}
    return {"msg_type": "interactive", "card": card}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, before URL encoding: the secret is the HMAC key."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: "{timestamp}\\n{secret}" is the HMAC key, the message is empty."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def wecom_content(message: ChatMessage) -> str:
    """WeCom markdown within 4096 UTF-8 bytes; when cut, the cut is at a line end and the link stays."""
    body = message.markdown or f"**{message.title}**"
    link_line = f"[→ {message.link}]({message.link})"
    content = body if message.link in body else f"{body}\n\n{link_line}"
    if len(content.encode()) <= WECOM_MAX_BYTES:
        return content
    tail = f"\n…\n\n{link_line}"
    budget = WECOM_MAX_BYTES - len(tail.encode())
    if budget <= 0:  # a link too long to fit at all: send what fits of it
        return _cut_utf8(link_line, WECOM_MAX_BYTES)
    kept = _cut_utf8(body, budget)
    line_end = kept.rfind("\n")
    if line_end >= len(kept) // 2:  # cut at a line end unless that would drop half the text
        kept = kept[:line_end]
    return kept.rstrip() + tail


async def send_chat(
    client: httpx.AsyncClient, hook: ChatHook, message: ChatMessage, *, now: datetime, timeout_seconds: float = 10.0
) -> SendOutcome:
    """Post one message; the whole exchange is bounded by `timeout_seconds`. Never raises for delivery problems."""
    url, body = build_request(hook, message, now=now)
    where = f"{hook.kind} {_masked_url(hook)}"
    try:
        async with asyncio.timeout(timeout_seconds):
            response = await client.post(url, json=body, timeout=timeout_seconds, follow_redirects=False)
    except (TimeoutError, httpx.TimeoutException):
        return _temporary(f"{where}: no answer within {timeout_seconds:g} s")
    except httpx.ConnectError as exc:
        return _temporary(_scrub(f"{where}: cannot connect ({exc or type(exc).__name__})", hook, url))
    except httpx.HTTPError as exc:  # connection dropped mid-request, protocol errors
        return _temporary(_scrub(f"{where}: {type(exc).__name__}: {exc}", hook, url))
    outcome = _classify(hook.kind, response.status_code, response.text)
    outcome = SendOutcome(outcome.ok, outcome.permanent, _scrub(f"{where}: {outcome.detail}", hook, url))
    if not outcome.ok:
        _log.warning("chat: %s", outcome.detail)
    return outcome


async def send_chat_batch(
    items: Sequence[tuple[ChatHook, ChatMessage]], *, now: datetime, timeout_seconds: float = 10.0
) -> list[SendOutcome]:
    """Post each message in order over one HTTP client (connections are reused); one outcome each."""
    if not items:
        return []
    async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False, verify=_ssl_context()) as client:
        return [
            await send_chat(client, hook, message, now=now, timeout_seconds=timeout_seconds)
            for hook, message in items
        ]


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: loading the CA bundle takes ~0.1 s per client."""
    return httpx.create_ssl_context()


# Vendor codes that mean "later": rate limits and "system busy".
_TEMPORARY_CODES: dict[str, set[int]] = {"wecom": {45009, -1}, "dingtalk": {130101, -1}, "feishu": {9499, 11232}}
_HINTS: dict[tuple[str, int], str] = {
    ("wecom", 45009): "rate limit (20 messages a minute per robot)",
    ("wecom", 93000): "invalid key: copy the webhook URL again from the group robot",
    ("dingtalk", 130101): "rate limit (20 messages a minute per robot)",
    ("dingtalk", 310000): "check the secret, keyword or IP allow-list in the robot's security settings",
    ("feishu", 9499): "rate limit",
    ("feishu", 11232): "rate limit",
    ("feishu", 19021): "check the secret and the server clock",
}


def _classify(kind: str, status: int, text: str) -> SendOutcome:
    """Outcome of one answer: the vendor's JSON code decides when there is one, else the HTTP status."""
    code, vendor_message = _vendor_code(kind, text)
    if status == 429 or status >= 500:
        return _temporary(f"HTTP {status} {_excerpt(text)}".rstrip())
    if code is not None and (status == 200 or 400 <= status < 500):
        if code == 0 and status == 200:
            return SendOutcome(ok=True, permanent=False, detail="accepted")
        hint = _HINTS.get((kind, code))
        detail = f"code {code} {vendor_message}".rstrip() + (f": {hint}" if hint else "")
        if status != 200:
            detail = f"HTTP {status}, {detail}"
        return SendOutcome(ok=False, permanent=code not in _TEMPORARY_CODES[kind], detail=detail)
    if status == 200:
        return _temporary(f"HTTP 200 but not a {_NAMES[kind]} answer: {_excerpt(text) or '(empty body)'}")
    return SendOutcome(ok=False, permanent=True, detail=f"HTTP {status} {_excerpt(text)}".rstrip())


def _vendor_code(kind: str, text: str) -> tuple[int | None, str]:
    try:
        answer = json.loads(text)
    except ValueError:
        return None, ""
    if not isinstance(answer, dict):
        return None, ""
    keys = ("errcode", "errmsg") if kind != "feishu" else ("code", "msg")
    code = answer.get(keys[0])
    if kind == "feishu" and code is None:  # the older success answer has only StatusCode
        keys = ("StatusCode", "StatusMessage")
        code = answer.get(keys[0])
    if not isinstance(code, int) or isinstance(code, bool):
        return None, ""
    return code, str(answer.get(keys[1]) or "")


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _temporary(detail: str) -> SendOutcome:
    return SendOutcome(ok=False, permanent=False, detail=detail)


def _epoch_millis(now: datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (a signature's timestamp is an absolute instant)")
    # timegm, not `now - epoch`: a pendulum instant minus a datetime is an Interval that `//` cannot divide
    return calendar.timegm(now.utctimetuple()) * 1000 + now.microsecond // 1000


def _cut_utf8(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode(errors="ignore")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _vendor_of(url: str) -> str | None:
    """Which vendor's webhook `url` is, by host and path; None when it is none of them."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path
    if host == "qyapi.weixin.qq.com" and path == "/cgi-bin/webhook/send":
        return "wecom"
    if host == "oapi.dingtalk.com" and path == "/robot/send":
        return "dingtalk"
    if host in _FEISHU_HOSTS and path.startswith(_FEISHU_PATH):
        token = path[len(_FEISHU_PATH):].rstrip("/")
        return "feishu" if token and "/" not in token else None
    return None


def _tokens(hook: ChatHook) -> list[str]:
    """The webhook's own credentials: every query value, and Feishu's path token."""
    parts = urlsplit(hook.url)
    found = [value for _, value in parse_qsl(parts.query)]
    if hook.kind == "feishu":
        found.append(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return [token for token in found if token]


def _mask(token: str) -> str:
    return f"{token[:4]}…" if len(token) >= 12 else "…"


def _masked_url(hook: ChatHook) -> str:
    parts = urlsplit(hook.url)
    query = "&".join(f"{name}={_mask(value)}" for name, value in parse_qsl(parts.query))
    path = parts.path
    if hook.kind == "feishu":
        head, _, token = path.rstrip("/").rpartition("/")
        path = f"{head}/{_mask(token)}"
    return f"{parts.scheme}://{parts.netloc}{path}" + (f"?{query}" if query else "")


def _scrub(text: str, hook: ChatHook, sent_url: str) -> str:
    """`text` without the hook's secret, key or token, or the signature in `sent_url`.

    Tokens keep their first four characters (enough to tell two hooks apart); the secret
    and the signature are replaced whole.
    """
    hidden = {token: _mask(token) for token in _tokens(hook)}
    signs = [value for name, value in parse_qsl(urlsplit(sent_url).query) if name == "sign"]
    hidden.update({value: "***" for value in [*signs, hook.secret or ""] if value})
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= 4:  # masking shorter strings would garble ordinary words
            text = text.replace(value, hidden[value]).replace(quote_plus(value), hidden[value])
    return text
