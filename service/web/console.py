"""Serves the review console's static files at /console/ with headers that keep it self-contained."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/console"
# Scripts, styles and data from the service only; reports open in a sandboxed blob: frame and carry inline
# styles, which is why style-src allows them. Nothing may be fetched from anywhere else (no CDN).
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; frame-src blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")


def mount_console(app: FastAPI) -> None:
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="console")

    @app.middleware("http")
    async def console_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            response.headers["Content-Security-Policy"] = CONSOLE_CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-cache"
        return response
