"""Builds the vector store the settings ask for."""

from __future__ import annotations

from service.settings import Settings
from service.store.edge_store import EdgeVectorStore
from service.store.qdrant_server_store import QdrantServerStore
from service.store.vectors import VectorStore


def build_vector_store(settings: Settings, dim: int) -> VectorStore:
    if settings.qdrant_url:
        return QdrantServerStore(settings.qdrant_url, settings.qdrant_collection, dim, api_key=settings.qdrant_api_key)
    return EdgeVectorStore(settings.qdrant_path / settings.qdrant_collection, dim,
                           optimize_after=settings.qdrant_optimize_after, hnsw_ef=settings.qdrant_hnsw_ef)
