"""A follower process's front door (``HCP_SERVE_PROCESSES`` > 1): the rep's ranking requests are answered here,
on this process's core; every other request goes to the leader, unchanged, over its unix socket, and the
leader's answer streams back. So writes, uploads, jobs, talking points (and their follow-ups, which live in the
leader's memory) and the console all have one owner, whichever process the kernel handed the connection to."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import ErrorBody

log = logging.getLogger(__name__)

# What a follower ranks itself: reads of the vector store and the database, and the plan's audit row
SERVED_HERE = frozenset({("POST", "/v1/match"), ("POST", "/v1/panels/plan"), ("POST", "/v1/panels/plan/csv"),
                         ("GET", "/healthz"), ("GET", "/readyz")})
# Headers about one connection, not the request (RFC 9110 7.6.1); httpx and uvicorn frame bodies themselves
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                         b"transfer-encoding", b"upgrade", b"content-length", b"host"})

_LEADER = httpx.URL("http://leader")


class ForwardToLeader:
    """Pure ASGI: requests in :data:`SERVED_HERE` (and the app's lifespan) go to ``app``, the rest to the
    leader."""

    def __init__(self, app: ASGIApp, leader_socket: str) -> None:
        self.app = app
        self.leader_socket = leader_socket
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the serving loop, which its connections belong to
            self._client = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.leader_socket),
                                             timeout=None)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in SERVED_HERE:
            await self.app(scope, receive, send)
            return
        await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        client_addr = scope.get("client")
        if client_addr:
            headers.append((b"x-forwarded-for", str(client_addr[0]).encode()))
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = _LEADER.copy_with(raw_path=raw_path + (b"?" + query if query else b""))  # as the client sent it
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        client = self.client()
        request = client.build_request(scope["method"], url, headers=headers, content=body() if has_body else None)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("the leader process did not answer a forwarded %s %s: %s", scope["method"], scope["path"], exc)
            await _unavailable(send)
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in _HOP_BY_HOP - {b"content-length"}]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _unavailable(send: Send) -> None:
    body = ErrorBody(code="unavailable", message="The service's leader process is not answering; try again in a "
                     "moment.").model_dump_json().encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
