"""An asset's current text, chunks and chunk vectors, read back from the stores for re-tagging and training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from service.core.embeddings import Embedder
from service.store.db import Database
from service.store.models import Asset, AssetVersion, Chunk
from service.store.points import embedding_text
from service.store.vectors import VectorStore, point_id


@dataclass
class Material:
    asset_id: str
    version: int
    title: str
    language: str
    text: str
    chunks: list[str]
    vectors: np.ndarray
    content_hash: str
    metadata: dict[str, str]


def load_material(db: Database, vectors: VectorStore, embedder: Embedder, asset_id: str) -> Material | None:
    with db.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None:
            return None
        version = asset.current_version
        rows = list(s.scalars(select(Chunk).where(Chunk.asset_id == asset_id, Chunk.version == version)
                              .order_by(Chunk.ordinal)))
        content_hash = s.scalar(select(AssetVersion.content_hash).where(AssetVersion.asset_id == asset_id,
                                                                        AssetVersion.version == version)) or ""
        title, language, fmt, source = asset.title, asset.language, asset.format, asset.source
    if not rows:
        return None
    ids = [point_id(c.id) for c in rows]
    found = vectors.dense_vectors(ids)
    if len(found) == len(ids):
        matrix = np.vstack([found[i] for i in ids])
    else:  # vectors lost (a store rebuilt elsewhere): embed again, as ingest did
        matrix = embedder.embed_passages([embedding_text(title, c.text) for c in rows])
    text = "\n\n".join(c.text for c in rows)
    return Material(asset_id, version, title, language, text, [c.text for c in rows], matrix, content_hash,
                    {"format": fmt, "source": source})
