"""The authorisation matrix: every route of the app × five personas, and the status each must get.

Personas (tests/api/authz/world.py): anonymous; requester (huang.lei, who filed the world's pending request);
approver (liu.yang, to whom that request's open step is assigned); other_department (lin.fang, 医务部, no role
over it); admin. Rules the matrix pins down: anonymous callers get 401 on every route not listed as public;
an object someone may not see answers 404 (never 403, so its existence does not leak); nobody decides their
own request, administrators included.

HOW TO ADD A ROUTE'S ROW (test_every_route_is_in_the_matrix fails, naming the missing "METHOD /path"):
add one line to MATRIX below,

    row("POST /api/requests/{request_id}/withdraw", 401, 200, 403, 404, 403,
        params=fresh_request(), body={"reason": "不需要了"}),

- the statuses, in the column order anonymous, requester, approver, other_department, admin;
- `params`: World → the path's {placeholders} (ready: `pending_request`, `fresh_request()`, `own_obligation`,
  `requester_mail`, or write a two-line function). A call that changes state gets a fresh object per call
  (`fresh_request()` files a new request each time), so the rows do not depend on their order;
- `body`: a minimal valid JSON body (a constant, or World → body) for POST/PUT/PATCH;
- `files`: World → multipart files for an upload (then a dict `body` goes as form fields); `query`, `headers`;
- a route anyone may call: `public("GET /path")`; a known bug: `xfail={"persona": "why"}` (strict).
An object the world lacks (a delegation, an attachment...) goes into `open_world` in tests/api/authz/world.py.
A special situation (the administrator's own request, a decided step) is a `scenario(...)` in SCENARIOS.
A list route also gets a `listing(...)` in LISTINGS: who finds the world's object in its answer (a list must
filter by the rule that makes the object's own route answer 404).

The whole matrix runs on SQLite against one server per module; the non-public rows run again on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from tests.api.authz.matrix import Listing, Row, app_routes, ids_in, listing, public, row, scenario
from tests.api.authz.world import PERSONAS, World, open_world, sqlite_copy

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


PURCHASE = {"policy": "it-hardware-purchase", "form": {"items": "显示器 2台", "amount": "3000"}}
APPROVE = {"verb": "approve"}

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
    row("GET /api/mail",                                          401, 200, 200, 200, 200),
    row("GET /api/mail/{key}",                                    401, 200, 404, 404, 200, params=requester_mail),
    # pages: HTTP Basic like the API, so anonymous is 401 (the browser asks for a password)
    row("GET /inbox",                                             401, 200, 200, 200, 200),
    row("GET /calendar",                                          401, 200, 200, 200, 200),
    row("GET /requests/{request_id}",                             401, 200, 200, 404, 200, params=pending_request),
    row("GET /obligations/{obligation_id}",                       401, 200, 404, 404, 200, params=own_obligation),
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
                         [pytest.param(li, p, id=li.case_id(p)) for li in LISTINGS for p in li.expect])
def test_lists_show_only_what_the_persona_may_see(world: World, entry: Listing, persona: str) -> None:
    answer = world.client(persona).request(entry.method, entry.path, params=dict(entry.query))
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
        wrong = [f"{r.case_id(p)}: {status} (expected {r.expect[p]})"
                 for r in rows for p in r.expect if p not in r.xfail
                 if (status := r.call(pg_world, p).status_code) != r.expect[p]]
        wrong += [li.case_id(p) for li in LISTINGS for p in li.expect
                  if li.shows(pg_world, pg_world.client(p).request(li.method, li.path, params=dict(li.query)))
                  is not li.expect[p]]
    assert not wrong, wrong
