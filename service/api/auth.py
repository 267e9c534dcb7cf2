"""API-key authentication, role checks and the per-key rate limit, as FastAPI dependencies.

401 means "who are you?" (no key, unknown or revoked key); 403 means "you may not" (the key's role lacks
the permission). A key is read from ``Authorization: Bearer <key>`` or ``X-API-Key``."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.auth.keys import Principal, verify_key
from service.auth.roles import Permission, allows
from service.runtime import Components
from service.store import rate_limits
from service.store.visibility import Scope


class RateLimiter:
    """A sliding one-minute window per key, in this process (the default on SQLite with one serving process;
    otherwise keys are counted in the database: :mod:`service.store.rate_limits`)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str, per_minute: int) -> float | None:
        """None when allowed; else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key_id, deque())
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= per_minute:
                return max(0.0, 60.0 - (now - hits[0]))
            hits.append(now)
            return None

    def waiting(self, key_id: str, per_minute: int) -> float | None:
        """The seconds ``key_id`` must still wait, without counting a hit; None when it may go on."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key_id)
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if hits is None or len(hits) < per_minute:
                return None
            return max(0.0, 60.0 - (now - hits[0]))


def shared_rate_limit(components: Components) -> bool:
    """Whether keys are counted in the database (across replicas) rather than in this process."""
    configured = components.settings.rate_limit_shared
    if configured is not None:
        return configured
    return components.db.dialect == "postgresql" or components.settings.serve_processes > 1


async def _rate_check(request: Request, components: Components, key_id: str) -> float | None:
    per_minute = components.settings.rate_limit_per_minute
    if shared_rate_limit(components):
        return await run_in_threadpool(rate_limits.take, components.db, key_id, per_minute)
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter.check(key_id, per_minute)


def presented_key(headers: Headers) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``, or None."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return headers.get("x-api-key") or None


async def current_principal(request: Request, components: ComponentsDep) -> Principal:
    # the key gate (service.api.gate) verified the key before the body was read; without it, verify here
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        presented = presented_key(request.headers)
        if presented is None:
            raise ApiError(401, "missing_api_key", "This endpoint needs an API key: send `Authorization: Bearer "
                           "<key>` or `X-API-Key: <key>`.")
        principal = await run_in_threadpool(verify_key, components.db, presented)
        if principal is None:
            raise ApiError(401, "invalid_api_key", "The API key is unknown or has been revoked.")
    wait = await _rate_check(request, components, principal.key_id)
    if wait is not None:
        raise ApiError(429, "rate_limited", f"Too many requests for this key; try again in {wait:.0f} s.",
                       {"retry_after_s": round(wait, 1)}, headers={"Retry-After": str(max(1, round(wait)))})
    request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[..., object]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not allows(principal.role, permission):
            raise ApiError(403, "forbidden", f"A key with role '{principal.role}' may not do this "
                           f"(needs permission '{permission}').")
        return principal
    return dependency


def scope_of(principal: Principal, components: Components) -> Scope | None:
    """The caller's scope against the active taxonomy (None: unscoped). Read from the key on every request,
    so a scope change applies from the key's next request."""
    return principal.scope.resolve(components.tagger.taxonomy)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
