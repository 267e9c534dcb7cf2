"""Qdrant's engine embedded in-process (``qdrant-edge``): HNSW, payload indexes and a WAL.

Why generations: ``EdgeShard.optimize()`` (the HNSW build) holds the Python GIL for its whole run
(measured: 17 s at 30k points, during which no other Python thread ran). Run in-process, it would
stall every request. So the live shard never optimises itself: a background thread copies it
(after a flush), a child process optimises the copy, the copy is loaded beside the live one, the
writes made meanwhile are replayed into it, and it becomes current. ``CURRENT`` names the live
generation folder; a crash at any step leaves the previous generation, with its WAL, in charge.

One process at a time may hold a shard folder (the WAL is locked); a second process gets a clear
:class:`VectorStoreError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchAny,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    PayloadSelector,
    Point,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparse

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
    "keyword": PayloadSchemaType.Keyword,
    "integer": PayloadSchemaType.Integer,
    "float": PayloadSchemaType.Float,
    "bool": PayloadSchemaType.Bool,
    "datetime": PayloadSchemaType.Datetime,
}


def edge_filter(where: Where | None) -> Filter | None:
    if where is None or where.is_empty():
        return None

    def condition(key: str, value: Any) -> FieldCondition:
        if isinstance(value, list):
            return FieldCondition(key=key, match=MatchAny(any=value))
        return FieldCondition(key=key, match=MatchValue(value))

    must: list[Any] = [condition(k, v) for k, v in where.equals.items()]
    must += [FieldCondition(key=k, range=RangeFloat(gte=lo, lte=hi)) for k, (lo, hi) in where.ranges.items()]
    must_not: list[Any] = [condition(k, v) for k, v in where.not_equals.items()]
    return Filter(must=must or None, must_not=must_not or None)


@dataclass
class _Generation:
    name: str
    shard: EdgeShard
    readers: int = 0
    retired: bool = False


def _payload(fields: Sequence[str] | None) -> bool | PayloadSelector:
    """None: the whole payload; no fields: none at all (the engine then reads no payload storage)."""
    if fields is None:
        return True
    return PayloadSelector.Include(list(fields)) if fields else False


class EdgeVectorStore(VectorStore):
    backend = "qdrant-edge"

    def __init__(self, root: Path, dim: int, *, optimize_after: int = 2000, background: bool = True,
                 hnsw_ef: int = 128, search_threads: int | None = None) -> None:
        """``search_threads``: the engine's search pool (None: its default). One process owns the folder: several
        serving processes need a store they can share (PostgreSQL + pgvector, or a Qdrant server)."""
        self.root = Path(root)
        self.search_threads = search_threads
        self._search_params = SearchParams(hnsw_ef=hnsw_ef)
        self.dim = dim
        self.optimize_after = optimize_after
        self.background = background
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()  # writers and generation swaps
        self._state_lock = threading.Lock()  # reader counts only; never held during engine calls
        self._pending: list[tuple[str, Any]] | None = None  # writes made while a rebuild runs
        self._rebuild_thread: threading.Thread | None = None
        self._closed = False
        self.last_rebuild_error: str | None = None
        self.rebuilds = 0

        current = self._read_current()
        self._remove_stale(keep=current)
        if current is None:
            current = self._generation_name(1)
            shard = self._open(current, create=True)
            self._write_current(current)
        else:
            shard = self._open(current, create=False)
        self._gen = _Generation(current, shard)
        info = shard.info()
        self._unindexed = max(0, info.points_count - info.indexed_vectors_count)
        # the base copy and write log that releases before 2026.12 published for follower processes: disk for nothing
        shutil.rmtree(self.root / "replica", ignore_errors=True)

    # --- generations -------------------------------------------------------------------------
    def _config(self, *, lexical: bool = True) -> EdgeConfig:
        sparse = {LEXICAL_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)} if lexical else None
        return EdgeConfig(vectors=EdgeVectorParams(size=self.dim, distance=Distance.Cosine), sparse_vectors=sparse,
                          wal_enabled=True, max_search_threads=self.search_threads)

    def _open(self, name: str, *, create: bool) -> EdgeShard:
        path = str(self.root / name)
        try:
            if create:
                return EdgeShard.create(path, self._config())
            try:
                return EdgeShard.load(path, self._config())
            except Exception as exc:
                if LEXICAL_VECTOR not in str(exc):
                    raise
            # A store written before lexical search existed: add the sparse vector; its points get theirs
            # from the SQL chunk text (reconcile.backfill_lexical) when the worker starts.
            shard = EdgeShard.load(path, self._config(lexical=False))
            shard.update(UpdateOperation.create_sparse_vector(LEXICAL_VECTOR, modifier=Modifier.Idf))
            shard.flush()
            self.needs_lexical_backfill = True
            log.warning("the vector store at %s had no lexical vector; added it, points will be backfilled", path)
            return shard
        except Exception as exc:
            text = str(exc)
            if "WouldBlock" in text or "lock" in text.lower():
                raise VectorStoreError(f"the vector store folder {self.root} is in use by another process "
                                       "(only one hcp-content process may open the embedded store; "
                                       "use HCP_QDRANT_URL with a Qdrant server to run several)") from exc
            raise VectorStoreError(f"cannot open the vector store at {path}: {text}") from exc

    @staticmethod
    def _generation_name(number: int) -> str:
        return f"gen-{number:06d}"

    def _read_current(self) -> str | None:
        marker = self.root / "CURRENT"
        if not marker.exists():
            return None
        name = marker.read_text().strip()
        return name if (self.root / name).is_dir() else None

    def _write_current(self, name: str) -> None:
        tmp = self.root / "CURRENT.tmp"
        with tmp.open("w") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.root / "CURRENT")

    def _remove_stale(self, keep: str | None) -> None:
        # Left over by a crash mid-rebuild: half-built copies and retired generations.
        for child in self.root.iterdir():
            if child.is_dir() and child.name.startswith("gen-") and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[EdgeShard]:
        if self._closed:
            raise VectorStoreError("the vector store is closed")
        with self._state_lock:
            gen = self._gen
            gen.readers += 1
        try:
            yield gen.shard
        finally:
            with self._state_lock:
                gen.readers -= 1
                close_now = gen.retired and gen.readers == 0
            if close_now:
                self._dispose(gen)

    def _dispose(self, gen: _Generation) -> None:
        with contextlib.suppress(Exception):
            gen.shard.close()
        shutil.rmtree(self.root / gen.name, ignore_errors=True)

    # --- writes ------------------------------------------------------------------------------
    def _write(self, op: tuple[str, Any], added: int = 0) -> None:
        """Apply ``op`` (the engine's terms), and keep it for a rebuild under way to replay."""
        with self._write_lock, self._reading() as shard:
            self._apply(shard, op)
            if self._pending is not None:
                self._pending.append(op)
            self._unindexed += added
        self._maybe_rebuild()

    @staticmethod
    def _apply(shard: EdgeShard, op: tuple[str, Any]) -> None:
        kind, arg = op
        if kind == "upsert":
            shard.update(UpdateOperation.upsert_points(arg))
        elif kind == "delete":
            shard.update(UpdateOperation.delete_points(arg))
        elif kind == "delete_where":
            shard.update(UpdateOperation.delete_points_by_filter(arg))
        elif kind == "set_payload":
            flt, payload = arg
            shard.update(UpdateOperation.set_payload_by_filter(flt, payload))
        elif kind == "index":
            field_name, schema = arg
            shard.update(UpdateOperation.create_field_index(field_name, schema))
        else:  # pragma: no cover - programming error
            raise ValueError(kind)

    def ensure_index(self, field_name: str, kind: IndexType) -> None:
        with self._reading() as shard:
            if field_name in shard.info().payload_schema:
                return
        self._record(("index", (field_name, kind)))

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if points:
            self._record(("upsert", list(points)))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._record(("delete", list(ids)))

    def delete_where(self, where: Where) -> None:
        if edge_filter(where) is None:
            raise VectorStoreError("refusing to delete with an empty filter")
        self._record(("delete_where", where))

    def set_payload(self, where: Where, payload: dict[str, Any]) -> None:
        if edge_filter(where) is None:
            raise VectorStoreError("refusing to update every point: give a filter")
        self._record(("set_payload", (where, dict(payload))))

    def _record(self, record: tuple[str, Any]) -> None:
        op, added = self._engine_op(record)
        self._write(op, added)

    def _engine_op(self, record: tuple[str, Any]) -> tuple[tuple[str, Any], int]:
        """A write in the store's terms as the engine's operation, and how many points it adds."""
        kind, arg = record
        if kind == "upsert":
            points = [Point(id=p.id, vector=self._vectors(p), payload=dict(p.payload)) for p in arg]
            return ("upsert", points), len(points)
        if kind == "delete":
            return ("delete", list(arg)), 0
        if kind == "delete_where":
            return ("delete_where", edge_filter(arg)), 0
        if kind == "set_payload":
            where, payload = arg
            return ("set_payload", (edge_filter(where), payload)), 0
        if kind == "index":
            field_name, index_type = arg
            return ("index", (field_name, _SCHEMA[index_type])), 0
        raise ValueError(kind)  # pragma: no cover - programming error

    def _vectors(self, point: VectorPoint) -> Any:
        dense = self._check_dim(point.vector)
        if not point.sparse:
            return dense
        return {"": dense, LEXICAL_VECTOR: EdgeSparse(point.sparse.indices, point.sparse.values)}

    # --- reads -------------------------------------------------------------------------------
    def search(self, vector: Sequence[float] | np.ndarray, limit: int, where: Where | None = None,
               *, with_vectors: bool = False, fields: Sequence[str] | None = None) -> list[VectorHit]:
        request = QueryRequest(limit=limit, query=Query.Nearest(self._check_dim(vector)),
                               filter=edge_filter(where), with_payload=_payload(fields), with_vector=with_vectors,
                               params=self._search_params)
        return self._query(request)

    def search_lexical(self, query: SparseVector, limit: int, where: Where | None = None, *,
                       fields: Sequence[str] | None = None) -> list[VectorHit]:
        if not query:
            return []
        request = QueryRequest(limit=limit, query=Query.Nearest(EdgeSparse(query.indices, query.values),
                                                                using=LEXICAL_VECTOR),
                               filter=edge_filter(where), with_payload=_payload(fields))
        return self._query(request)

    def _query(self, request: QueryRequest) -> list[VectorHit]:
        with self._reading() as shard:
            found = shard.query(request)
        return [VectorHit(id=str(p.id), score=float(p.score), payload=dict(p.payload) if p.payload else {})
                for p in found]

    def dense_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        # the unnamed vector alone, no payload: a third of what retrieve() costs for a request's 30 passages
        with self._reading() as shard:
            records = shard.retrieve(list(ids), with_payload=False, with_vector=[""])
        # each ``.vector`` read builds a Python list: read it once, convert the lot in one array
        found = [(str(r.id), vector) for r in records if (vector := r.vector) is not None]
        matrix = np.asarray([vector for _, vector in found], dtype=np.float32)
        return {pid: matrix[i] for i, (pid, _) in enumerate(found)}

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[VectorPoint]:
        with self._reading() as shard:
            records = shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)
        return [VectorPoint(id=str(r.id), vector=dense_of(r.vector) or [], payload=dict(r.payload or {}),
                            sparse=sparse_of(r.vector)) for r in records]

    def count(self, where: Where | None = None) -> int:
        with self._reading() as shard:
            return int(shard.count(CountRequest(filter=edge_filter(where), exact=True)))

    def scroll(self, where: Where | None = None, batch: int = 512, *,
               with_vectors: bool = False) -> Iterator[VectorPoint]:
        offset: Any = None
        while True:
            with self._reading() as shard:
                records, offset = shard.scroll(ScrollRequest(offset=offset, limit=batch, filter=edge_filter(where),
                                                             with_payload=True, with_vector=with_vectors))
            for r in records:
                yield VectorPoint(id=str(r.id), vector=dense_of(r.vector) or [], payload=dict(r.payload or {}),
                                  sparse=sparse_of(r.vector))
            if offset is None:
                return

    def info(self) -> dict[str, Any]:
        with self._reading() as shard:
            info = shard.info()
        return {"backend": self.backend, "path": str(self.root), "generation": self._gen.name,
                "points": info.points_count, "indexed_vectors": info.indexed_vectors_count,
                "segments": info.segments_count, "dim": self.dim, "rebuilding": self.rebuilding,
                "last_rebuild_error": self.last_rebuild_error, "search_threads": self.search_threads}

    # --- background HNSW builds ----------------------------------------------------------------
    @property
    def rebuilding(self) -> bool:
        return self._rebuild_thread is not None and self._rebuild_thread.is_alive()

    def _maybe_rebuild(self) -> None:
        if self.background and self._unindexed >= self.optimize_after and not self.rebuilding and not self._closed:
            self._rebuild_thread = threading.Thread(target=self._rebuild_safely, name="edge-optimize", daemon=True)
            self._rebuild_thread.start()

    def optimize(self, wait: bool = True) -> None:
        """Build the HNSW index now, in a child process; with ``wait`` block until it is live."""
        if not self.rebuilding:
            self._rebuild_thread = threading.Thread(target=self._rebuild_safely, name="edge-optimize", daemon=True)
            self._rebuild_thread.start()
        if wait and self._rebuild_thread is not None:
            self._rebuild_thread.join()
            if self.last_rebuild_error:
                raise VectorStoreError(self.last_rebuild_error)

    def _rebuild_safely(self) -> None:
        try:
            self._rebuild()
            self.last_rebuild_error = None
        except Exception as exc:  # a failed build leaves the live generation untouched
            self.last_rebuild_error = f"background index build failed: {exc}"
            log.exception("background index build failed")
            with self._write_lock:
                self._pending = None

    def _rebuild(self) -> None:
        with self._write_lock:
            old = self._gen
            number = int(old.name.split("-")[1]) + 1
            name = self._generation_name(number)
            staging = self.root / f"{name}.building"
            shutil.rmtree(staging, ignore_errors=True)
            old.shard.flush()
            shutil.copytree(self.root / old.name, staging)
            self._pending = []
            unindexed_at_copy = self._unindexed
        # The GIL-holding optimisation runs in another process, on the copy.
        result = subprocess.run([sys.executable, "-m", "service.store.edge_optimize", str(staging)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise VectorStoreError(f"optimiser exited with {result.returncode}: {result.stderr.strip()[-500:]}")
        final = self.root / name
        staging.rename(final)
        fresh = self._open(name, create=False)
        with self._write_lock:
            assert self._pending is not None
            for op in self._pending:
                self._apply(fresh, op)
            fresh.flush()
            self._write_current(name)
            with self._state_lock:
                self._gen = _Generation(name, fresh)
                old.retired = True
                close_old = old.readers == 0
            self._pending = None
            self._unindexed = max(0, self._unindexed - unindexed_at_copy)
            self.rebuilds += 1
        if close_old:
            self._dispose(old)

    def close(self) -> None:
        if self._closed:
            return
        if self._rebuild_thread is not None:
            self._rebuild_thread.join()
        with self._write_lock:
            self._closed = True
            with contextlib.suppress(Exception):
                self._gen.shard.flush()
            self._gen.shard.close()
