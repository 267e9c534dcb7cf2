"""The key is checked before the body is read: a request to the API (``/v1/...``) that presents no key, or one
that is unknown or revoked, is answered 401 from its headers alone, so an outsider without a key costs the
service one key lookup and never a byte of body stored or parsed. The principal found is kept in the request's
state, where :func:`service.api.auth.current_principal` takes it, so a key is verified once per request.

An address that presents ``HCP_AUTH_FAILURES_PER_MINUTE`` unknown keys within a minute is answered 429 for the
rest of that minute whatever key it presents, so keys cannot be guessed at the server's speed. (Behind a proxy
every client shares the proxy's address: raise the limit, or 0 turns it off.) A request with no key at all
costs nothing to refuse and is not counted."""

from __future__ import annotations

import logging

from anyio import to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.auth import RateLimiter, presented_key
from service.api.errors import DATABASE_DOWN, ApiError, database_unavailable, error_response
from service.auth.keys import verify_key

API_PREFIX = "/v1/"
log = logging.getLogger(__name__)


class KeyGate:
    """Pure ASGI middleware: 401 (``missing_api_key``, ``invalid_api_key``) or 429 (``auth_rate_limited``)
    before the app, and so before the body, for every API route."""

    def __init__(self, app: ASGIApp, failures_per_minute: int) -> None:
        self.app, self.failures_per_minute = app, failures_per_minute
        self.failures = RateLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        presented = presented_key(Headers(scope=scope))
        if presented is None:
            await _refuse(scope, receive, send, 401, "missing_api_key", "This endpoint needs an API key: send "
                          "`Authorization: Bearer <key>` or `X-API-Key: <key>`.")
            return
        address = f"address:{(scope.get('client') or ('?',))[0]}"
        limited = self.failures_per_minute > 0
        wait = self.failures.waiting(address, self.failures_per_minute) if limited else None
        if wait is not None:
            await _refuse(scope, receive, send, 429, "auth_rate_limited", "Too many unknown API keys from this "
                          f"address; try again in {wait:.0f} s.", {"Retry-After": str(max(1, round(wait)))})
            return
        db = scope["app"].state.components.db
        try:
            principal = await to_thread.run_sync(verify_key, db, presented)
        except DATABASE_DOWN as exc:  # in front of the app's handlers: answered here as they would
            await error_response(database_unavailable(db.describe(), exc))(scope, receive, send)
            return
        except Exception:
            log.exception("the key check failed")
            await _refuse(scope, receive, send, 500, "internal_error", "Something went wrong on our side; it has "
                          "been logged.")
            return
        if principal is None:
            if limited:
                self.failures.check(address, self.failures_per_minute)
            await _refuse(scope, receive, send, 401, "invalid_api_key", "The API key is unknown or has been revoked.")
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                  headers: dict[str, str] | None = None) -> None:
    await error_response(ApiError(status, code, message, headers=headers))(scope, receive, send)
