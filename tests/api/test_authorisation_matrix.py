"""The authorisation matrix: every route of the app × five personas, and the status each must get.

Personas (tests/api/authz/world.py): anonymous; requester (huang.lei, who filed the world's pending request);
approver (liu.yang, to whom that request's open step is assigned); other_department (lin.fang, 医务部, no role
over it); admin. Rules the matrix pins down: anonymous callers get 401 on every API route not listed as public,
and a page sends an anonymous browser to /login (303); an object someone may not see answers 404 (never 403,
so its existence does not leak), one they see but may not act on 403; collections that only administrators
change answer others 403; nobody decides their own request, administrators included. Signing in (/login,
POST /api/session) is public: the credentials in the body decide, not the caller.

HOW TO ADD A ROUTE'S ROW (test_every_route_is_in_the_matrix fails, naming the missing "METHOD /path"):
add one line to MATRIX below,

    row("POST /api/requests/{request_id}/withdraw", 401, 200, 403, 404, 403,
        params=fresh_request(), body={"reason": "不需要了"}),

- the statuses, in the column order anonymous, requester, approver, other_department, admin;
- `params`: World → the path's {placeholders} (ready: `pending_request`, `fresh_request()`, `own_obligation`,
  `requester_mail`, or write a two-line function). A call that changes state gets a fresh object per call
  (`fresh_request()` files a new request each time), so the rows do not depend on their order;
- `body`: a minimal valid JSON body (a constant, or World → body) for POST/PUT/PATCH;
- `files`: World → multipart files for an upload (then a dict `body` goes as form fields); `form`: fields sent
  url-encoded (the login form); `content`: World → a raw body (YAML uploads, with a Content-Type in `headers`);
  `query`, `headers`;
- a route anyone may call: `public("GET /path")`; a known bug: `xfail={"persona": "why"}` (strict: the
  test fails once the bug is fixed, so the mark is removed with the fix).
An object the world lacks (a delegation, an attachment...) goes into `open_world` in tests/api/authz/world.py.
A special situation (the administrator's own request, a decided step) is a `scenario(...)` in SCENARIOS.
A list route also gets a `listing(...)` in LISTINGS: who finds the world's object in its answer (a list must
filter by the rule that makes the object's own route answer 404).

The whole matrix runs on SQLite against one server per module; the non-public rows run again on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest
from fastapi import APIRouter, FastAPI
from sqlmodel import Session as SyncSession

from config import clock
from config.settings import Settings
from notifications.catcher import MailCatcher
from store.db import sync_engine_for
from store.tables import NotificationRow, OutboxRow
from tests.api.authz.matrix import Listing, Row, app_routes, ids_in, listing, public, row, scenario
from tests.api.authz.world import PASSWORD, PERSONAS, World, open_world, settings_for, sqlite_copy

# --- how calls find their objects ----------------------------------------------------------------------


def pending_request(world: World) -> Mapping[str, object]:
    """The world's pending request (filed by the requester, waiting for the approver)."""
    return {"request_id": world.request_id, "step_id": world.step_id}


def fresh_request(requester: str = "requester"):  # type: ignore[no-untyped-def]
    """A new pending request per call, filed by `requester` (a persona), waiting for the approver."""
    def build(world: World) -> Mapping[str, object]:
        request_id, step_id = world.file_request(requester)
        return {"request_id": request_id, "step_id": step_id}
    return build


def decided_request(world: World) -> Mapping[str, object]:
    """A new request whose only step the approver has approved already."""
    request_id, step_id = world.file_request()
    answer = world.client("approver").post(f"/api/requests/{request_id}/steps/{step_id}/decision", json=APPROVE)
    assert answer.status_code == 200, answer.text
    return {"request_id": request_id, "step_id": step_id}


def step_of_another_request(world: World) -> Mapping[str, object]:
    """A request of the requester, and the id of a step that belongs to a different request."""
    request_id, _ = world.file_request()
    _, other_step_id = world.file_request()
    return {"request_id": request_id, "step_id": other_step_id}


def missing_request(world: World) -> Mapping[str, object]:
    return {"request_id": 2_000_000_000, "step_id": 2_000_000_000}


def own_obligation(world: World) -> Mapping[str, object]:
    """An open obligation of the requester's department."""
    return {"obligation_id": world.obligation_id}


def foreign_obligation(world: World) -> Mapping[str, object]:
    """An open obligation of 绩效办, a department none of the personas belongs to."""
    return {"obligation_id": world.foreign_obligation_id}


def requester_mail(world: World) -> Mapping[str, object]:
    """A caught e-mail addressed to the requester only."""
    return {"key": world.mail_key}


def returned_request(world: World) -> Mapping[str, object]:
    """A new request of the requester that the approver sent back (退回) to them."""
    request_id, step_id = world.file_request()
    answer = world.client("approver").post(f"/api/requests/{request_id}/steps/{step_id}/decision",
                                           json={"verb": "send_back", "reason": "请补充报价单"})
    assert answer.status_code == 200 and answer.json()["state"] == "returned", answer.text
    return {"request_id": request_id, "step_id": step_id}


def one_task(world: World) -> dict[str, object]:
    """A bulk-approval body naming the open step of a new request."""
    request_id, step_id = world.file_request()
    return {"items": [{"request_id": request_id, "step_id": step_id}]}


