"""The access log: one line a request, naming the route's template, never its path or query.

uvicorn's own access log writes the path as sent: HCP ids (``/v1/opt-outs/hcp-123``, ``/v1/hcps/.../profile``)
and search text (``?q=``) ended up in every log a deployment keeps. This one writes ``/v1/opt-outs/{hcp_id}``;
a request refused before routing (no key, a guessed path) is written as ``(unrouted)``."""

from __future__ import annotations

import logging
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("hcp.access")


class AccessLog:
    """Pure ASGI middleware, outermost, so it times and records every answer, refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started, status = perf_counter(), 0

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            client = scope.get("client")
            # the router writes the matched route into the scope it was given, which is this one
            template = getattr(scope.get("route"), "path", None) or "(unrouted)"
            log.info('%s - "%s %s" %d %.1f ms', client[0] if client else "-", scope["method"], template,
                     status or 500, (perf_counter() - started) * 1000)
