"""One error shape for every failure: {"error": {"code", "message", "problems"}}; no tracebacks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

log = logging.getLogger("duly.api")


def error_body(code: str, message: str, problems: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "problems": problems or {}}}


_TRANSIENT_SQLSTATES = {"40P01", "40001", "55P03"}  # deadlock, serialization failure, lock not available


def _transient(exc: DBAPIError) -> bool:
    """Errors a retry can cure: PostgreSQL deadlocks and serialization failures, SQLite's busy lock."""
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig)


def install_error_handlers(app: FastAPI) -> None:
    def handler(status: int, code: str):  # type: ignore[no-untyped-def]
        async def handle(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(error_body(code, str(exc), getattr(exc, "problems", None)), status_code=status)
        return handle

    app.add_exception_handler(NotFoundError, handler(404, "not_found"))
    app.add_exception_handler(ForbiddenError, handler(403, "forbidden"))
    app.add_exception_handler(ConflictError, handler(409, "conflict"))
    app.add_exception_handler(InvalidInputError, handler(422, "invalid"))

    async def integrity(_: Request, exc: Exception) -> JSONResponse:
        log.warning("integrity error answered 409: %s", exc)
        return JSONResponse(error_body("conflict", "this conflicts with data stored meanwhile; reload and try again"),
                            status_code=409)

    app.add_exception_handler(IntegrityError, integrity)

    async def database(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        if _transient(exc):
            log.warning("transient database error answered 503: %s", exc)
            return JSONResponse(error_body("busy", "the database is busy; try again in a moment"), status_code=503,
                                headers={"Retry-After": "1"})
        log.exception("database error", exc_info=exc)
        return JSONResponse(error_body("error", "internal error; it has been logged"), status_code=500)

    app.add_exception_handler(DBAPIError, database)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = {".".join(str(p) for p in e["loc"] if p != "body") or "body": e["msg"] for e in exc.errors()}
        return JSONResponse(error_body("invalid", "the request body is not valid", problems), status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {401: "unauthorised", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    app.add_exception_handler(StarletteHTTPException, http)