def one_task_item(world: World) -> dict[str, object]:
    """The inbox's bulk form naming the open step of a new request (`item` = request_id:step_id)."""
    request_id, step_id = world.file_request()
    return {"item": f"{request_id}:{step_id}"}


def fresh_obligation(world: World) -> Mapping[str, object]:
    """An open obligation of the requester's department, not used by any call before."""
    return {"obligation_id": world.fresh_obligation()}


def own_delegation(world: World) -> Mapping[str, object]:
    """The requester's delegation to he.jing (given by the requester, received by no persona)."""
    return {"delegation_id": world.delegation_id}


def fresh_delegation(world: World) -> Mapping[str, object]:
    """A new delegation of the requester to he.jing, in a time window of its own (no overlap)."""
    return {"delegation_id": world.delegate("requester", "he.jing", days_from_now=40 + 3 * world.number(), days=2)}


def delegation_received_by_the_approver(world: World) -> Mapping[str, object]:
    """A new future delegation of the requester to the approver: he sees it (received), did not give it."""
    return {"delegation_id": world.delegate("requester", "liu.yang", days_from_now=40 + 3 * world.number(), days=2)}


def future_delegation(world: World) -> dict[str, object]:
    """A delegation body from the caller to zhao.weidong in a future window of its own (it routes nothing)."""
    starts = pendulum.instance(clock.now()).add(days=200 + 3 * world.number())
    return {"to": "zhao.weidong", "starts": starts.isoformat(), "ends": starts.add(days=2).isoformat()}


def own_attachment(world: World) -> Mapping[str, object]:
    """A file the requester uploaded and attached to nothing."""
    return {"attachment_id": world.attachment_id}


def submitted_attachment(world: World) -> Mapping[str, object]:
    """A file the administrator handed in with a report of the requester's department."""
    return {"attachment_id": world.submitted_attachment_id}


def a_text_file(world: World) -> Mapping[str, object]:
    return {"file": ("说明.txt", "矩阵测试上传。".encode(), "text/plain")}


def own_token(world: World) -> Mapping[str, object]:
    return {"token_id": world.token_id}


def fresh_token(world: World) -> Mapping[str, object]:
    """A new API token of the requester."""
    return {"token_id": world.token("requester")}


def new_department(world: World) -> dict[str, object]:
    number = world.number()
    return {"code": f"authz-{number}", "name": f"矩阵测试科{number}"}


def fresh_department(world: World) -> Mapping[str, object]:
    """A department the administrator creates for this call."""
    body = new_department(world)
    answer = world.client("admin").post("/api/departments", json=body)
    assert answer.status_code == 201, answer.text
    return {"code": body["code"]}


def new_person(world: World) -> dict[str, object]:
    number = world.number()
    return {"id": f"authz.person{number}", "name": f"矩阵测试{number}", "department": "it",
            "email": f"authz.person{number}@hospital.example"}


def fresh_person(world: World) -> Mapping[str, object]:
    """A person the administrator creates for this call."""
    body = new_person(world)
    answer = world.client("admin").post("/api/people", json=body)
    assert answer.status_code == 201, answer.text
    return {"person_id": body["id"]}


def requester_person(world: World) -> Mapping[str, object]:
    return {"person_id": "huang.lei"}


def purchase_policy(world: World) -> Mapping[str, object]:
    return {"policy_id": "it-hardware-purchase", "version": world.purchase_version}


SHIPPED_PURCHASE = (Path(__file__).parents[2] / "policies" / "library" / "hospital" / "it-hardware-purchase.yaml")


def new_policy_text(world: World) -> bytes:
    """The shipped IT purchase policy under a new id: a new policy for every call."""
    text = SHIPPED_PURCHASE.read_text(encoding="utf-8")
    assert "\nid: it-hardware-purchase\n" in text
    return text.replace("\nid: it-hardware-purchase\n", f"\nid: authz-purchase-{world.number()}\n").encode()


def holiday_year_text(world: World) -> bytes:
    return (f"year: {HOLIDAY_YEAR}\nsource: 矩阵测试\npublished: {HOLIDAY_YEAR - 1}-11-01\nholidays:\n"
            f"  - name: 元旦\n    days_off: [{HOLIDAY_YEAR}-01-01, {HOLIDAY_YEAR}-01-01]\n"
            "    makeup_workdays: []\n").encode()


def holiday_year(world: World) -> Mapping[str, object]:
    return {"year": HOLIDAY_YEAR}


def shipped_holiday_year(world: World) -> Mapping[str, object]:
    return {"year": 2026}


def waived_obligation(world: World) -> Mapping[str, object]:
    """An obligation of the requester's department that the administrator waived (免报)."""
    return {"obligation_id": world.waived_obligation_id}


# --- notifications, chat hooks, the outbox: rows the fan-out writes, inserted here as it would ----------

_ENGINES: dict[str, Any] = {}
_KEPT: dict[tuple[str, str], int] = {}
REMINDER = {"obligation": {"id": 1, "title": "矩阵测试月报", "policy_title": "矩阵测试", "period": "2026-10",
                           "due_at": "2026-11-15T23:59:59+08:00", "provisional": False, "owner_department": "信息科"},
            "link": "http://127.0.0.1:8000/inbox"}
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/2c1e0c8d-1111-2222-3333-9f0e5b6a7c8d"


