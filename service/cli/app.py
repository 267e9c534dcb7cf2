"""The ``hcp-content`` command groups, the console they print to, and the helpers every group uses."""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from service.core.taxonomy import Taxonomy
    from service.store.db import Database

app = typer.Typer(help="hcp-content: tag life-sciences content and match it to HCP needs.", no_args_is_help=True)
models_app = typer.Typer(help="Model files for the local LLM.", no_args_is_help=True)
db_app = typer.Typer(help="The SQL database.", no_args_is_help=True)
vectors_app = typer.Typer(help="The vector store.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)
assets_app = typer.Typer(help="Stored assets.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluation harnesses.", no_args_is_help=True)
for group, name in ((models_app, "models"), (db_app, "db"), (vectors_app, "vectors"), (keys_app, "keys"),
                    (assets_app, "assets"), (eval_app, "eval")):
    app.add_typer(group, name=name)
console = Console(stderr=True)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@app.callback()
def _main() -> None:
    """hcp-content: tag life-sciences content and match it to HCP needs."""
    # SIGTERM (kill, docker stop, systemd) must unwind through `finally`, so a local LLM server a
    # command started is stopped with it instead of being left running on its own.
    signal.signal(signal.SIGTERM, _interrupt)


def db_only() -> tuple[Settings, Database]:
    from service.store.db import Database

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    if settings.migrate_on_start:
        db.migrate()
    return settings, db


def id_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def active_taxonomy(settings: Settings, db: Database) -> Taxonomy:
    from service.store.taxonomies import activate_from_file

    return activate_from_file(db, settings.taxonomy_path).taxonomy
