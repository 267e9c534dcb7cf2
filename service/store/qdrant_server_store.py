"""A Qdrant server or cluster through ``qdrant-client`` (``HCP_QDRANT_URL``): the scale-out store.

The server builds its HNSW index in the background itself. Tests use qdrant-client's local mode
(``:memory:`` or a path) as the stand-in for a server: same API, brute-force search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from service.core.lexical import SparseVector
from service.store.vectors import (
    LEXICAL_VECTOR,
    IndexType,
    VectorHit,
    VectorPoint,
    VectorStore,
    VectorStoreError,
    Where,
    dense_of,
    sparse_of,
)

log = logging.getLogger(__name__)

_SCHEMA = {
    "keyword": qm.PayloadSchemaType.KEYWORD,
    "integer": qm.PayloadSchemaType.INTEGER,
    "float": qm.PayloadSchemaType.FLOAT,
    "bool": qm.PayloadSchemaType.BOOL,
    "datetime": qm.PayloadSchemaType.DATETIME,
}


def client_filter(where: Where | None) -> qm.Filter | None:
    if where is None or where.is_empty():
        return None

    def condition(key: str, value: Any) -> qm.FieldCondition:
        if isinstance(value, list):
            return qm.FieldCondition(key=key, match=qm.MatchAny(any=value))
        return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))

    must: list[Any] = [condition(k, v) for k, v in where.equals.items()]
    must += [qm.FieldCondition(key=k, range=qm.Range(gte=lo, lte=hi)) for k, (lo, hi) in where.ranges.items()]
    must_not: list[Any] = [condition(k, v) for k, v in where.not_equals.items()]
    return qm.Filter(must=must or None, must_not=must_not or None)


_LEXICAL_PARAMS = {LEXICAL_VECTOR: qm.SparseVectorParams(modifier=qm.Modifier.IDF)}


class QdrantServerStore(VectorStore):
    backend = "qdrant-server"

    def __init__(self, location: str, collection: str, dim: int, *, api_key: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.location = location
        self.collection = collection
        self.dim = dim
        try:
            if location == ":memory:" or "://" in location:
                self._client = QdrantClient(location=location, api_key=api_key, timeout=int(timeout_s))
            else:  # a folder: qdrant-client's local mode
                self._client = QdrantClient(path=location)
            self._ensure_collection()
        except VectorStoreError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"cannot reach Qdrant at {location}: {exc}") from exc

    def _ensure_collection(self) -> None:
        if not self._client.collection_exists(self.collection):
            self._client.create_collection(
                self.collection, vectors_config=qm.VectorParams(size=self.dim, distance=qm.Distance.COSINE),
                sparse_vectors_config=_LEXICAL_PARAMS)
            return
        config = self._client.get_collection(self.collection).config.params
        if LEXICAL_VECTOR not in (config.sparse_vectors or {}):
            try:
                self._client.update_collection(self.collection, sparse_vectors_config=_LEXICAL_PARAMS)
            except Exception as exc:
                raise VectorStoreError(
                    f"collection {self.collection!r} has no {LEXICAL_VECTOR!r} sparse vector and this Qdrant cannot "
                    f"add one ({exc}); set HCP_QDRANT_COLLECTION to a new name and run `hcp-content reindex`") from exc
            self.needs_lexical_backfill = True
        params = config.vectors
        size = params.size if isinstance(params, qm.VectorParams) else None
        if size is not None and size != self.dim:
            raise VectorStoreError(f"collection {self.collection!r} holds {size}-d vectors but the embedder "
                                   f"makes {self.dim}-d ones; use another HCP_QDRANT_COLLECTION or reindex")

    def ensure_index(self, field_name: str, kind: IndexType) -> None:
        self._client.create_payload_index(self.collection, field_name, field_schema=_SCHEMA[kind], wait=True)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        structs = [qm.PointStruct(id=p.id, vector=self._vectors(p), payload=dict(p.payload)) for p in points]
        self._client.upsert(self.collection, points=structs, wait=True)

    def _vectors(self, point: VectorPoint) -> Any:
        dense = self._check_dim(point.vector)
        if not point.sparse:
            return dense
        return {"": dense, LEXICAL_VECTOR: qm.SparseVector(indices=point.sparse.indices, values=point.sparse.values)}

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._client.delete(self.collection, points_selector=qm.PointIdsList(points=list(ids)), wait=True)

    def delete_where(self, where: Where) -> None:
        flt = client_filter(where)
        if flt is None:
            raise VectorStoreError("refusing to delete with an empty filter")
        self._client.delete(self.collection, points_selector=qm.FilterSelector(filter=flt), wait=True)

    def set_payload(self, where: Where, payload: dict[str, Any]) -> None:
        flt = client_filter(where)
        if flt is None:
            raise VectorStoreError("refusing to update every point: give a filter")
        self._client.set_payload(self.collection, payload=dict(payload), points=flt, wait=True)

    def search(self, vector: Sequence[float] | np.ndarray, limit: int, where: Where | None = None,
               *, with_vectors: bool = False, fields: Sequence[str] | None = None) -> list[VectorHit]:
        found = self._client.query_points(self.collection, query=self._check_dim(vector), limit=limit,
                                          query_filter=client_filter(where),
                                          with_payload=True if fields is None else (list(fields) or False),
                                          with_vectors=with_vectors).points
        return [VectorHit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in found]

    def search_lexical(self, query: SparseVector, limit: int, where: Where | None = None, *,
                       fields: Sequence[str] | None = None) -> list[VectorHit]:
        if not query:
            return []
        found = self._client.query_points(self.collection, using=LEXICAL_VECTOR, limit=limit,
                                          query=qm.SparseVector(indices=query.indices, values=query.values),
                                          query_filter=client_filter(where),
                                          with_payload=True if fields is None else (list(fields) or False)).points
        return [VectorHit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in found]

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[VectorPoint]:
        records = self._client.retrieve(self.collection, ids=list(ids), with_payload=True, with_vectors=with_vectors)
        return [VectorPoint(id=str(r.id), vector=dense_of(r.vector) or [], payload=dict(r.payload or {}),
                            sparse=sparse_of(r.vector)) for r in records]

    def count(self, where: Where | None = None) -> int:
        return int(self._client.count(self.collection, count_filter=client_filter(where), exact=True).count)

    def scroll(self, where: Where | None = None, batch: int = 512, *,
               with_vectors: bool = False) -> Iterator[VectorPoint]:
        offset: Any = None
        while True:
            records, offset = self._client.scroll(self.collection, scroll_filter=client_filter(where), limit=batch,
                                                  offset=offset, with_payload=True, with_vectors=with_vectors)
            for r in records:
                yield VectorPoint(id=str(r.id), vector=dense_of(r.vector) or [], payload=dict(r.payload or {}),
                                  sparse=sparse_of(r.vector))
            if offset is None:
                return

    def info(self) -> dict[str, Any]:
        try:
            info = self._client.get_collection(self.collection)
        except Exception as exc:
            raise VectorStoreError(f"Qdrant at {self.location} is unavailable: {exc}") from exc
        return {"backend": self.backend, "location": self.location, "collection": self.collection,
                "points": info.points_count, "indexed_vectors": info.indexed_vectors_count,
                "status": str(info.status.value if hasattr(info.status, "value") else info.status), "dim": self.dim}

    def close(self) -> None:
        self._client.close()
