"""The vector store interface: chunk vectors with a payload, filtered nearest-neighbour search.

Two implementations share it:
- :class:`service.store.edge_store.EdgeVectorStore`: Qdrant's engine embedded in-process (default);
- :class:`service.store.qdrant_server_store.QdrantServerStore`: a Qdrant server or cluster through
  ``qdrant-client`` (``HCP_QDRANT_URL``), for scale-out.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from service.core.lexical import SparseVector

PayloadScalar = str | int | float
IndexType = Literal["keyword", "integer", "float", "bool", "datetime"]

# The name of the sparse (BM25) vector every point carries beside its unnamed dense one.
LEXICAL_VECTOR = "bm25"

# Point ids are UUIDs derived from our string ids, so re-upserting a chunk replaces it.
_POINT_NAMESPACE = uuid.UUID("6f1f2c2e-3d8e-4f57-9a61-0c7b9a3c1d42")


def point_id(key: str) -> str:
    """The Qdrant point id (a UUID string) of the record ``key``."""
    return str(uuid.uuid5(_POINT_NAMESPACE, key))


class VectorStoreError(RuntimeError):
    """The vector store is unavailable or refused an operation."""


@dataclass
class VectorPoint:
    id: str
    vector: Sequence[float] | np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)
    sparse: SparseVector | None = None  # BM25 term weights (see service.core.lexical)


@dataclass
class VectorHit:
    id: str
    score: float
    payload: dict[str, Any]


def dense_of(raw: Any) -> list[float] | None:
    """The unnamed dense vector out of a backend's vector field (a list, or a dict by vector name)."""
    if isinstance(raw, dict):
        raw = raw.get("")
    return list(raw) if raw is not None else None


def sparse_of(raw: Any) -> SparseVector | None:
    """The BM25 terms out of a backend's vector field (both backends' sparse vectors have indices/values)."""
    found = raw.get(LEXICAL_VECTOR) if isinstance(raw, dict) else None
    return SparseVector(list(found.indices), list(found.values)) if found is not None else None


@dataclass
class Where:
    """A backend-neutral payload filter: every condition must hold.

    ``equals``: field == value, or field in values for a list; ``not_equals``: the negation;
    ``ranges``: field within ``(gte, lte)`` (either end may be None).

    Booleans are not filterable: qdrant-edge 0.9.0 matches no point for ``MatchValue(True)``
    (its binding reads the bool as an integer). Store flags as keywords (``"yes"``/``"no"``).
    """

    equals: dict[str, PayloadScalar | list[PayloadScalar]] = field(default_factory=dict)
    not_equals: dict[str, PayloadScalar | list[PayloadScalar]] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in [*self.equals.items(), *self.not_equals.items()]:
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, bool) for v in values):
                raise VectorStoreError(f"filter on {key!r} uses a boolean; store flags as keywords instead")

    def is_empty(self) -> bool:
        return not (self.equals or self.not_equals or self.ranges)


class VectorStore(ABC):
    """Chunk vectors and their payloads."""

    backend: str
    dim: int
    # True when the store gained its lexical vector on opening (an older store): the points written before
    # have none until ``service.store.reconcile.backfill_lexical`` runs.
    needs_lexical_backfill: bool = False

    @abstractmethod
    def ensure_index(self, field_name: str, kind: IndexType) -> None:
        """Create a payload index on ``field_name`` (idempotent)."""

    def ensure_indexes(self, indexes: Mapping[str, IndexType]) -> None:
        """:meth:`ensure_index` for each of ``indexes`` not yet ensured by this store object: on a Qdrant server
        each call is a round trip that waits for the index, so ingest, re-index and every job item ask here."""
        done = self.__dict__.setdefault("_ensured", {})
        for name, kind in indexes.items():
            if done.get(name) != kind:
                self.ensure_index(name, kind)
                done[name] = kind

    @abstractmethod
    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points; durable when this returns."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def delete_where(self, where: Where) -> None: ...

    @abstractmethod
    def set_payload(self, where: Where, payload: dict[str, Any]) -> None:
        """Merge ``payload`` into every point matching ``where``."""

    @abstractmethod
    def search(self, vector: Sequence[float] | np.ndarray, limit: int, where: Where | None = None,
               *, with_vectors: bool = False, fields: Sequence[str] | None = None) -> list[VectorHit]:
        """The nearest points. ``fields``: only these payload fields (None: all); decoding whole payloads costs
        more than the search itself at 100k points (qdrant-edge: 15 ms against 4.5 ms for two fields)."""

    @abstractmethod
    def search_lexical(self, query: SparseVector, limit: int, where: Where | None = None, *,
                       fields: Sequence[str] | None = None) -> list[VectorHit]:
        """Points ranked by BM25 (the query's term weights times the points' ones, IDF applied)."""

    @abstractmethod
    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[VectorPoint]: ...

    def dense_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The dense vector (float32) of each of these points that exists and has one: what ranking and talking
        points read, without payloads and sparse vectors (a backend may read less than ``retrieve``)."""
        return {p.id: np.asarray(p.vector, dtype=np.float32) for p in self.retrieve(ids, with_vectors=True)
                if len(p.vector)}

    @abstractmethod
    def count(self, where: Where | None = None) -> int: ...

    @abstractmethod
    def scroll(self, where: Where | None = None, batch: int = 512, *,
               with_vectors: bool = False) -> Iterator[VectorPoint]: ...

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Backend details for /readyz; raises :class:`VectorStoreError` when unusable."""

    @abstractmethod
    def close(self) -> None: ...

    def _check_dim(self, vector: Sequence[float] | np.ndarray) -> list[float]:
        values = np.asarray(vector, dtype=np.float32).ravel()
        if values.shape[0] != self.dim:
            raise VectorStoreError(f"vector has {values.shape[0]} dimensions, the store holds {self.dim}")
        return values.tolist()