def _insert(world: World, row: Any) -> int:
    """Insert a row straight into the world's database (what queue_message's fan-out would write)."""
    url = world.app.state.runtime.settings.resolved_database_url
    engine = _ENGINES.setdefault(url, sync_engine_for(url))
    with SyncSession(engine) as session:
        session.add(row)
        session.commit()
        return row.id


def fresh_notification(world: World) -> Mapping[str, object]:
    """A new in-app notification of the requester."""
    return {"notification_id": _insert(world, NotificationRow(
        event_key=f"authz:{world.number()}:huang.lei", event="obligation_reminder", person_id="huang.lei",
        context=REMINDER, created_at=clock.now()))}


def requester_notification(world: World) -> int:
    """The requester's notification the listings look for (made by `listed_objects`)."""
    return _KEPT[(world.url, "notification")]


def fresh_hook(world: World) -> Mapping[str, object]:
    """A new personal chat hook of the requester (through the API, as he would add it)."""
    answer = world.client("requester").post("/api/me/chat-hooks", json={"kind": "feishu", "url": FEISHU})
    assert answer.status_code == 201, answer.text
    return {"hook_id": answer.json()["id"]}


def requester_hook(world: World) -> int:
    """The requester's chat hook the listings look for (made by `listed_objects`)."""
    return _KEPT[(world.url, "hook")]


def listed_objects(world: World) -> None:
    """The requester's notification and chat hook, made before any listing is read."""
    _KEPT[(world.url, "notification")] = int(fresh_notification(world)["notification_id"])  # type: ignore[call-overload]
    _KEPT[(world.url, "hook")] = int(fresh_hook(world)["hook_id"])  # type: ignore[call-overload]


def fresh_dead_letter(world: World) -> Mapping[str, object]:
    """A new dead e-mail to the requester."""
    now = clock.now()
    return {"outbox_id": _insert(world, OutboxRow(
        event_key=f"authz:{world.number()}:huang.lei", event="obligation_reminder", recipient_id="huang.lei",
        to_address="huang.lei@nowhere.example", context={}, state="dead", attempts=8, last_error="550 no mailbox",
        next_attempt_at=now, created_at=now))}


PURCHASE = {"policy": "it-hardware-purchase", "form": {"items": "显示器 2台", "amount": "3000"}}
APPROVE = {"verb": "approve"}
YAML = {"Content-Type": "application/yaml"}
HOLIDAY_YEAR = 2090
SIGN_IN = {"username": "zhang.jianguo", "password": PASSWORD}
WRONG_PASSWORD = "not-the-password"

# --- the matrix ----------------------------------------------------------------------------------------

