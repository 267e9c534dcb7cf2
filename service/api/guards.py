"""Guards in front of the app: URLs must be UTF-8, and the request-body limit holds while the body streams in,
so a client cannot make the service parse (or spool to disk) more than it will ever accept. Multipart uploads
get their own, larger limit.

Starlette ships a body limiter, but it answers in plain text (and replaces any response to an oversized
declared body with it); this one answers with the service's JSON error body like every other refusal."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import ApiError, error_response


class Utf8Url:
    """400 ``invalid_encoding`` for a path or query string that percent-decodes to invalid UTF-8 (the server
    would otherwise turn the bytes into U+FFFD and search for that)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            try:
                for part in (raw_path, scope.get("query_string", b"")):
                    unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                await error_response(ApiError(400, "invalid_encoding", "The URL is not valid UTF-8 once "
                                              "percent-decoded."))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def upload_paths(app: FastAPI) -> frozenset[str]:
    """The paths of the routes that take files (a multipart request body in the API's own contract, the OpenAPI
    spec): the only ones a multipart body may be larger on."""
    return frozenset(path for path, operations in app.openapi().get("paths", {}).items()
                     if any("multipart/form-data" in op.get("requestBody", {}).get("content", {})
                            for op in operations.values() if isinstance(op, dict)))


class BodyLimit:
    """Pure ASGI middleware: 413 ``payload_too_large`` past ``request_limit`` (``upload_limit`` for a multipart
    body sent to one of ``upload_paths``: any other route gets the request limit, whatever its Content-Type)."""

    def __init__(self, app: ASGIApp, request_limit: int, upload_limit: int, upload_paths: frozenset[str]) -> None:
        self.app, self.request_limit, self.upload_limit = app, request_limit, upload_limit
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = (scope["path"] in self.upload_paths
                     and headers.get("content-type", "").lower().startswith("multipart/"))
        limit = self.upload_limit if multipart else self.request_limit

        async def refuse() -> None:  # built only for a refused request, not on every one
            await error_response(ApiError(
                413, "payload_too_large", f"The request body is larger than the {limit:,}-byte limit "
                f"({'HCP_MAX_UPLOAD_BYTES' if multipart else 'HCP_MAX_REQUEST_BYTES'}).",
                {"limit_bytes": limit}))(scope, receive, send)

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refuse()
            return

        received, exceeded, answered = 0, False, False

        async def counted() -> Message:
            # a chunked body declares no length: past the limit the app sees the client leave, whatever it then
            # answers is replaced by the 413 below
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if not exceeded:
                await send(message)
            elif not answered:
                answered = True
                await refuse()

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded or answered:
                raise
        if exceeded and not answered:
            await refuse()
