"""Serves the review console's static files at /console/ with headers that keep it self-contained."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/console"
# Scripts, styles and data from the service only; reports open in a sandboxed blob: frame and carry inline
# styles, which is why style-src allows them. Nothing may be fetched from anywhere else (no CDN).
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; frame-src blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")


def mount_console(app: FastAPI) -> None:
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="console")
    app.add_middleware(ConsoleHeaders)


class ConsoleHeaders:
    """Pure ASGI middleware: the console's own responses get its security headers; every other request passes
    straight through (as an ``@app.middleware("http")`` function it wrapped every API call in a task and a
    response stream of its own, only to look at the path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONSOLE_CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cache-Control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, with_headers)