MATRIX: list[Row] = [
    # public: health checks for load balancers, the home page, the API's documentation
    public("GET /"),
    public("GET /healthz"),
    public("GET /readyz"),
    public("GET /openapi.json"),
    public("GET /docs"),
    public("GET /docs/oauth2-redirect"),
    public("GET /redoc"),
    #   route                                                    anon  req  appr other admin
    row("GET /api/me",                                            401, 200, 200, 200, 200),
    row("GET /api/policies",                                      401, 200, 200, 200, 200),
    # approver 422: a purchase he files would be routed to himself (the head of 综合管理部)
    row("POST /api/requests",                                     401, 201, 422, 201, 201, body=PURCHASE),
    row("GET /api/requests/{request_id}",                         401, 200, 200, 404, 200, params=pending_request),
    # requester 403: own request; admin 403: may see every request but is not assigned to this step
    row("POST /api/requests/{request_id}/steps/{step_id}/decision", 401, 403, 200, 404, 403,
        params=fresh_request(), body=APPROVE),
    row("GET /api/tasks",                                         401, 200, 200, 200, 200),
    row("GET /api/obligations",                                   401, 200, 200, 200, 200),
    row("GET /api/events",                                        401, 200, 200, 200, 200),
    row("GET /api/points",                                        401, 200, 200, 200, 200),
    # the hospital's policies open no obligation on an event: every signed-in caller learns that (404)
    row("POST /api/events",                                       401, 404, 404, 404, 404,
        body={"event": "case_created", "reference": "案-1"}),
    row("GET /api/mail",                                          401, 200, 200, 200, 200),
    row("GET /api/mail/{key}",                                    401, 200, 404, 404, 200, params=requester_mail),
    # requests: the list holds what the caller may see; the timeline is read like the request
    row("GET /api/requests",                                      401, 200, 200, 200, 200),
    row("GET /api/requests/{request_id}/timeline",                401, 200, 200, 404, 200, params=pending_request),
    # request verbs are the requester's: the approver and the administrator see the request (403), lin.fang not
    row("POST /api/requests/{request_id}/withdraw",               401, 200, 403, 404, 403,
        params=fresh_request(), body={"reason": "不需要了"}),
    row("POST /api/requests/{request_id}/resubmit",               401, 200, 403, 404, 403,
        params=returned_request, body={}),
    # comments: the requester and those who hold a place; the administrator sees but holds none
    row("POST /api/requests/{request_id}/comments",               401, 201, 201, 404, 403,
        params=pending_request, body={"text": "请尽快处理"}),
    # bulk approval is 200 with an answer per item (test_bulk_approval_answers_each_item_as_its_decision)
    row("POST /api/tasks/approve",                                401, 200, 200, 200, 200, body=one_task),
    # delegations: anyone gives their own; revoking is the delegator's or an administrator's
    row("GET /api/delegations",                                   401, 200, 200, 200, 200),
    row("POST /api/delegations",                                  401, 201, 201, 201, 201, body=future_delegation),
    row("DELETE /api/delegations/{delegation_id}",                401, 200, 404, 404, 200, params=fresh_delegation),
    # attachments: an unattached file is its uploader's alone (administrators included)
    row("POST /api/attachments",                                  401, 201, 201, 201, 201, files=a_text_file),
    row("GET /api/attachments/{attachment_id}",                   401, 200, 404, 404, 404, params=own_attachment),
    row("GET /api/attachments/{attachment_id}/content",           401, 200, 404, 404, 404, params=own_attachment),
    # obligations: seen by the owning department (信息科) and by administrators; ruled on by the statistics
    # office, 绩效办 and administrators (the requester sees it, so 403)
    row("GET /api/obligations/{obligation_id}",                   401, 200, 404, 404, 200, params=own_obligation),
    row("GET /api/obligations/{obligation_id}/submissions",       401, 200, 404, 404, 200, params=own_obligation),
    row("POST /api/obligations/{obligation_id}/submissions",      401, 201, 404, 404, 201,
        params=fresh_obligation, body={"attachments": [], "note": "已报送"}),
    row("POST /api/obligations/{obligation_id}/late",             401, 403, 404, 404, 200,
        params=fresh_obligation, body={"reason": "逾期未报"}),
    row("POST /api/obligations/{obligation_id}/waive",            401, 403, 404, 404, 200,
        params=fresh_obligation, body={"reason": "本月停报"}),
    # administration: the directory, policies and holiday years are read by everyone signed in; every change
    # and the role overview are for administrators (collections: 403, nothing to hide)
    row("GET /api/departments",                                   401, 200, 200, 200, 200),
    row("POST /api/departments",                                  401, 403, 403, 403, 201, body=new_department),
    row("PATCH /api/departments/{code}",                          401, 403, 403, 403, 200,
        params=fresh_department, body={"name": "矩阵测试科（改名）"}),
    row("GET /api/people",                                        401, 200, 200, 200, 200),
    row("POST /api/people",                                       401, 403, 403, 403, 201, body=new_person),
    row("GET /api/people/{person_id}",                            401, 200, 200, 200, 200, params=requester_person),
    row("PATCH /api/people/{person_id}",                          401, 403, 403, 403, 200,
        params=fresh_person, body={"title": "测试员"}),
    row("GET /api/roles",                                         401, 403, 403, 403, 200),
    row("POST /api/policies",                                     401, 403, 403, 403, 201,
        content=new_policy_text, headers=YAML),
    row("GET /api/policies/{policy_id}",                          401, 200, 200, 200, 200, params=purchase_policy),
    row("GET /api/policies/{policy_id}/versions/{version}",       401, 200, 200, 200, 200, params=purchase_policy),
    row("GET /api/holidays",                                      401, 200, 200, 200, 200),
    row("GET /api/holidays/{year}",                               401, 200, 200, 200, 200,
        params=shipped_holiday_year),
    row("PUT /api/holidays/{year}",                               401, 403, 403, 403, 201,
        params=holiday_year, content=holiday_year_text, headers=YAML),
    row("GET /api/audit/head",                                    401, 403, 403, 403, 200),
    # accounts: tokens are their owner's (an administrator may revoke anyone's)
    row("GET /api/tokens",                                        401, 200, 200, 200, 200),
    row("POST /api/tokens",                                       401, 201, 201, 201, 201, body={"name": "导出脚本"}),
    row("DELETE /api/tokens/{token_id}",                          401, 200, 404, 404, 200, params=fresh_token),
    # a wrong current password (changing a persona's password would lock it out of the other rows)
    row("PUT /api/me/password",                                   401, 422, 422, 422, 422,
        body={"current_password": WRONG_PASSWORD, "new_password": "矩阵测试-新密码-123"}),
    # the browser session's routes answer callers signed in otherwise (HTTP Basic here) with 422
    row("GET /api/session",                                       401, 422, 422, 422, 422),
    row("DELETE /api/session",                                    401, 422, 422, 422, 422),
    # notifications: everyone reads and marks their own; another's reads like a missing one (administrators too)
    row("GET /api/notifications",                                 401, 200, 200, 200, 200),
    row("GET /api/notifications/unread-count",                    401, 200, 200, 200, 200),
    row("POST /api/notifications/read-all",                       401, 200, 200, 200, 200),
    row("POST /api/notifications/{notification_id}/read",         401, 200, 404, 404, 404,
        params=fresh_notification),
    row("GET /api/me/preferences",                                401, 200, 200, 200, 200),
    row("PUT /api/me/preferences",                                401, 200, 200, 200, 200, body={"digest_at": "08:30"}),
    # chat hooks: my own under /api/me (another's: 404, administrators included); all of them for administrators
    row("GET /api/me/chat-hooks",                                 401, 200, 200, 200, 200),
    row("POST /api/me/chat-hooks",                                401, 201, 201, 201, 201,
        body={"kind": "feishu", "url": FEISHU}),
    row("DELETE /api/me/chat-hooks/{hook_id}",                    401, 200, 404, 404, 404, params=fresh_hook),
    row("GET /api/admin/chat-hooks",                              401, 403, 403, 403, 200),
    row("POST /api/admin/chat-hooks",                             401, 403, 403, 403, 201,
        body={"scope": "department", "owner": "it", "kind": "feishu", "url": FEISHU}),
    row("PATCH /api/admin/chat-hooks/{hook_id}",                  401, 403, 403, 403, 200,
        params=fresh_hook, body={"label": "矩阵测试"}),
    row("DELETE /api/admin/chat-hooks/{hook_id}",                 401, 403, 403, 403, 200, params=fresh_hook),
    # the outbox's dead letters: administrators only
    row("GET /api/admin/outbox",                                  401, 403, 403, 403, 200),
    row("POST /api/admin/outbox/{outbox_id}/resend",              401, 403, 403, 403, 200,
        params=fresh_dead_letter, body={}),
    # signing in and out: for anyone (whoever calls, the credentials in the body decide)
    public("POST /api/session", 201, body=SIGN_IN),
    public("GET /login"),
    public("POST /login", 303, form=SIGN_IN),
    public("POST /logout", 303),  # no session: nothing to end, back to the login page
    public("GET /login/oidc", 404),  # OIDC is off in the test settings: the routes do not exist
    public("GET /login/oidc/callback", 404),
    # pages: a browser without a session is sent to the login page (scripts sending credentials are answered
    # as by the API)
    row("GET /inbox",                                             303, 200, 200, 200, 200),
    row("GET /calendar",                                          303, 200, 200, 200, 200),
    row("GET /events",                                            303, 200, 200, 200, 200),
    # the hospital's policies open nothing on an event: the page says so (422) to whoever signed in
    row("POST /events",                                           303, 422, 422, 422, 422,
        form={"event": "case_created", "reference": "案-1", "occurred_at": "2026-11-20T10:00"}),
    row("GET /requests/{request_id}",                             303, 200, 200, 404, 200, params=pending_request),
    row("GET /obligations/{obligation_id}",                       303, 200, 404, 404, 200, params=own_obligation),
    # the pages' forms answer as the API does, in HTML: done → 303 back to the page; refused → the page with
    # the reason (403); not visible → 404; no session → 303 to the login page
    row("POST /requests/{request_id}/act",                        303, 303, 303, 404, 403,
        params=fresh_request(), form={"verb": "comment", "reason": "请尽快处理"}),
    row("POST /inbox/approve",                                    303, 303, 303, 303, 303, form=one_task_item),
    row("POST /obligations/{obligation_id}/submit",               303, 303, 404, 404, 303,
        params=fresh_obligation, form={"note": "已报送"}),
    row("POST /obligations/{obligation_id}/late",                 303, 403, 404, 404, 303,
        params=fresh_obligation, form={"reason": "逾期未报"}),
    row("POST /obligations/{obligation_id}/waive",                303, 403, 404, 404, 303,
        params=fresh_obligation, form={"reason": "本月停报"}),
    # 通知 and 投递: one's own notifications; the outbox page and its form for administrators (others: 403 page)
    row("GET /notifications",                                     303, 200, 200, 200, 200),
    row("POST /notifications/read-all",                           303, 303, 303, 303, 303, form=lambda w: {}),
    row("POST /notifications/{notification_id}/open",             303, 303, 404, 404, 404,
        params=fresh_notification, form=lambda w: {}),
    row("GET /admin/outbox",                                      303, 403, 403, 403, 200),
    row("POST /admin/outbox/{outbox_id}/resend",                  303, 403, 403, 403, 303,
        params=fresh_dead_letter, form=lambda w: {}),
    # 通知设置: one's own preferences and chat hooks; someone else's hook reads as missing (administrators too)
    row("GET /settings",                                          303, 200, 200, 200, 200),
    row("POST /settings/preferences",                             303, 303, 303, 303, 303,
        form=lambda w: {"lang": "zh-CN", "notify_mode": "immediate", "digest_at": "08:30"}),
    row("POST /settings/chat-hooks",                              303, 303, 303, 303, 303,
        form=lambda w: {"kind": "feishu", "url": FEISHU}),
    row("POST /settings/chat-hooks/{hook_id}/delete",             303, 303, 404, 404, 404,
        params=fresh_hook, form=lambda w: {}),
]

