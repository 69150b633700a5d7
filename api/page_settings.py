"""/settings (通知设置): how a person is told — the language of their messages, immediate e-mails or a daily
digest at a time of their choosing, and their own chat-bot hooks (a WeCom, DingTalk or Feishu robot).

The same rules as PUT /api/me/preferences and /api/me/chat-hooks (store.preferences, notifications.chat,
store.chat_hooks); a refused form is shown again with what to fix, and nothing is stored. Plain forms with
the CSRF token, no scripts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import PagePerson, SessionDep
from api.chat_hooks import CHAT_EVENTS, checked
from api.page_kit import FormCaller, render, see_other
from api.schemas import RowId
from config import clock
from store import chat_hooks
from store.errors import InvalidInputError, NotFoundError
from store.preferences import preferences_of, update_preferences
from store.tables import PersonRow

router = APIRouter(include_in_schema=False)

KINDS = {"wecom": "企业微信群机器人", "dingtalk": "钉钉自定义机器人", "feishu": "飞书自定义机器人"}
FIELD_NAMES = {"lang": "语言", "notify_mode": "邮件方式", "digest_at": "汇总时间", "kind": "机器人类型",
               "url": "Webhook 地址", "secret": "加签密钥", "events": "事件", "label": "名称"}
DONE = {"saved": "设置已保存。", "hook_added": "机器人已添加，之后的通知会同时发到该群。",
        "hook_deleted": "机器人已删除。"}


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(person: PagePerson, session: SessionDep, http: Request) -> HTMLResponse:
    return await _page(http, session, person)


@router.post("/settings/preferences", response_class=HTMLResponse)
async def save_preferences(caller: FormCaller, http: Request) -> Response:
    if caller.refusal:
        return caller.refusal
    form = await http.form()
    changes = {name: str(form.get(name, "")).strip() for name in ("lang", "notify_mode", "digest_at")}
    try:
        async with caller.write() as session:
            await update_preferences(session, caller.person, changes, actor_id=caller.person.id, now=clock.now())
            caller.write.respond({"saved": True})
    except InvalidInputError as exc:
        return await _again(http, caller.person, exc, form=changes)
    return see_other("/settings", done="saved")


@router.post("/settings/chat-hooks", response_class=HTMLResponse)
async def add_hook(caller: FormCaller, http: Request) -> Response:
    if caller.refusal:
        return caller.refusal
    form = await http.form()
    kind, url = str(form.get("kind", "")), str(form.get("url", ""))
    secret, label = str(form.get("secret", "")) or None, str(form.get("label", "")).strip()[:100]
    try:
        if kind not in KINDS:
            raise InvalidInputError("unknown kind", {"kind": f"请选择：{'、'.join(KINDS.values())}"})
        url, secret = checked(kind, url, secret, admin="admin" in caller.person.roles)
        async with caller.write() as session:
            await chat_hooks.create_hook(session, scope="person", owner=caller.person.id, kind=kind, url=url,
                                         secret=secret, label=label, events=None, known_events=CHAT_EVENTS,
                                         actor_id=caller.person.id, now=clock.now())
            caller.write.respond({"added": True})
    except InvalidInputError as exc:
        return await _again(http, caller.person, exc, hook={"kind": kind, "url": url, "label": label})
    return see_other("/settings", done="hook_added")


@router.post("/settings/chat-hooks/{hook_id}/delete", response_class=HTMLResponse)
async def delete_hook(hook_id: RowId, caller: FormCaller, http: Request) -> Response:
    if caller.refusal:
        return caller.refusal
    try:
        async with caller.write() as session:
            row = await chat_hooks.get_hook(session, hook_id, person_id=caller.person.id, lock=True)
            await chat_hooks.delete_hook(session, row, actor_id=caller.person.id, now=clock.now())
            caller.write.respond({"deleted": hook_id})
    except NotFoundError:
        return await _again(http, caller.person, InvalidInputError(
            "not yours", {"hook": f"机器人 #{hook_id} 不存在，或不是您的。"}), status_code=404)
    return see_other("/settings", done="hook_deleted")


async def _again(http: Request, person: PersonRow, exc: InvalidInputError, *, form: dict[str, str] | None = None,
                 hook: dict[str, str] | None = None, status_code: int = 422) -> HTMLResponse:
    problems = [f"{FIELD_NAMES.get(field, '')}：{message}" if field in FIELD_NAMES else message
                for field, message in (exc.problems or {"": str(exc)}).items()]
    async with http.app.state.runtime.read_sessions() as session:
        return await _page(http, session, person, problems=problems, form=form, hook=hook, status_code=status_code)


async def _page(http: Request, session: AsyncSession, person: PersonRow, *, problems: list[str] | None = None,
                form: dict[str, str] | None = None, hook: dict[str, str] | None = None,
                status_code: int = 200) -> HTMLResponse:
    _, rows = await chat_hooks.list_hooks(session, scope="person", owner=person.id)
    hooks: list[dict[str, Any]] = [
        {"id": r.id, "kind": KINDS.get(r.kind, r.kind), "url": chat_hooks.mask_url(r.url), "label": r.label,
         "signed": bool(r.secret), "active": r.active} for r in rows]
    return await render(http, session, person, "settings.html", {
        "prefs": form or preferences_of(person), "hooks": hooks, "kinds": KINDS, "hook": hook or {},
        "problems": problems or [], "done": DONE.get(http.query_params.get("done", ""), "")},
        status_code=status_code)
