"""Idempotency-Key on state-changing calls (DESIGN invariant 3): a retry returns the first answer and
changes nothing; the same key with a different body is refused.

Every route that changes state takes `write: Write` and follows one pattern, so that the answer is stored
with its key in the very transaction that made the change (a crash cannot separate them):

    async with write() as session:
        row = await file_request(session, ...)
        answer = write.respond(await to_public(session, row), status_code=201)
    nudge(...)
    return answer

`respond` must be called inside the `async with`, once, with the status code the route declares.

How a key behaves (keys belong to the person who sent them; another person's equal key is unrelated):
- Before the route runs, `writer` looks the key up. Stored with the same method, path and body (SHA-256
  of the raw body bytes; of a form or upload, of its parsed fields and files): the stored answer is
  replayed with its status code and `Idempotent-Replayed: true`, and the route does not run.
  Stored with another method, path or body: 422 `idempotency_key_reused`.
- Two concurrent calls with one key both run; the loser's insert of the key violates its primary key when
  it commits, its whole transaction rolls back, and it answers with the winner's stored answer. A loser
  that fails earlier for a reason the winner caused (409: the step is already decided) answers the same way.
- Errors are not stored: their transaction rolled back and nothing changed, so a retry with the same key
  runs again (e.g. a 422 corrected and resent under the same key is executed).
- Stored keys are never ignored for their age; `store.idempotency.purge_idempotency_keys` deletes those
  older than seven days, after which a key may be used afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import CurrentPerson
from api.errors import error_body
from config import clock
from store.errors import InvalidInputError
from store.idempotency import find_idempotency_key
from store.tables import IdempotencyRow, PersonRow

Answer = TypeVar("Answer", bound=BaseModel | dict | list | None)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
_MAX_PATH_LENGTH = 500


class IdempotentReplay(Exception):
    """The call was answered before under its Idempotency-Key: send the stored answer again."""

    def __init__(self, row: IdempotencyRow):
        self.status_code, self.response = row.status_code, row.response
        super().__init__(f"replaying the answer stored under Idempotency-Key {row.key!r}")


class IdempotencyKeyReusedError(InvalidInputError):
    """The Idempotency-Key was already used for another call (another method, path or body)."""


def _valid_key(values: list[str]) -> str | None:
    if not values:
        return None
    problem = None
    if len(values) > 1:
        problem = "send the Idempotency-Key header once"
    elif not 1 <= len(values[0]) <= MAX_KEY_LENGTH:
        problem = f"expected 1 to {MAX_KEY_LENGTH} characters, got {len(values[0])}"
    elif not all("\x21" <= c <= "\x7e" for c in values[0]):
        problem = "expected visible ASCII characters only (no spaces, control or non-ASCII characters)"
    if problem:
        raise InvalidInputError(f"the Idempotency-Key header is not valid: {problem}", {HEADER: problem})
    return values[0]


async def _body_hash(http: Request) -> str:
    """SHA-256 of the raw body; of a form body, which FastAPI parsed (consuming the raw bytes) before the
    dependencies ran, SHA-256 over its fields in order, files by name, type and content."""
    try:
        return hashlib.sha256(await http.body()).hexdigest()
    except RuntimeError:  # "Stream consumed": a form
        pass
    digest = hashlib.sha256(b"form\0")
    for name, value in (await http.form()).multi_items():
        digest.update(name.encode() + b"\0")
        if isinstance(value, str):
            digest.update(b"text\0" + value.encode() + b"\0")
            continue
        digest.update(f"file\0{value.filename}\0{value.content_type}\0".encode())
        await value.seek(0)
        while chunk := await value.read(1 << 20):
            digest.update(chunk)
        await value.seek(0)
        digest.update(b"\0")
    return digest.hexdigest()


def _path_of(http: Request) -> str:
    query = http.url.query
    return (http.url.path + (f"?{query}" if query else ""))[:_MAX_PATH_LENGTH]


def _to_json(answer: Any) -> Any:
    if isinstance(answer, BaseModel):
        return answer.model_dump(mode="json")
    return jsonable_encoder(answer)


class Writer:
    """One state-changing call: opens its transaction and records its answer under the caller's key."""

    def __init__(self, http: Request, person: PersonRow, key: str | None = None, body_hash: str = ""):
        self.http, self.person = http, person
        self.key, self.body_hash = key, body_hash
        self.method, self.path = http.method, _path_of(http)
        self._session: AsyncSession | None = None
        self._recorded = False

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.http.app.state.runtime.write() as session:
                self._session = session
                try:
                    yield session
                finally:
                    self._session = None
        except Exception:
            # Rolled back. If a concurrent call with this key committed meanwhile (our insert of the key
            # lost, or our change lost to its change), its answer is ours too.
            if self.key is not None:
                await self._replay_if_stored()
            raise

    def respond(self, answer: Answer, status_code: int = 200) -> Answer:
        """Record `answer` as this call's result (under its Idempotency-Key, if it has one); return it."""
        if self._session is None:
            raise RuntimeError("respond() belongs inside `async with write()`")
        if self._recorded:
            raise RuntimeError("respond() once per call: a call has one answer")
        self._recorded = True
        if self.key is not None:
            self._session.add(IdempotencyRow(
                person_id=self.person.id, key=self.key, method=self.method, path=self.path,
                body_hash=self.body_hash, status_code=status_code, response=_to_json(answer), created_at=clock.now()))
        return answer

    async def _replay_if_stored(self) -> None:
        """Raise the stored answer's replay (or key reuse) if this person's key is stored; else return."""
        assert self.key is not None
        async with self.http.app.state.runtime.read_sessions() as session:
            row = await find_idempotency_key(session, self.person.id, self.key)
        if row is None:
            return
        if (row.method, row.path, row.body_hash) != (self.method, self.path, self.body_hash):
            what = "body" if (row.method, row.path) == (self.method, self.path) else f"call ({row.method} {row.path})"
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {self.key!r} was already used for another {what}; send a new key for a new call",
                {HEADER: f"already used for another {what}"})
        raise IdempotentReplay(row)


async def writer(http: Request, person: CurrentPerson,
                 idempotency_key: Annotated[str | None, Header(
                     alias=HEADER, description="Optional, 1-200 visible ASCII characters, chosen by the client per "
                                               "intended change: a retry with the same key and body returns the "
                                               "first answer and changes nothing.")] = None) -> Writer:
    key = _valid_key(http.headers.getlist(HEADER))
    if key is None:
        return Writer(http, person)
    write = Writer(http, person, key, await _body_hash(http))
    await write._replay_if_stored()
    return write


Write = Annotated[Writer, Depends(writer)]


def install(app: FastAPI) -> None:
    """Answer replays with the stored answer, and key reuse with 422 `idempotency_key_reused`."""

    async def replay(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, IdempotentReplay)
        headers = {REPLAYED_HEADER: "true"}
        if exc.status_code == 204:
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse(exc.response, status_code=exc.status_code, headers=headers)

    async def reused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IdempotencyKeyReusedError)
        return JSONResponse(error_body("idempotency_key_reused", str(exc), exc.problems), status_code=422)

    app.add_exception_handler(IdempotentReplay, replay)
    app.add_exception_handler(IdempotencyKeyReusedError, reused)
