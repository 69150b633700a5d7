"""Render notification e-mails from templates and build standards-correct messages.

Errors, all ValueError so a caller that only wants "bad input" catches one thing:

    ValueError
     ├── HeaderInjectionError  CR, LF or NUL in a subject, name, address or Message-ID
     ├── InvalidAddressError   an address that is not a plain addr-spec (user@domain)
     └── RenderContextError    a template used a value the context does not have

Rendering never reads the clock: every instant arrives in the context as an ISO 8601
string with its offset, and is shown in that offset (a deadline set in Beijing time reads
as Beijing time whatever machine renders it).
"""

from __future__ import annotations

import email.policy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, UndefinedError, select_autoescape

from notifications import charts

__all__ = [
    "EVENTS",
    "LANGUAGES",
    "HeaderInjectionError",
    "InlineImage",
    "InvalidAddressError",
    "RenderContextError",
    "RenderedMessage",
    "build_email",
    "local_date",
    "local_time",
    "markdown_escape",
    "render",
]

EVENTS: frozenset[str] = frozenset(
    {"step_assigned", "request_decided", "step_escalated", "obligation_reminder", "obligation_overdue",
     "submission_reviewed", "request_returned", "request_withdrawn", "digest", "escalation_report", "audit_broken",
     "request_filed", "step_reminder", "delegated", "obligation_opened", "weekly_points"}
)

# Accepted spellings → the code used in template file names.
LANGUAGES: Mapping[str, str] = MappingProxyType({"zh-CN": "zh", "zh": "zh", "en": "en"})

_TEMPLATES = Path(__file__).resolve().parent / "templates"
# Events whose message carries a chart, drawn from the context at render time; the templates get `chart`
# (cid, alt, width, height, colours) or None when there is nothing to draw.
_CHARTS = MappingProxyType({"escalation_report": charts.escalation_chart})
_OUTCOMES = frozenset({"approved", "rejected"})
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PROVISIONAL_NOTE = {
    "zh": "（暂定：该年度节假日安排未公布）",
    "en": " (provisional: holiday calendar for that year not yet published)",
}
# policy.SMTP (CRLF, RFC 2047 headers) with 7-bit-safe bodies: short UTF-8 parts would
# otherwise go out as raw 8bit, which a relay without 8BITMIME may mangle.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")
_CONTROL = re.compile(r"[\r\n\x00]")
_MD_SPECIAL = re.compile(r"[\\`*_\[\]]")  # escaped by the `md` filter
# RFC 5322 msg-id with dot-atom-text on both sides: what we generate, and nothing that
# a mail client could read two ways.
_MSG_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


class HeaderInjectionError(ValueError):
    """A header value contains CR, LF or NUL and could smuggle in extra headers."""


class InvalidAddressError(ValueError):
    """An e-mail address is not a plain addr-spec such as zhang.san@hospital.example.cn."""


class RenderContextError(ValueError):
    """A template needs a value that the render context does not provide."""


@dataclass(frozen=True)
class InlineImage:
    """A picture shown inside the HTML part (`<img src="cid:{cid}">`), e.g. a chart."""

    cid: str  # left@right, unique within the message
    png: bytes
    description: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    markdown: str = ""  # the short chat-bot form (WeCom/DingTalk/Feishu); "" when the event has none
    images: tuple[InlineImage, ...] = ()


def local_time(value: str | datetime, lang: str = "zh") -> str:
    """Format an instant as "11月15日 23:59" (zh) or "15 Nov 23:59" (en) in its own offset.

    The offset is kept, not converted: the reader sees the wall time the deadline was
    set in. An instant without an offset is refused, since its meaning is a guess.
    """
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if instant.utcoffset() is None:
        raise ValueError(f"instant {value!r} has no UTC offset; pass e.g. '2026-11-15T23:59:59+08:00'")
    clock = f"{instant:%H:%M}"
    if _language_code(lang) == "en":
        return f"{instant.day} {_EN_MONTHS[instant.month - 1]} {clock}"
    return f"{instant.month}月{instant.day}日 {clock}"


def local_date(value: str | date | datetime, lang: str = "zh") -> str:
    """Format a day as "12月7日" (zh) or "7 Dec" (en): an ISO date, or an instant's date in its own offset."""
    if isinstance(value, str):
        day = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    else:
        day = value
    if isinstance(day, datetime):
        if day.utcoffset() is None:
            raise ValueError(f"instant {value!r} has no UTC offset; pass e.g. '2026-12-07T18:00:00+08:00'")
        day = day.date()
    if _language_code(lang) == "en":
        return f"{day.day} {_EN_MONTHS[day.month - 1]}"
    return f"{day.month}月{day.day}日"


def markdown_escape(value: Any) -> str:
    """User text made inert in chat-bot markdown: each of [ ] * _ ` and the backslash gets a backslash
    before it, and line breaks become spaces (a title must not close a bold span, open a link or start a line)."""
    return _MD_SPECIAL.sub(r"\\\g<0>", " ".join(str(value).splitlines()))


