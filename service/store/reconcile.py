"""Keeping SQL rows and vectors in agreement.

Ingest writes vectors before committing the SQL rows, so a crash between the two can leave vectors whose
chunk rows never committed; ``drop_orphans`` removes them. ``reindex`` rebuilds every vector from the SQL
rows (the source of truth), for a lost or replaced vector store. ``backfill_lexical`` gives the points of a
store written before lexical search their BM25 terms, from the SQL chunk text, without re-embedding;
``reconcile_at_start`` runs the repairs a start needs in one pass over the points, scope tokens for a store
written before key scopes included."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from service.core.embeddings import Embedder
from service.core.lexical import default_encoder
from service.core.taxonomy import Taxonomy
from service.store.db import Database
from service.store.models import Asset, Chunk
from service.store.points import PAYLOAD_INDEXES, asset_payload, chunk_point, embedding_text
from service.store.vectors import VectorPoint, VectorStore, point_id
from service.store.visibility import scope_tokens, sync_scope_payload

log = logging.getLogger(__name__)


def _current_chunk_ids(db: Database) -> set[str]:
    with db.session() as s:
        rows = s.execute(select(Chunk.id).join(Asset, Asset.id == Chunk.asset_id)
                         .where(Chunk.version == Asset.current_version)).scalars()
        return {point_id(cid) for cid in rows}


def _sweep(db: Database, vectors: VectorStore) -> tuple[list[str], set[str]]:
    """One pass over every point: the ids with no current chunk row behind them, and the assets whose
    (kept) points lack scope tokens."""
    keep = _current_chunk_ids(db)
    orphans: list[str] = []
    unscoped: set[str] = set()
    for p in vectors.scroll():
        if p.id not in keep:
            orphans.append(p.id)
        elif "scope" not in p.payload and "asset_id" in p.payload:
            unscoped.add(str(p.payload["asset_id"]))
    return orphans, unscoped


def _delete_orphans(vectors: VectorStore, orphans: list[str]) -> int:
    if orphans:
        vectors.delete(orphans)
        log.warning("removed %d vectors without SQL rows (a write interrupted by a crash)", len(orphans))
    return len(orphans)


def drop_orphans(db: Database, vectors: VectorStore) -> int:
    """Delete vectors with no current chunk row behind them; returns how many."""
    return _delete_orphans(vectors, _sweep(db, vectors)[0])


def reindex(db: Database, vectors: VectorStore, embedder: Embedder, taxonomy: Taxonomy | None, batch: int = 64,
            progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Embed every current chunk again from SQL and upsert it; then drop vectors SQL does not know."""
    vectors.ensure_indexes(PAYLOAD_INDEXES)
    with db.session() as s:
        rows = list(s.scalars(select(Asset)))
        scopes = scope_tokens(s, [a.id for a in rows], taxonomy)
        assets = {a.id: (a.title, asset_payload(a, scopes.get(a.id, []))) for a in rows}
        chunks = list(s.execute(select(Chunk.id, Chunk.asset_id, Chunk.version, Chunk.text, Chunk.page, Chunk.slide)
                                .join(Asset, Asset.id == Chunk.asset_id)
                                .where(Chunk.version == Asset.current_version).order_by(Chunk.id)))
    done = 0
    for start in range(0, len(chunks), batch):
        part = chunks[start:start + batch]
        texts = [embedding_text(assets[a][0], t) for _, a, _, t, _, _ in part]
        points = [chunk_point(cid, vec, assets[a][1], v, page, slide, text)
                  for (cid, a, v, _, page, slide), vec, text
                  in zip(part, embedder.embed_passages(texts), texts, strict=True)]
        vectors.upsert(points)
        done += len(part)
        if progress:
            progress(done, len(chunks))
    removed = drop_orphans(db, vectors)
    return {"chunks": len(chunks), "removed": removed}


def backfill_lexical(db: Database, vectors: VectorStore, batch: int = 256) -> int:
    """Re-write every point that lacks BM25 terms with them (its dense vector kept); returns how many."""
    with db.session() as s:
        rows = s.execute(select(Chunk.id, Chunk.text, Asset.title).join(Asset, Asset.id == Chunk.asset_id)
                         .where(Chunk.version == Asset.current_version))
        text_of = {point_id(cid): embedding_text(title, text) for cid, text, title in rows}
    missing = [p for p in vectors.scroll(with_vectors=True) if not p.sparse and p.id in text_of]
    encoder = default_encoder()
    for start in range(0, len(missing), batch):
        part = missing[start:start + batch]
        vectors.upsert([VectorPoint(p.id, p.vector, p.payload, sparse=encoder.document(text_of[p.id]))
                        for p in part])
    vectors.needs_lexical_backfill = False
    if missing:
        log.warning("gave %d vectors their lexical terms", len(missing))
    return len(missing)


def _sync_unscoped(db: Database, vectors: VectorStore, taxonomy: Taxonomy, assets: set[str]) -> int:
    vectors.ensure_indexes({"scope": "keyword"})
    if assets:
        with db.session() as s:
            sync_scope_payload(s, vectors, sorted(assets), taxonomy)
        log.warning("gave the vectors of %d assets their scope tokens", len(assets))
    return len(assets)


def reconcile_at_start(db: Database, vectors: VectorStore, taxonomy: Taxonomy) -> dict[str, int]:
    """What the worker does before its first job, in one pass over the points: drop the vectors a crash
    orphaned, give the points a lexical vector where they lack one, and give the assets of a store from
    before key scopes their scope tokens (without them a scoped key's prefilter would skip those points).
    Returns how many of each it fixed."""
    orphans, unscoped = _sweep(db, vectors)
    removed = _delete_orphans(vectors, orphans)
    lexical = backfill_lexical(db, vectors) if vectors.needs_lexical_backfill else 0
    return {"orphans": removed, "lexical": lexical, "scope": _sync_unscoped(db, vectors, taxonomy, unscoped)}
