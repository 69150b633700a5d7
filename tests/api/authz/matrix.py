"""The pieces of the authorisation matrix: a row (one route, the status each persona must get, and how to
build the call), the route table of the app, and how a row becomes an HTTP call."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.api.authz.world import PERSONAS, World

Params = Callable[[World], Mapping[str, object]]
Body = Callable[[World], Any]
Files = Callable[[World], Mapping[str, Any]]
Content = Callable[[World], bytes]


def no_params(world: World) -> Mapping[str, object]:
    return {}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: Mapping[str, int]
    """Persona → status. A matrix row names all five personas; a scenario only those it is about."""
    params: Params = no_params
    """World → the path's {placeholders}. Called once per call, so it may create a fresh object."""
    body: Body | None = None
    """World → the JSON body of a state-changing call (None: no body)."""
    files: Files | None = None
    """World → multipart files (httpx's `files=`), for upload routes; with them, a dict `body` is sent as
    form fields."""
    form: Body | None = None
    """World → form fields sent url-encoded (the login form), instead of a JSON body."""
    content: Content | None = None
    """World → a raw body (a YAML upload); give its Content-Type in `headers`."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    public: bool = False
    """Answers anonymous callers (listed on purpose: health checks, the home page, the API docs)."""
    xfail: Mapping[str, str] = field(default_factory=dict)
    """Persona → why this persona's status is known to be wrong today (a bug to fix, not an expectation)."""
    scenario: str = ""
    """For a scenario: what is special about the world it acts in (shown in the test id)."""

    @property
    def route(self) -> tuple[str, str]:
        return self.method, self.path

    def call(self, world: World, persona: str) -> httpx.Response:
        """The row's call as `persona`. The personas hold no browser session: a cookie a call sets (signing
        in) is dropped afterwards, so it cannot sign the persona in for the next rows."""
        values = self.params(world)
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m[1]]), self.path)
        client = world.client(persona)
        try:
            return self._send(world, client, url)
        finally:
            client.cookies.clear()

    def _send(self, world: World, client: httpx.Client, url: str) -> httpx.Response:
        body = self.body(world) if self.body is not None else None
        options = {"params": dict(self.query), "headers": dict(self.headers)}
        if self.files is not None:
            return client.request(self.method, url, files=self.files(world), data=body, **options)
        if self.form is not None:
            return client.request(self.method, url, data=self.form(world), **options)
        if self.content is not None:
            return client.request(self.method, url, content=self.content(world), **options)
        return client.request(self.method, url, json=body, **options)

    def case_id(self, persona: str) -> str:
        return f"{self.method} {self.path} as {persona}" + (f" [{self.scenario}]" if self.scenario else "")


def _split(route: str) -> tuple[str, str]:
    method, path = route.split()
    return method.upper(), path


def row(route: str, anonymous: int, requester: int, approver: int, other_department: int, admin: int, *,
        params: Params = no_params, body: Body | Any = None, files: Files | None = None, form: Body | Any = None,
        content: Content | None = None, query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None, xfail: Mapping[str, str] | None = None) -> Row:
    """One route of the matrix: "METHOD /path", then the status for each persona in the column order
    anonymous, requester, approver, other_department, admin. `body` and `form` may be a constant or
    World → value."""
    method, path = _split(route)
    return Row(method, path, dict(anonymous=anonymous, requester=requester, approver=approver,
                                  other_department=other_department, admin=admin),
               params=params, body=_as_builder(body), files=files, form=_as_builder(form), content=content,
               query=query or {}, headers=headers or {}, xfail=xfail or {})


def public(route: str, status: int = 200, *, body: Body | Any = None, form: Body | Any = None,
           **options: Any) -> Row:
    """A route anyone may call, signed in or not (health checks, the API docs, signing in): every persona
    gets `status`."""
    method, path = _split(route)
    return Row(method, path, dict.fromkeys(PERSONAS, status), public=True, body=_as_builder(body),
               form=_as_builder(form), **options)


def scenario(description: str, route: str, *, params: Params = no_params, body: Body | Any = None,
             files: Files | None = None, form: Body | Any = None, content: Content | None = None,
             query: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
             xfail: Mapping[str, str] | None = None, **expect: int) -> Row:
    """A route called in a special world (e.g. the administrator's own request), for the personas named."""
    method, path = _split(route)
    unknown = set(expect) - set(PERSONAS)
    assert not unknown, f"unknown personas {unknown} in scenario {description!r}"
    return Row(method, path, expect, params=params, body=_as_builder(body), files=files, form=_as_builder(form),
               content=content, query=query or {}, headers=headers or {}, xfail=xfail or {}, scenario=description)


def _as_builder(body: Body | Any) -> Body | None:
    if body is None or callable(body):
        return body
    return lambda world: body


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, included routers flattened. HEAD is left out where GET is there
    (Starlette adds it to the docs routes); a mount or other route without methods is listed as ANY."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        path = context.path
        assert path is not None, f"a route without a path: {context.original_route!r}"
        methods = set(context.methods or {"ANY"})
        if "GET" in methods:
            methods.discard("HEAD")
        found.update((method, path) for method in methods)
    return found


@dataclass(frozen=True)
class Listing:
    """A list route and, per signed-in persona, whether the world's object shows up in its answer: a list
    leaks what a 404 hides unless it filters by the same rule."""

    method: str
    path: str
    shows: Callable[[World, httpx.Response], bool]
    """Is the object in this answer?"""
    expect: Mapping[str, bool]
    what: str
    query: Mapping[str, str] | Callable[[World], Mapping[str, str]] = field(default_factory=dict)
    """The query string, or a function of the world giving it (e.g. a page that starts at the object)."""
    xfail: Mapping[str, str] = field(default_factory=dict)
    """Persona → why this persona's answer is known to be wrong today."""

    def params(self, world: World) -> dict[str, str]:
        return dict(self.query(world) if callable(self.query) else self.query)

    def case_id(self, persona: str) -> str:
        return f"{self.method} {self.path} lists {self.what} to {persona}"


def listing(route: str, what: str, shows: Callable[[World, httpx.Response], bool], *, requester: bool,
            approver: bool, other_department: bool, admin: bool,
            query: Mapping[str, str] | Callable[[World], Mapping[str, str]] | None = None,
            xfail: Mapping[str, str] | None = None) -> Listing:
    method, path = _split(route)
    return Listing(method, path, shows, dict(requester=requester, approver=approver,
                                             other_department=other_department, admin=admin), what, query or {},
                   xfail or {})


def ids_in(answer: httpx.Response, key: str = "id") -> set[object]:
    """The `key` of every item of a JSON list answer ({"items": [...]} or a bare list)."""
    body = answer.json()
    items = body["items"] if isinstance(body, dict) else body
    return {item[key] for item in items}