DECISION = "POST /api/requests/{request_id}/steps/{step_id}/decision"
SCENARIOS: list[Row] = [
    # separation of duties: an administrator who files a request may not approve it either
    scenario("the administrator's own request", DECISION, params=fresh_request("admin"), body=APPROVE,
             admin=403),
    # a decided step is 409 to those who may see the request, still 404 to those who may not
    scenario("a step decided already", DECISION, params=decided_request, body=APPROVE,
             requester=409, approver=409, other_department=404, admin=409),
    scenario("a step of another request", DECISION, params=step_of_another_request, body=APPROVE,
             approver=404, admin=404),
    # administrators see every department's obligations by their role, not by belonging to 信息科
    scenario("an obligation of 绩效办", "GET /obligations/{obligation_id}", params=foreign_obligation,
             requester=404, approver=404, other_department=404, admin=200),
    # a request that does not exist reads exactly like one you may not see
    scenario("no such request", "GET /api/requests/{request_id}", params=missing_request,
             requester=404, approver=404, other_department=404, admin=404),
    scenario("no such request", DECISION, params=missing_request, body=APPROVE,
             requester=404, approver=404, other_department=404, admin=404),
    scenario("no such request", "GET /requests/{request_id}", params=missing_request,
             requester=404, approver=404, other_department=404, admin=404),
    # the other step verbs follow the same rule as approve: the assignee acts, the others are refused
    scenario("reject", DECISION, params=fresh_request(), body={"verb": "reject", "reason": "预算不足"},
             requester=403, approver=200, other_department=404, admin=403),
    scenario("send back", DECISION, params=fresh_request(), body={"verb": "send_back", "reason": "请补充报价单"},
             requester=403, approver=200, other_department=404, admin=403),
    scenario("transfer", DECISION, params=fresh_request(), body={"verb": "transfer", "to": "zhao.weidong"},
             requester=403, approver=200, other_department=404, admin=403),
    scenario("add an approver", DECISION, params=fresh_request(),
             body={"verb": "add_approver", "people": ["zhao.weidong"], "position": "after"},
             requester=403, approver=200, other_department=404, admin=403),
    # the request verbs on a request in the wrong state: 409 to whoever may act, 404 to whoever may not see
    scenario("a pending request", "POST /api/requests/{request_id}/resubmit", params=fresh_request(), body={},
             requester=409, other_department=404),
    scenario("a request decided already", "POST /api/requests/{request_id}/withdraw", params=decided_request,
             body={}, requester=409, other_department=404),
    scenario("no such request", "POST /api/requests/{request_id}/comments", params=missing_request,
             body={"text": "在吗"}, requester=404, approver=404, admin=404),
    # a delegation the approver received: he sees it (403), but only the delegator or an administrator revokes
    scenario("a delegation the approver received", "DELETE /api/delegations/{delegation_id}",
             params=delegation_received_by_the_approver, approver=403, other_department=404, admin=200),
    # only an administrator may give a delegation in someone else's name
    scenario("in someone else's name", "POST /api/delegations",
             body=lambda w: {**future_delegation(w), "from": "he.jing"},
             requester=403, approver=403, other_department=403, admin=201),
    # a handed-in file is seen by whoever sees the obligation it was handed in for, not only its uploader
    scenario("a file handed in with a report", "GET /api/attachments/{attachment_id}", params=submitted_attachment,
             requester=200, approver=404, other_department=404, admin=200),
    scenario("a file handed in with a report", "GET /api/attachments/{attachment_id}/content",
             params=submitted_attachment, requester=200, approver=404, other_department=404, admin=200),
    # an obligation of 绩效办: hidden from the personas of other departments, whatever the verb
    scenario("an obligation of 绩效办", "GET /api/obligations/{obligation_id}", params=foreign_obligation,
             requester=404, approver=404, other_department=404, admin=200),
    scenario("an obligation of 绩效办", "POST /api/obligations/{obligation_id}/submissions",
             params=foreign_obligation, body={"attachments": []}, requester=404, approver=404, other_department=404),
    scenario("an obligation of 绩效办", "POST /api/obligations/{obligation_id}/waive", params=foreign_obligation,
             body={"reason": "本月停报"}, requester=404, approver=404, other_department=404),
    # only one's own unattached uploads can be handed in: someone else's file reads like one that does not exist
    scenario("someone else's file", "POST /api/obligations/{obligation_id}/submissions", params=fresh_obligation,
             body=lambda w: {"attachments": [w.attachment_id]}, admin=422),
    scenario("a file handed in already by someone else", "POST /api/obligations/{obligation_id}/submissions",
             params=fresh_obligation, body=lambda w: {"attachments": [w.submitted_attachment_id]}, requester=422),
    # a waived obligation reads like any other
    scenario("a waived obligation", "GET /obligations/{obligation_id}", params=waived_obligation,
             requester=200, approver=404, other_department=404, admin=200),
    scenario("a waived obligation", "GET /api/obligations/{obligation_id}", params=waived_obligation,
             requester=200, approver=404, other_department=404, admin=200),
    # an already used token id of another person: 404, like one that does not exist
    scenario("the requester's token", "DELETE /api/tokens/{token_id}", params=own_token,
             approver=404, other_department=404),
    # a wrong password: 401 for everyone, whoever calls (each row its own account, so none gets locked)
    scenario("a wrong password", "POST /api/session", body={"username": "li.ming", "password": WRONG_PASSWORD},
             anonymous=401, requester=401, approver=401, other_department=401, admin=401),
    scenario("a wrong password", "POST /login", form={"username": "chen.jing", "password": WRONG_PASSWORD},
             anonymous=401, requester=401, approver=401, other_department=401, admin=401),
]

