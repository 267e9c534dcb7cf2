"""Content commands: ingest a repository or feeds, tag a file without storing it, rebuild the vectors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from service.cli.app import app, console
from service.settings import get_settings

if TYPE_CHECKING:
    from service.ingest import Ingestor, IngestOutcome
    from service.runtime import Components


def queue_llm_retag(components: Components, asset_ids: list[str]) -> None:
    from service.tagging.result import LLM_MODES

    if not asset_ids or components.llm is None or components.tagger.default_mode not in LLM_MODES:
        return
    from service.jobs.queue import create_retag_job

    create_retag_job(components.db, ("cli", "admin"), components.tagger.taxonomy.key, None, asset_ids)
    console.print(f"{len(asset_ids)} new assets queued for LLM tagging in the background.")


def run_ingest(ingestor: Ingestor, path: Path | None, feeds: list[str]) -> list[IngestOutcome]:
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
        run_ingest(Ingestor.from_settings(components.db, components.vectors, components.embedder, settings,
                             tagger=components.tagger), path, urls)
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
    from service.ingest import IngestConfig, tag_file_unstored, tag_unstored
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
                result = tag_file_unstored(components.tagger, components.embedder, IngestConfig.of(settings), file,
                                           mode=mode)  # type: ignore[arg-type]
            except IngestError as err:
                console.print(f"[red]{err.code}: {err.message}[/red]")
                raise typer.Exit(1) from err
        else:
            assert text is not None
            result = tag_unstored(components.tagger, components.embedder, IngestConfig.of(settings), text, title="",
                                  language=detect_language(text), blocks=[TextBlock(text=text)], metadata={},
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
