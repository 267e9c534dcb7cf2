"""One JSON error shape for every failed request: ``{"code", "message", "details"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.refusal import Kind, Refused
from service.store.disk import is_disk_full

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
               503: "unavailable"}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None


# Documented on every API route, so the spec promises the one error shape the service sends (not FastAPI's
# default 422 body) and clients can generate one error type.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The request is malformed"),
        (401, "No API key, or an unknown or revoked one"),
        (403, "The key's role may not do this"),
        (404, "Not found (or not visible to this key)"),
        (409, "Conflicts with what is stored"),
        (413, "The request or a file in it is too large"),
        (415, "The body's media type is not accepted"),
        (422, "A parameter or the body is invalid"),
        (429, "Too many requests for this key, or too many unknown keys from this address"),
        (503, "A component the request needs (database, vector store, LLM) is unavailable"),
        (507, "The server's disk is under its free-space reserve (or full): nothing was stored"),
    )
}


class ApiError(Exception):
    """Raise from a route to answer ``status`` with a machine-readable ``code``."""

    def __init__(self, status: int, code: str, message: str, details: Any | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers


# what a stage's refusal (``service.core.refusal``) answers
REFUSED_STATUS: dict[Kind, int] = {"not_found": 404, "conflict": 409, "invalid": 422, "no_space": 507,
                                    "unavailable": 503}


def _body(code: str, message: str, details: Any | None = None) -> dict[str, Any]:
    return ErrorBody(code=code, message=message, details=details).model_dump()


# what a database that cannot be reached raises: answered 503 ``database_unavailable``, by a route's handler or
# by the key gate in front of the app
DATABASE_DOWN = (OperationalError, InterfaceError, SqlPoolTimeout)


def database_unavailable(where: str, exc: Exception) -> ApiError:
    # the session rolled back, so nothing was half-written; the pool pings connections, so the first
    # request after the database returns succeeds again
    log.error("database unavailable (%s): %s", where, exc.__class__.__name__)
    return ApiError(503, "database_unavailable", f"The database ({where}) is unavailable; nothing was changed. Try "
                    "again shortly.", {"component": "database"}, headers={"Retry-After": "5"})


def error_response(err: ApiError) -> JSONResponse:
    """The answer to ``err``: from a route's handler, or sent as is by a middleware in front of the app."""
    return JSONResponse(_body(err.code, err.message, err.details), status_code=err.status, headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, exc.details), status_code=REFUSED_STATUS[exc.kind])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in exc.errors()]
        return JSONResponse(_body("invalid_request", "The request does not match the expected format.", details),
                            status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(SqlPoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        if is_disk_full(exc):  # the database is there, its disk is not: a 507, and the session rolled back
            log.error("database write refused: the disk is full")
            return error_response(ApiError(507, "insufficient_storage", "The server's disk is full: nothing from "
                                           "this request was stored. Try again once space is freed."))
        return error_response(database_unavailable(request.app.state.components.db.describe(), exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never leak a stack trace to a client; the log has it.
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(_body("internal_error", "Something went wrong on our side; it has been logged."),
                            status_code=500)