LISTINGS: list[Listing] = [
    listing("GET /api/tasks", "the pending request", lambda w, a: w.request_id in ids_in(a, "request_id"),
            requester=False, approver=True, other_department=False, admin=False),
    listing("GET /inbox", "the pending request", lambda w, a: f'href="/requests/{w.request_id}"' in a.text,
            requester=False, approver=True, other_department=False, admin=False),
    listing("GET /api/obligations", "the requester's department's obligation",
            lambda w, a: w.obligation_id in ids_in(a), requester=True, approver=False, other_department=False,
            admin=True),
    listing("GET /calendar", "the requester's department's obligation",
            lambda w, a: f'href="/obligations/{w.obligation_id}"' in a.text,
            requester=True, approver=False, other_department=False, admin=True),
    listing("GET /api/mail", "the requester's e-mail", lambda w, a: w.mail_key in ids_in(a),
            requester=True, approver=False, other_department=False, admin=True),
    listing("GET /api/requests", "the pending request", lambda w, a: w.request_id in ids_in(a),
            requester=True, approver=True, other_department=False, admin=True),
    listing("GET /api/delegations", "the requester's delegation", lambda w, a: w.delegation_id in ids_in(a),
            requester=True, approver=False, other_department=False, admin=False),
    # `direction=all` is everyone's for administrators; anyone else gets their own, as without it
    listing("GET /api/delegations", "the requester's delegation (direction=all)",
            lambda w, a: w.delegation_id in ids_in(a), query={"direction": "all"},
            requester=True, approver=False, other_department=False, admin=True),
    listing("GET /api/tokens", "the requester's token", lambda w, a: w.token_id in ids_in(a),
            requester=True, approver=False, other_department=False, admin=False),
    # the matrix's filings give the requester many newer notifications: each list starts just before it
    listing("GET /api/notifications", "the requester's notification",
            lambda w, a: requester_notification(w) in ids_in(a),
            query=lambda w: {"before": str(requester_notification(w) + 1)},
            requester=True, approver=False, other_department=False, admin=False),
    listing("GET /notifications", "the requester's notification",
            lambda w, a: f'action="/notifications/{requester_notification(w)}/open"' in a.text,
            query=lambda w: {"before": str(requester_notification(w) + 1)},
            requester=True, approver=False, other_department=False, admin=False),
    listing("GET /api/me/chat-hooks", "the requester's chat hook", lambda w, a: requester_hook(w) in ids_in(a),
            requester=True, approver=False, other_department=False, admin=False),
]

