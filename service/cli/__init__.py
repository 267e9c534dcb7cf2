"""The ``hcp-content`` command line: one module per command group, all registered on ``service.cli.app.app``."""

from __future__ import annotations

import sys

from service.cli import admin, content, engagement, evals, ops, serve  # noqa: F401  (each registers its commands)
from service.cli.app import app, console
from service.cli.ops import settings_table

__all__ = ["app", "main", "settings_table"]


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