def render(event: str, context: Mapping[str, Any], *, lang: str = "zh-CN") -> RenderedMessage:
    """Render the subject, plain text and HTML of one notification.

    The subject is collapsed to one line (templates may wrap it for readability, and a
    title containing a line break must not become a second header).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; allowed: {', '.join(sorted(EVENTS))}")
    code = _language_code(lang)
    if event == "request_decided" and context.get("outcome") not in _OUTCOMES:
        raise RenderContextError(
            f"request_decided: outcome must be one of {sorted(_OUTCOMES)}, got {context.get('outcome')!r}"
        )
    env = _environment(code)
    values = dict(context)
    if event == "digest":
        values["held"] = [_held_line(item, lang) for item in context.get("held", ())]
    images: tuple[InlineImage, ...] = ()
    if event in _CHARTS:
        image = _CHARTS[event](context, code)
        images = (image,) if image else ()
        values["chart"] = image and {"cid": image.cid, "alt": image.description, "width": charts.WIDTH,
                                     "height": charts.HEIGHT, "colours": dict(charts.COLOURS)}
    try:
        subject = env.get_template(f"{event}.{code}.subject.j2").render(values)
        text = env.get_template(f"{event}.{code}.txt.j2").render(values)
        html = env.get_template(f"{event}.{code}.html.j2").render(values)
        markdown = (env.get_template(f"{event}.{code}.md.j2").render(values)
                    if _has_markdown(event, code) else "")
    except UndefinedError as exc:
        raise RenderContextError(
            f"{event} ({code}): {exc.message}; the context lacks a value the template uses"
        ) from exc
    return RenderedMessage(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html,
                           markdown=markdown.strip(), images=images)


def build_email(
    rendered: RenderedMessage,
    *,
    sender: str,
    to_address: str,
    to_name: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """A multipart/alternative (text, then HTML) UTF-8 message ready for SMTP.

    `message_id` is used verbatim inside angle brackets; callers make it stable per
    event and recipient so that a resend is recognisable as the same notification.
    """
    _reject_control_characters(
        subject=rendered.subject, sender=sender, to_address=to_address, to_name=to_name, message_id=message_id
    )
    if not _MSG_ID.fullmatch(message_id):
        raise ValueError(
            f"message_id {message_id!r} must look like 'left@right' (letters, digits, '.', '-', '_'; "
            "no spaces, no angle brackets)"
        )
    if date.utcoffset() is None:
        raise ValueError("date must be timezone-aware (an instant in UTC or with an offset)")

    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(sender, field="sender")
    message["To"] = _address(to_address, field="to_address", display_name=to_name)
    message["Subject"] = rendered.subject
    message["Date"] = date
    message["Message-ID"] = f"<{message_id}>"
    # RFC 3834 and Exchange's equivalent: out-of-office robots should not answer a robot.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    if rendered.images:  # multipart/alternative(text, multipart/related(html, images...))
        html_part = message.get_payload()[1]
        for image in rendered.images:
            if not _MSG_ID.fullmatch(image.cid):
                raise ValueError(f"image cid {image.cid!r} must look like 'left@right'")
            html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>",
                                  disposition="inline", filename=f"{image.cid.split('@', 1)[0]}.png")
    return message


def _held_line(item: Mapping[str, Any], lang: str) -> dict[str, str]:
    """A notification held for the digest, as the subject line its own e-mail would have had. One that no longer
    renders (a template changed since) is listed by its event name rather than dropped."""
    try:
        subject = render(str(item["event"]), item["context"], lang=lang).subject
    except (ValueError, KeyError, TypeError):
        subject = str(item.get("event", ""))
    return {"subject": subject, "link": str(item.get("link", ""))}


def _language_code(lang: str) -> str:
    try:
        return LANGUAGES[lang]
    except KeyError:
        raise ValueError(f"unknown language {lang!r}; allowed: {', '.join(LANGUAGES)}") from None


@functools.cache
def _has_markdown(event: str, code: str) -> bool:
    """Whether the event has a chat-bot form (looked up once, not on every render)."""
    return (_TEMPLATES / f"{event}.{code}.md.j2").exists()


@functools.cache
def _environment(code: str) -> Environment:
    # One environment per language, so `local_time` and the provisional note need no
    # language argument in templates.
    env = Environment(
        # Found next to this file rather than with PackageLoader("notifications", ...): under
        # pytest's default import mode, tests/notifications/ (no __init__.py) shadows this
        # package's name as a namespace package and PackageLoader then finds no templates.
        loader=FileSystemLoader(_TEMPLATES),
        # select_autoescape(["html"]) alone would NOT match "x.html.j2": it tests the
        # name's ending, so the template suffix has to be listed too.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = functools.partial(local_time, lang=code)
    env.filters["local_date"] = functools.partial(local_date, lang=code)
    env.filters["md"] = markdown_escape  # user text in the chat-bot form (`<event>.<lang>.md.j2`)
    env.globals["provisional_note"] = _PROVISIONAL_NOTE[code]
    return env


def _reject_control_characters(**values: str) -> None:
    for field, value in values.items():
        if _CONTROL.search(value):
            raise HeaderInjectionError(
                f"{field} contains a line break or NUL ({value!r}); header values must be one line"
            )


def _address(addr_spec: str, *, field: str, display_name: str = "") -> Address:
    """An Address from a bare addr-spec; display names may be Chinese (RFC 2047 encoded)."""
    try:
        address = Address(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError, HeaderParseError) as exc:
        # headerregistry reports a bad address as any of these, depending on where parsing stopped.
        raise InvalidAddressError(
            f"{field} {addr_spec!r} is not an e-mail address like zhang.san@hospital.example.cn ({exc})"
        ) from exc
    if not address.username or not address.domain:
        raise InvalidAddressError(f"{field} {addr_spec!r} needs a local part and a domain (user@domain)")
    if not address.addr_spec.isascii():
        raise InvalidAddressError(
            f"{field} {addr_spec!r} contains non-ASCII characters; write the domain in its "
            "punycode form (xn--...) and use an ASCII mailbox name"
        )
    return address