PAGE_ANONYMOUS = {401, 303, 307}  # the pages may send anonymous people to a sign-in page instead


def _cases(rows: list[Row]) -> list[object]:
    return [pytest.param(r, persona, id=r.case_id(persona),
                         marks=[pytest.mark.xfail(reason=r.xfail[persona], strict=True)] if persona in r.xfail else [])
            for r in rows for persona in r.expect]


# --- the world -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One served app and one set of objects for the whole module (SQLite)."""
    workdir = tmp_path_factory.mktemp("authz")
    async with open_world(sqlite_copy(sqlite_template, workdir), workdir) as built:
        listed_objects(built)
        yield built


# --- the matrix against the route table ----------------------------------------------------------------

def _missing(routes: set[tuple[str, str]], rows: list[Row]) -> list[str]:
    covered = {r.route for r in rows}
    return [f"{method} {path}" for method, path in sorted(routes - covered, key=lambda r: (r[1], r[0]))]


def test_every_route_is_in_the_matrix(world: World) -> None:
    missing = _missing(app_routes(world.app), MATRIX)
    assert not missing, ("routes without a row in the authorisation matrix (add one to MATRIX in "
                         f"tests/api/test_authorisation_matrix.py): {missing}")


def test_every_row_is_a_route_that_exists(world: World) -> None:
    routes = app_routes(world.app)
    stale = [f"{r.method} {r.path}" + (f" [{r.scenario}]" if r.scenario else "")
             for r in MATRIX + SCENARIOS if r.route not in routes]
    assert not stale, f"matrix rows for routes the app does not have (renamed or removed?): {stale}"


def test_each_route_has_one_row_naming_every_persona() -> None:
    seen: set[tuple[str, str]] = set()
    for r in MATRIX:
        assert r.route not in seen, f"two rows for {r.method} {r.path}"
        seen.add(r.route)
        assert set(r.expect) == set(PERSONAS), f"{r.method} {r.path}: {sorted(r.expect)}"


def test_anonymous_callers_get_in_only_where_the_matrix_says_public() -> None:
    for r in MATRIX:
        if r.public:
            continue
        allowed = {401} if r.path.startswith("/api/") else PAGE_ANONYMOUS
        assert r.expect["anonymous"] in allowed, f"{r.method} {r.path} lets anonymous callers in but is not public"


def test_the_route_table_sees_routes_of_included_routers() -> None:
    """A new router's route shows up as missing until it has a row (the check can fail)."""
    router = APIRouter(prefix="/api/things")

    @router.post("/{thing_id}/poke")
    async def poke(thing_id: int) -> None:  # pragma: no cover - never called
        return None

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router)
    assert _missing(app_routes(app), MATRIX) == ["POST /api/things/{thing_id}/poke"]
    assert _missing(app_routes(app), [row("POST /api/things/{thing_id}/poke", 401, 200, 404, 404, 200)]) == []


# --- the statuses --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "persona"), _cases(MATRIX + SCENARIOS))
def test_status(world: World, entry: Row, persona: str) -> None:
    answer = entry.call(world, persona)
    expected = entry.expect[persona]
    assert answer.status_code == expected, f"{entry.case_id(persona)}: {answer.status_code} {answer.text[:300]}"
    if expected >= 400 and entry.path.startswith("/api/"):
        assert "error" in answer.json(), answer.text[:300]  # the one error shape, not a framework default


@pytest.mark.parametrize(("entry", "persona"),
                         [pytest.param(li, p, id=li.case_id(p),
                                       marks=[pytest.mark.xfail(reason=li.xfail[p], strict=True)] if p in li.xfail
                                       else []) for li in LISTINGS for p in li.expect])
