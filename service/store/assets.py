"""Deleting an asset: its vectors, then its rows (versions, chunks, tags cascade), audited."""

from __future__ import annotations

from service.store import audit
from service.store.db import Database
from service.store.models import Asset
from service.store.vectors import VectorStore, Where


def delete_asset(db: Database, vectors: VectorStore, asset_id: str, actor: str, role: str) -> bool:
    """False when there is no such asset."""
    with db.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None:
            return False
        before = {"title": asset.title, "uri": asset.uri, "approval_status": asset.approval_status,
                  "versions": len(asset.versions)}
        # vectors first: a failure after this leaves rows without vectors (invisible to matching, fixed by
        # `hcp-content reindex`), never vectors pointing at a deleted asset
        vectors.delete_where(Where(equals={"asset_id": asset_id}))
        s.delete(asset)
        audit.record(s, actor, role, "asset.delete", "asset", asset_id, before, None)
    return True
