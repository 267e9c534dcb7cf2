"""The store's change counter: in-memory copies of assets and tags (the matcher's tag index) check it on
every request, one integer read, instead of re-reading the tables."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from service.store.models import StoreChanges


def generation(session: Session | Connection) -> int:
    """How many writes (statements on PostgreSQL, rows on SQLite) assets and asset_tags have seen; it only grows,
    and changes in the transaction of the write."""
    return int(session.scalar(select(StoreChanges.generation).where(StoreChanges.id == 1)) or 0)
