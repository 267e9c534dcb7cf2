"""Child process for the SIGKILL test: upserts batches and prints ``ACK n`` after each one returns."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from service.store.edge_store import EdgeVectorStore
from service.store.pgvector_store import PgVectorStore
from service.store.qdrant_server_store import QdrantServerStore
from service.store.vectors import VectorPoint, VectorStore, point_id

DIM = 16


def open_store(backend: str, where: str) -> VectorStore:
    """``where``: the folder (edge, qdrant-client local mode) or the PostgreSQL URL (pgvector)."""
    if backend == "edge":
        return EdgeVectorStore(Path(where), DIM, background=False)
    if backend == "pgvector":
        return PgVectorStore(where, "chunks", DIM)
    return QdrantServerStore(where, "chunks", DIM)


def main() -> None:
    backend, where, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = open_store(backend, where)
    rng = np.random.default_rng(7)
    for b in range(batches):
        points = [VectorPoint(point_id(f"p{b}-{i}"), rng.standard_normal(DIM), {"batch": b, "i": i})
                  for i in range(size)]
        store.upsert(points)
        print(f"ACK {b}", flush=True)
    sys.stdin.read()  # wait to be killed


if __name__ == "__main__":
    main()
