"""Liveness and readiness probes (no API key: orchestrators call them).

Without a key ``/readyz`` tells states only (ok, degraded, unavailable and which component is down): the paths,
endpoints, models and errors behind them are for an admin key, which sees them all."""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.api.auth import presented_key
from service.api.deps import ComponentsDep
from service.auth.keys import verify_key
from service.llm.client import LLMError
from service.runtime import Components

router = APIRouter(tags=["health"])

Status = Literal["ok", "down", "disabled"]
# the service cannot answer without these; storage: the data volume under its free-space reserve (nothing new can
# be stored, and a load balancer should send the traffic elsewhere)
REQUIRED = ("database", "vector_store", "embedder", "storage")


class ComponentStatus(BaseModel):
    status: Status
    latency_ms: float | None = None
    error: str | None = None
    details: dict[str, Any] | None = None


class Serving(BaseModel):
    taxonomy: str = Field(description="`id@version` of the taxonomy this process tags and matches with.")
    model_generation: int | None = Field(description="The model generation (heads and calibration from a retrain) "
                                         "this process tags with; null: none trained for this taxonomy yet.")
    process: int = Field(description="This serving process's id (one of HCP_SERVE_PROCESSES).")


class Readiness(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(description=(
        "`ok`: every component works. `degraded` (HTTP 200): the LLM is unreachable, so tagging and talking "
        "points fall back to the other signals and extractive points. `unavailable` (HTTP 503): the database, "
        "the vector store or the embedder is down, the data volume is under its free-space reserve (`storage`), "
        "or the LLM is down with `HCP_LLM_REQUIRED`."))
    down: list[str]
    components: dict[str, ComponentStatus] = Field(description="Each component's state; its latency, error and "
                                                   "details only for an admin key.")
    serving: Serving | None = Field(None, description="What this process serves (admin key only); replicas and the "
                                    "worker follow the database's active taxonomy and newest generation within "
                                    "`HCP_STATE_CHECK_S`.")


class Liveness(BaseModel):
    status: Literal["alive"]


@router.get("/healthz", response_model=Liveness, summary="The process is alive")
async def healthz() -> Liveness:
    return Liveness(status="alive")


def _timed(check: Any) -> ComponentStatus:
    started = time.perf_counter()
    try:
        details = check()
    except Exception as exc:  # each probe reports its own failure; none hides the others
        return ComponentStatus(status="down", error=str(exc)[:300],
                               latency_ms=round((time.perf_counter() - started) * 1000, 2))
    return ComponentStatus(status="ok", details=details, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def llm_status(c: Components) -> ComponentStatus:
    """The LLM, probed cheaply and never counted down for being busy. A call running through the gateway proves
    the server is up (and a model list would only queue behind it: llama.cpp answers one request at a time);
    otherwise the model list is asked with a short timeout. A server that takes the connection but not the
    question in time is busy (with someone else's work); one that refuses it, or is not there, is down."""
    if c.llm is None:
        return ComponentStatus(status="disabled", details={"mode": "off"})
    gateway = c.llm
    details: dict[str, Any] = {"endpoint": gateway.base_url, "model": gateway.model,
                               "mode": c.settings.effective_llm_mode, "structured_output": gateway.structured_mode,
                               "required": c.settings.llm_required, "gateway": gateway.snapshot()}
    started = time.perf_counter()

    def status(state: Status, activity: str, error: str | None = None) -> ComponentStatus:
        return ComponentStatus(status=state, error=error, details={**details, "activity": activity},
                               latency_ms=round((time.perf_counter() - started) * 1000, 2))

    if gateway.closed:
        return status("down", "stopped", "the service is shutting down")
    if c.llm_server is not None and not c.llm_server.is_running():
        return status("down", "stopped", "the local LLM server process has exited")
    if gateway.busy():
        return status("ok", "busy")
    try:
        gateway.client.with_timeout(c.settings.llm_probe_timeout_s).ping()
    except LLMError as err:
        if err.code == "llm_timeout":
            return status("ok", "busy")
        return status("down", "unreachable", str(err))
    return status("ok", "idle")


def check_components(c: Components) -> dict[str, ComponentStatus]:
    def embedder() -> dict[str, Any]:
        vector = c.embedder.embed_query("readiness probe")
        if vector.shape[0] != c.embedder.dim:
            raise RuntimeError(f"embedder returned {vector.shape[0]} dimensions, expected {c.embedder.dim}")
        return {"model": c.embedder.name, "dim": c.embedder.dim}

    def vector_store() -> dict[str, Any]:
        return c.vectors.info()

    def database() -> dict[str, Any]:
        c.db.ping()
        c.db.check_writable()  # reads alone are not ready: every request writes (audit, jobs, key use)
        return {"dialect": c.db.dialect, "url": c.db.describe()}

    def storage() -> dict[str, Any]:
        refused = c.disk.problem("uploads, ingest and events are refused")
        if refused is not None:
            raise RuntimeError(f"{refused.code}: {refused.message}")
        return c.disk.describe()

    return {"embedder": _timed(embedder), "vector_store": _timed(vector_store), "database": _timed(database),
            "storage": _timed(storage), "llm": llm_status(c)}


@router.get("/readyz", response_model=Readiness, summary="Whether the service can answer, and how well",
            responses={503: {"model": Readiness, "description": "A component the service needs is down"}})
async def readyz(request: Request, components: ComponentsDep) -> JSONResponse:
    checks = await run_in_threadpool(check_components, components)
    down = [name for name, state in checks.items() if state.status == "down"]
    required = (*REQUIRED, "llm") if components.settings.llm_required else REQUIRED
    status = "unavailable" if set(down) & set(required) else "degraded" if down else "ok"
    if await run_in_threadpool(_is_admin, components, request):
        serving = Serving(taxonomy=components.tagger.taxonomy.key, model_generation=components.tagger.generation,
                          process=os.getpid())
        told = Readiness(status=status, down=down, components=checks,  # type: ignore[arg-type]
                         serving=serving).model_dump()
    else:  # states only: the nulls of what is left out are left out too
        states = {name: ComponentStatus(status=state.status) for name, state in checks.items()}
        told = Readiness(status=status, down=down, components=states).model_dump(  # type: ignore[arg-type]
            exclude_none=True)
    return JSONResponse(told, status_code=503 if status == "unavailable" else 200)


def _is_admin(components: Components, request: Request) -> bool:
    presented = presented_key(request.headers)
    if presented is None:
        return False
    try:
        principal = verify_key(components.db, presented)
    except Exception:  # a database that is down is the answer's own subject, not a reason to fail it
        return False
    return principal is not None and principal.role == "admin"
