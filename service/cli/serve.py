"""Long-running commands: the API (``serve``), the job worker on its own, the local LLM server on its own."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.app import app, console, setup_logging
from service.cli.content import queue_llm_retag, run_ingest
from service.settings import get_settings

if TYPE_CHECKING:
    import uvicorn

    from service.runtime import Components


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HCP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default HCP_PORT).")] = None,
    ingest: Annotated[Path | None, typer.Option(help="Ingest this content folder before serving "
                                                "(unchanged files cost nothing).")] = None,
    synthetic_engagement: Annotated[bool, typer.Option(help="With --ingest: also load the samples' SYNTHETIC "
                                                       "engagement (2,000 synthetic doctors, 90 days; `make run` "
                                                       "does), so profiles and suggestions by HCP id work at once.")]
    = False,
) -> None:
    """Start the API: migrate the database, start the local LLM if configured, then serve."""
    settings = get_settings()
    if settings.serve_processes > 1 and settings.effective_vector_backend == "qdrant-edge":
        console.print("[red]HCP_SERVE_PROCESSES above 1 needs stores that several processes share[/red]: "
                      "PostgreSQL + pgvector (HCP_DATABASE_URL=postgresql://..., HCP_VECTOR_BACKEND=pgvector) or a "
                      "Qdrant server (HCP_QDRANT_URL). The embedded vector store belongs to one process.")
        raise typer.Exit(2)
    import uvicorn

    from service.app import create_app
    from service.cli.http_protocol import PROTOCOL
    from service.llm.model_files import local_model_path
    from service.runtime import build_components

    setup_logging(settings)
    if settings.effective_llm_mode == "local" and not local_model_path(settings).is_file():
        console.print(f"[red]The local LLM model {local_model_path(settings)} is missing.[/red] "
                      "Run `hcp-content models prepare` (make run does), point HCP_LLM_BASE_URL at an "
                      "endpoint, or set HCP_LLM_MODE=off.")
        raise typer.Exit(2)
    # uvicorn installs its own SIGTERM handler while it serves; before that, _main's handler applies.
    components = build_components(settings)
    try:
        _bootstrap_admin_key(components)
        if ingest is not None:
            from service.ingest import Ingestor

            # tagged quickly without the LLM so the service is useful at once; the LLM then refines the
            # new assets' tags in a background job (cached: an unchanged asset costs no tokens next time)
            ingestor = Ingestor.from_settings(components.db, components.vectors, components.embedder, settings,
                                              tagger=components.tagger, tagging_mode="learned")
            outcomes = run_ingest(ingestor, ingest, [])
            queue_llm_retag(components, [o.asset_id for o in outcomes
                                          if o.asset_id and o.status in ("created", "new_version")])
            if synthetic_engagement:
                from service.cli.engagement import SYNTHETIC_SAMPLES, synthetic_folder
                from service.engagement.synthetic_load import load_synthetic

                loaded = load_synthetic(components.db, synthetic_folder(SYNTHETIC_SAMPLES, synthetic_items=0),
                                        components.tagger.taxonomy, components.engagement_rules,
                                        settings.event_retention_days)
                console.print(f"SYNTHETIC engagement: {loaded['doctors']} synthetic doctors, {loaded['events']} new "
                              "events (try GET /v1/hcps/hcp-s00867/profile)")
        console.print(f"hcp-content on http://{host or settings.host}:{port or settings.port} "
                      f"(embedder {components.embedder.name}, store {components.vectors.backend}, "
                      f"database {components.db.dialect}, LLM {components.llm.model if components.llm else 'off'}, "
                      f"{settings.serve_processes} process{'es' if settings.serve_processes > 1 else ''})")
        if settings.serve_processes > 1:
            _serve_processes(components, host or settings.host, port or settings.port)
        else:
            config = uvicorn.Config(create_app(settings, components), host=host or settings.host,
                                    port=port or settings.port, log_level=settings.log_level, http=PROTOCOL,
                                    access_log=False,  # service.api.access_log writes route templates instead
                                    timeout_graceful_shutdown=settings.shutdown_grace_s)  # type: ignore[arg-type]
            _graceful_server(config, components).run()
    except KeyboardInterrupt:
        pass
    finally:
        components.close(timeout_s=settings.shutdown_grace_s / 2)


def _graceful_server(config: uvicorn.Config, components: Components) -> uvicorn.Server:
    """uvicorn's server, told on the signal itself to call off the LLM and stop the worker, so requests in
    flight answer at once (with their fallback, or a 503) and the graceful wait is not spent on an LLM call."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                components.begin_shutdown()
            super().handle_exit(sig, frame)

    return Server(config)


def _serve_processes(components: Components, host: str, port: int) -> None:
    """``HCP_SERVE_PROCESSES`` processes on one port (uvicorn's workers), each building its own components over
    the stores they share and running its own job worker (a job is leased, so one worker runs it). This process
    migrated the database, wrote the first admin key, ingested and started the local LLM; the workers are told
    so through their environment, and ask that LLM."""
    import uvicorn

    from service.cli.http_protocol import PROTOCOL

    settings = components.settings
    os.environ["HCP_MIGRATE_ON_START"] = "false"
    if components.llm is not None and components.llm_server is not None:
        os.environ.update({"HCP_LLM_MODE": "remote", "HCP_LLM_BASE_URL": components.llm.base_url,
                           "HCP_LLM_MODEL": components.llm.model})
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, workers=settings.serve_processes,
                log_level=settings.log_level, http=PROTOCOL, access_log=False,
                timeout_graceful_shutdown=int(settings.shutdown_grace_s))


def _bootstrap_admin_key(components: Components) -> None:
    """A fresh install has no keys: write one admin key to a 0600 file (never to the log)."""
    from service.auth.keys import create_key, has_active_admin

    if has_active_admin(components.db):
        return
    path = components.settings.resolved_admin_key_file
    with components.db.session() as s:
        created = create_key(s, "admin", "bootstrap admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(created.secret + "\n")
    console.print(f"No API keys existed: an admin key (id {created.principal.key_id}) was written to {path}. "
                  "Create role keys with `hcp-content keys create --role ...`.")


@app.command()
def worker() -> None:
    """Run the background job worker on its own (for deployments whose API replicas set HCP_WORKER_ENABLED=false)."""
    import threading

    from service.runtime import build_components

    settings = get_settings()
    setup_logging(settings)
    components = build_components(settings)
    try:
        components.start_worker()
        components.watch_state()
        console.print("worker running; Ctrl-C to stop")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        components.close()


@app.command("llm-server")
def llm_server() -> None:
    """Run only the local LLM server (foreground), on HCP_LLM_LOCAL_PORT or a free port."""
    from service.runtime import start_local_llm

    server = None
    try:
        # everything after the start inside the try: a SIGTERM landing while the ready line prints
        # must still stop the server (it once did not, and the server outlived the command)
        server = start_local_llm(get_settings())
        console.print(f"LLM server ready at {server.base_url} (Ctrl-C stops it)")
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
