"""Liveness and readiness probes (no API key: orchestrators call them)."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.api.deps import ComponentsDep
from service.runtime import Components

router = APIRouter(tags=["health"])

Status = Literal["ok", "down", "disabled"]


class ComponentStatus(BaseModel):
    status: Status
    latency_ms: float | None = None
    error: str | None = None
    details: dict[str, Any] = {}


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    down: list[str]
    components: dict[str, ComponentStatus]


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
        return {"dialect": c.db.dialect, "url": c.db.describe()}

    result = {"embedder": _timed(embedder), "vector_store": _timed(vector_store), "database": _timed(database)}
    if c.llm is None:
        result["llm"] = ComponentStatus(status="disabled", details={"mode": "off"})
    else:
        llm = c.llm

        def ping_llm() -> dict[str, Any]:
            llm.with_timeout(5.0).ping()
            return {"endpoint": llm.base_url, "model": llm.model, "mode": c.settings.effective_llm_mode,
                    "structured_output": llm.structured_mode}

        result["llm"] = _timed(ping_llm)
        result["llm"].details.setdefault("endpoint", llm.base_url)
        result["llm"].details.setdefault("model", llm.model)
    return result


@router.get("/readyz", response_model=Readiness, summary="Every component is usable",
            responses={503: {"model": Readiness, "description": "At least one component is down"}})
async def readyz(components: ComponentsDep) -> JSONResponse:
    checks = await run_in_threadpool(check_components, components)
    down = [name for name, state in checks.items() if state.status == "down"]
    body = Readiness(status="unavailable" if down else "ready", down=down, components=checks)
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)
