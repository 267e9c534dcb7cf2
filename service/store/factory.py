"""Builds the vector store the settings ask for."""

from __future__ import annotations

from service.settings import Settings
from service.store.edge_store import EdgeVectorStore
from service.store.pgvector_store import PgVectorStore
from service.store.qdrant_server_store import QdrantServerStore
from service.store.vectors import VectorStore, VectorStoreError


def build_vector_store(settings: Settings, dim: int, *, migrate: bool | None = None) -> VectorStore:
    """``migrate``: create or upgrade the pgvector tables (default ``HCP_MIGRATE_ON_START``). The embedded engine
    belongs to one process; pgvector and a Qdrant server are shared by every process that opens them."""
    backend = settings.effective_vector_backend
    if backend == "pgvector":
        url = settings.vector_database_url or settings.database_url
        if not url:
            raise VectorStoreError("HCP_VECTOR_BACKEND=pgvector needs a PostgreSQL URL: set HCP_DATABASE_URL "
                                   "(or HCP_VECTOR_DATABASE_URL)")
        return PgVectorStore(url, settings.qdrant_collection, dim, hnsw_ef=settings.qdrant_hnsw_ef,
                             migrate=settings.migrate_on_start if migrate is None else migrate)
    if backend == "qdrant":
        if not settings.qdrant_url:
            raise VectorStoreError("HCP_VECTOR_BACKEND=qdrant needs HCP_QDRANT_URL")
        return QdrantServerStore(settings.qdrant_url, settings.qdrant_collection, dim, api_key=settings.qdrant_api_key)
    root = settings.qdrant_path / settings.qdrant_collection
    return EdgeVectorStore(root, dim, optimize_after=settings.qdrant_optimize_after, hnsw_ef=settings.qdrant_hnsw_ef,
                           search_threads=settings.effective_qdrant_search_threads)
