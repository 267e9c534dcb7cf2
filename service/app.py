"""The FastAPI application: thin routers over the shared components."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware

from service import __version__
from service.api import health
from service.api.access_log import AccessLog
from service.api.auth import RateLimiter
from service.api.errors import ERROR_RESPONSES, install_error_handlers
from service.api.gate import KeyGate
from service.api.guards import BodyLimit, Utf8Url, upload_paths
from service.api.routes import (
    assets,
    audit,
    content_check,
    content_gaps,
    hcps,
    jobs,
    keys,
    matching,
    reports,
    reviews,
    tagging,
    taxonomy,
)
from service.runtime import Components, build_components
from service.settings import Settings, get_settings
from service.web.console import mount_console


def create_app(settings: Settings | None = None, components: Components | None = None) -> FastAPI:
    """The app. Given ``components`` it uses them (and leaves closing them to the caller)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None
        app.state.components = components or await run_in_threadpool(build_components, settings or get_settings())
        app.state.components.watch_state()
        started_worker = False
        if app.state.components.settings.worker_enabled and app.state.components.worker is None:
            await run_in_threadpool(app.state.components.start_worker)
            started_worker = True
        try:
            yield
        finally:
            if started_worker and not owned:
                worker, app.state.components.worker = app.state.components.worker, None
                await run_in_threadpool(worker.close, app.state.components.settings.shutdown_grace_s / 2)
            if owned:
                await run_in_threadpool(app.state.components.close)

    configured = settings or (components.settings if components else get_settings())
    app = FastAPI(title="hcp-content", version=__version__, lifespan=lifespan,
                  description="Tags life-sciences content against a taxonomy and matches it to HCP needs.")
    app.state.rate_limiter = RateLimiter()
    install_error_handlers(app)
    app.include_router(health.router)
    for router in (assets.router, jobs.router, tagging.router, taxonomy.router, reviews.router, matching.router,
                   reports.router, audit.router, keys.router, keys.me_router, content_check.router,
                   content_gaps.router, hcps.router):
        app.include_router(router, responses=ERROR_RESPONSES)
    if configured.console_enabled:
        mount_console(app)
    # bodies past the limit get a 413 while they stream in, before anything parses or spools them; the larger
    # upload limit holds only on the routes that take files
    app.add_middleware(BodyLimit, request_limit=configured.max_request_bytes,
                       upload_limit=configured.max_upload_bytes, upload_paths=upload_paths(app))
    # outside the body limit: a request without a valid key is refused from its headers, its body never read
    app.add_middleware(KeyGate, failures_per_minute=configured.auth_failures_per_minute)
    app.add_middleware(Utf8Url)
    if configured.cors_origins:  # closed unless an operator names the origins
        app.add_middleware(CORSMiddleware, allow_origins=configured.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(AccessLog)  # outermost: every answer is logged by its route's template, never its path
    return app