def test_lists_show_only_what_the_persona_may_see(world: World, entry: Listing, persona: str) -> None:
    answer = world.client(persona).request(entry.method, entry.path, params=entry.params(world))
    assert answer.status_code == 200, answer.text[:300]
    assert entry.shows(world, answer) is entry.expect[persona], entry.case_id(persona)


def test_listings_are_routes_of_the_matrix() -> None:
    routes = {r.route for r in MATRIX}
    assert all((li.method, li.path) in routes for li in LISTINGS)


def test_an_administrator_cannot_approve_their_own_request(world: World) -> None:
    request_id, step_id = world.file_request("admin")
    admin = world.client("admin")
    answer = admin.post(f"/api/requests/{request_id}/steps/{step_id}/decision", json=APPROVE)
    assert answer.status_code == 403
    assert "own request" in answer.json()["error"]["message"]
    assert admin.get(f"/api/requests/{request_id}").json()["state"] == "pending"


SIGNED_IN = [p for p in PERSONAS if PERSONAS[p]]
ITEM_OUTCOME = {200: "ok", 403: "forbidden", 404: "not_found", 409: "conflict"}


@pytest.mark.parametrize("persona", SIGNED_IN)
def test_bulk_approval_answers_each_item_as_its_single_decision_would(world: World, persona: str) -> None:
    """POST /api/tasks/approve is 200 for everyone signed in; the authorisation is per item, and each item
    must come out as the decision row of the matrix says the single approval does."""
    decision, = [r for r in MATRIX if r.route == ("POST", DECISION.split()[1])]
    body = one_task(world)
    answer = world.client(persona).post("/api/tasks/approve", json=body)
    assert answer.status_code == 200, answer.text
    item, = answer.json()["items"]
    outcome = "ok" if item["ok"] else item["error"]["code"]
    assert outcome == ITEM_OUTCOME[decision.expect[persona]], item
    state = world.client("requester").get(f"/api/requests/{body['items'][0]['request_id']}").json()["state"]
    assert state == ("approved" if item["ok"] else "pending")


def test_the_directory_shows_email_addresses_to_administrators_only(world: World) -> None:
    for persona in SIGNED_IN:
        people = world.client(persona).get("/api/people", params={"limit": 500}).json()["items"]
        one = world.client(persona).get("/api/people/huang.lei").json()
        shown = any("email" in p for p in people) or "email" in one
        assert shown is (persona == "admin"), persona


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_world_runs_on_the_settings_of_the_other_tests(settings: Settings, database_url: str, tmp_path: Path,
                                                           mail: MailCatcher) -> None:
    """world.settings_for mirrors the `settings` fixture of tests/conftest.py, so the matrix tests the app as
    the other HTTP tests serve it (a setting added there, e.g. for sign-in, must be added to the world too)."""
    assert settings_for(database_url, tmp_path, mail).model_dump() == settings.model_dump()


@pytest.mark.parametrize("persona", SIGNED_IN)
def test_a_signed_in_browser_reads_and_ends_its_own_session(world: World, persona: str) -> None:
    """The browser-session routes the matrix calls with HTTP Basic (422) serve a cookie session: it reads
    itself, ending it needs its CSRF token, and afterwards the cookie opens nothing."""
    with httpx.Client(base_url=world.url, timeout=30) as browser:
        signed_in = browser.post("/api/session", json={"username": PERSONAS[persona], "password": PASSWORD})
        assert signed_in.status_code == 201, signed_in.text
        csrf = signed_in.json()["csrf_token"]
        session = browser.get("/api/session")
        assert session.status_code == 200 and session.json()["person"]["id"] == PERSONAS[persona]
        assert browser.get("/inbox").status_code == 200
        assert browser.delete("/api/session").status_code == 403  # no CSRF token
        assert browser.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
        browser.cookies.set("duly_session", signed_in.cookies["duly_session"])
        assert browser.get("/api/session").status_code == 401
        assert browser.get("/inbox").status_code == 303


def test_an_object_you_may_not_see_reads_like_one_that_does_not_exist(world: World) -> None:
    """The 404 for a hidden request says nothing a missing one would not (same code, same wording)."""
    other = world.client("other_department")
    hidden = other.get(f"/api/requests/{world.request_id}").json()["error"]
    missing = other.get("/api/requests/2000000000").json()["error"]
    assert hidden["code"] == missing["code"] == "not_found"
    assert hidden["message"].replace(str(world.request_id), "N") == missing["message"].replace("2000000000", "N")


# --- PostgreSQL: the rows whose answers depend on queries ------------------------------------------------

@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_signed_in_rows_and_listings_hold_on_postgresql(database_url: str, tmp_path: Path) -> None:
    rows = [r for r in MATRIX + SCENARIOS if not r.public]
    async with open_world(database_url, tmp_path) as pg_world:
        listed_objects(pg_world)
        wrong = [f"{r.case_id(p)}: {status} (expected {r.expect[p]})"
                 for r in rows for p in r.expect if p not in r.xfail
                 if (status := r.call(pg_world, p).status_code) != r.expect[p]]
        wrong += [li.case_id(p) for li in LISTINGS for p in li.expect if p not in li.xfail
                  if li.shows(pg_world, pg_world.client(p).request(li.method, li.path, params=li.params(pg_world)))
                  is not li.expect[p]]
    assert not wrong, wrong
