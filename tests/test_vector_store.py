import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from service.store.edge_store import EdgeVectorStore
from service.store.pgvector_store import PgVectorStore
from service.store.qdrant_server_store import QdrantServerStore
from service.store.vectors import VectorPoint, VectorStore, VectorStoreError, Where, point_id

from .vector_writer import DIM, open_store

ROOT = Path(__file__).resolve().parent.parent


BACKENDS = ["edge", "qdrant-client-local", "pgvector"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> VectorStore:
    if request.param == "edge":
        s: VectorStore = EdgeVectorStore(tmp_path / "edge", DIM, background=False)
    elif request.param == "pgvector":
        s = PgVectorStore(request.getfixturevalue("pgvector_database"), "chunks", DIM)
    else:
        s = QdrantServerStore(":memory:", "chunks", DIM)
    yield s
    s.close()


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def sample_points(n: int = 40) -> list[VectorPoint]:
    rng = np.random.default_rng(0)
    return [VectorPoint(point_id(f"chunk-{i}"), unit(rng.standard_normal(DIM)),
                        {"asset_id": f"a{i % 4}", "source": "external" if i % 5 == 0 else "internal",
                         "lang": "zh" if i % 2 else "en", "age_days": i})
            for i in range(n)]


def test_nearest_neighbour_with_payload_filters(store):
    points = sample_points()
    for field, kind in [("asset_id", "keyword"), ("source", "keyword"), ("age_days", "integer")]:
        store.ensure_index(field, kind)
    store.upsert(points)
    assert store.count() == 40
    target = points[7]
    hits = store.search(target.vector, 3)
    assert hits[0].id == target.id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].payload["asset_id"] == "a3"

    only_zh_internal = store.search(target.vector, 50, Where(equals={"lang": "zh", "source": "internal"}))
    assert only_zh_internal and all(h.payload["lang"] == "zh" and h.payload["source"] == "internal"
                                    for h in only_zh_internal)
    any_of = store.search(target.vector, 50, Where(equals={"asset_id": ["a0", "a1"]}))
    assert {h.payload["asset_id"] for h in any_of} == {"a0", "a1"}
    not_external = store.search(target.vector, 50, Where(not_equals={"source": "external"}))
    assert len(not_external) == 32
    young = store.search(target.vector, 50, Where(ranges={"age_days": (None, 9)}))
    assert sorted(h.payload["age_days"] for h in young) == list(range(10))
    assert store.count(Where(equals={"asset_id": "a2"})) == 10


def test_searches_without_payload_fields_and_dense_vectors_read_what_was_written(store):
    """What matching reads on every request: hits with no payload at all (the catalog knows each point), and the
    picked passages' vectors alone; a point that does not exist is simply absent."""
    points = sample_points()
    store.upsert(points)
    target = points[7]
    hits = store.search(target.vector, 5, fields=())
    assert hits[0].id == target.id and all(h.payload == {} for h in hits)
    sparse_free = store.search(target.vector, 5, Where(equals={"lang": "zh"}), fields=())
    assert sparse_free and all(h.payload == {} for h in sparse_free)
    assert {h.id for h in sparse_free} == {h.id for h in store.search(target.vector, 5, Where(equals={"lang": "zh"}))}
    wanted = [points[3].id, points[11].id, point_id("never-written")]
    vectors = store.dense_vectors(wanted)
    assert set(vectors) == {points[3].id, points[11].id}
    for p in points[3], points[11]:
        assert vectors[p.id].dtype == np.float32
        assert np.allclose(vectors[p.id], p.vector, atol=1e-5)


def test_upsert_replaces_delete_removes_and_scroll_sees_everything(store):
    points = sample_points()
    store.upsert(points)
    store.upsert([VectorPoint(points[0].id, points[0].vector, {"asset_id": "a0", "replaced": True})])
    assert store.count() == 40
    assert store.retrieve([points[0].id])[0].payload["replaced"] is True
    store.delete([points[1].id])
    store.delete_where(Where(equals={"asset_id": "a3"}))
    assert store.count() == 40 - 1 - 10
    seen = list(store.scroll(batch=7, with_vectors=True))
    assert len(seen) == 29 and len({p.id for p in seen}) == 29
    assert all(len(p.vector) == DIM for p in seen)
    with pytest.raises(VectorStoreError):
        store.delete_where(Where())


def test_boolean_filters_are_refused_with_a_reason():
    with pytest.raises(VectorStoreError, match="boolean"):
        Where(equals={"approved": True})


def test_wrong_dimension_is_refused_and_nothing_is_written(store):
    with pytest.raises(VectorStoreError, match="dimensions"):
        store.upsert([VectorPoint(point_id("bad"), [0.1] * (DIM + 1), {})])
    assert store.count() == 0
    assert store.info()["dim"] == DIM


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_killed_with_sigkill_keeps_every_acknowledged_point(request, tmp_path, backend):
    where = request.getfixturevalue("pgvector_database") if backend == "pgvector" else str(tmp_path / "store")
    kind = {"qdrant-client-local": "local"}.get(backend, backend)
    proc = subprocess.Popen([sys.executable, "-m", "tests.vector_writer", kind, where, "200", "25"], cwd=ROOT,
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    acked = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acked = int(line.split()[1])
        if acked >= 5:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reopened = open_store(kind, where)
    try:
        ids = [point_id(f"p{b}-{i}") for b in range(acked + 1) for i in range(25)]
        found = reopened.retrieve(ids)
        assert len(found) == len(ids)
        assert reopened.count() >= len(ids)
    finally:
        reopened.close()


def test_embedded_store_folder_held_by_another_process_gives_a_clear_error(tmp_path):
    path = tmp_path / "store"
    holder = subprocess.Popen([sys.executable, "-m", "tests.vector_writer", "edge", str(path), "1", "1"],
                              cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("ACK")
        with pytest.raises(VectorStoreError, match="in use by another process"):
            EdgeVectorStore(path, DIM)
    finally:
        holder.kill()
        holder.wait()


def test_embedded_store_reopens_with_a_different_dimension_as_an_error(tmp_path):
    EdgeVectorStore(tmp_path / "s", DIM).close()
    with pytest.raises(VectorStoreError):
        EdgeVectorStore(tmp_path / "s", DIM * 2)


def test_background_hnsw_build_never_blocks_queries_and_keeps_writes_made_meanwhile(tmp_path):
    dim, n = 384, 9000  # above the engine's indexing threshold, so a real HNSW graph is built
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    store = EdgeVectorStore(tmp_path / "s", dim, optimize_after=n, background=True)
    try:
        first_gen = store.info()["generation"]
        for start in range(0, n, 1000):
            store.upsert([VectorPoint(point_id(f"v{i}"), vectors[i], {"i": i}) for i in range(start, start + 1000)])
        assert store.rebuilding, "reaching optimize_after must start a background build"

        latencies: list[float] = []
        late_writes = 0
        build_started = time.perf_counter()
        while store.rebuilding:
            t0 = time.perf_counter()
            hits = store.search(vectors[42], 5)
            latencies.append(time.perf_counter() - t0)
            assert hits[0].payload["i"] == 42
            if late_writes < 20:
                store.upsert([VectorPoint(point_id(f"late{late_writes}"), vectors[late_writes], {"late": "yes"})])
                late_writes += 1
            time.sleep(0.01)
        build_s = time.perf_counter() - build_started
        assert store.last_rebuild_error is None
        info = store.info()
        assert info["generation"] != first_gen and store.rebuilds == 1
        assert info["indexed_vectors"] >= n  # the HNSW graph is live
        assert len(latencies) > 20, "queries must keep flowing while the index is built"
        # A build that held the GIL in this process would stall a query for about the whole build; bounded by a
        # share of the build's own time, so a loaded machine (a slower build) does not make the bound tight.
        assert max(latencies) < build_s / 4, f"a query waited {max(latencies):.2f}s of a {build_s:.1f}s build"
        assert store.count() == n + late_writes
        assert store.count(Where(equals={"late": "yes"})) == late_writes
        assert not (tmp_path / "s" / first_gen).exists()
    finally:
        store.close()
    reopened = EdgeVectorStore(tmp_path / "s", dim, background=False)
    try:
        assert reopened.count() == n + late_writes
        assert reopened.search(vectors[7], 1)[0].payload["i"] == 7
    finally:
        reopened.close()


def test_concurrent_readers_during_writes_see_consistent_results(tmp_path):
    store = EdgeVectorStore(tmp_path / "s", DIM, background=False)
    points = sample_points()
    store.upsert(points)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                assert store.search(points[3].vector, 1)[0].id == points[3].id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(50):
        store.upsert([VectorPoint(point_id(f"extra{i}"), unit(np.ones(DIM) * (i + 1) - np.arange(DIM)), {})])
    for t in threads:
        t.join()
    store.close()
    assert errors == []


LEXICAL_DOCS = {
    "zh-bleed": "卡迪维与华法林相比，大出血和颅内出血更少。",
    "zh-dose": "格卢可每周一次皮下注射，起始剂量0.25 mg。",
    "en-bleed": "Major bleeding was lower with Cardiovex than with warfarin.",
    "en-hba1c": "Glucora lowered HbA1c by 1.8% at week 40.",
}


def lexical_points(encoder) -> list[VectorPoint]:
    rng = np.random.default_rng(1)
    return [VectorPoint(point_id(key), unit(rng.standard_normal(DIM)), {"key": key, "lang": key[:2]},
                        sparse=encoder.document(text)) for key, text in LEXICAL_DOCS.items()]


def test_lexical_search_finds_chinese_words_inside_longer_words_and_english_terms(store):
    from service.core.lexical import default_encoder

    encoder = default_encoder()
    store.ensure_index("lang", "keyword")
    store.upsert(lexical_points(encoder))
    # 出血 is inside 大出血 and 颅内出血 in the text: search-mode segmentation must still find it
    hits = store.search_lexical(encoder.query("出血风险"), 5)
    assert [h.payload["key"] for h in hits] == ["zh-bleed"]
    hits = store.search_lexical(encoder.query("WARFARIN bleeding"), 5)
    assert hits[0].payload["key"] == "en-bleed"
    assert {h.payload["key"] for h in store.search_lexical(encoder.query("HbA1c"), 5)} == {"en-hba1c"}
    # filters apply to lexical search too; a query of stopwords only finds nothing
    assert store.search_lexical(encoder.query("bleeding"), 5, Where(equals={"lang": "zh"})) == []
    assert store.search_lexical(encoder.query("的 the and"), 5) == []
    # the terms survive retrieve, so a re-write keeps them
    assert store.retrieve([point_id("zh-dose")], with_vectors=True)[0].sparse


def test_a_store_written_before_lexical_search_gains_it_and_is_backfilled_from_sql(tmp_path):
    from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, Point, UpdateOperation

    from service.core.lexical import default_encoder
    from service.store.db import Database
    from service.store.models import Asset, Chunk
    from service.store.reconcile import backfill_lexical

    # an old-format shard: dense vectors only
    gen = tmp_path / "edge" / "gen-000001"
    gen.parent.mkdir()
    old = EdgeShard.create(str(gen), EdgeConfig(vectors=EdgeVectorParams(size=DIM, distance=Distance.Cosine),
                                                wal_enabled=True))
    old.update(UpdateOperation.upsert_points([Point(point_id("a1:1:0"), unit(np.ones(DIM)).tolist(),
                                                    {"asset_id": "a1"})]))
    old.close()
    (tmp_path / "edge" / "CURRENT").write_text("gen-000001\n")
    db = Database(f"sqlite:///{tmp_path / 'hcp.db'}")
    db.migrate()
    with db.session() as s:
        s.add(Asset(id="a1", uri="a1.txt", title="Bleeding", language="en", source="internal", format="txt",
                    current_version=1,
                    chunks=[Chunk(id="a1:1:0", version=1, ordinal=0, text="Major bleeding was rare.",
                                         char_start=0, char_end=24, token_count=5)]))
    store = EdgeVectorStore(tmp_path / "edge", DIM, background=False)
    try:
        assert store.needs_lexical_backfill
        assert store.search_lexical(default_encoder().query("bleeding"), 5) == []
        assert backfill_lexical(db, store) == 1
        hits = store.search_lexical(default_encoder().query("bleeding"), 5)
        assert [h.id for h in hits] == [point_id("a1:1:0")]
        assert store.search(unit(np.ones(DIM)), 1)[0].score == pytest.approx(1.0, abs=1e-4)  # dense kept
    finally:
        store.close()
        db.dispose()


# --- pgvector: BM25 kept honest in SQL, filters on real columns, HNSW with a selective filter --------------------

def bm25_by_hand(points: list[VectorPoint], query) -> dict[str, float]:
    """Σ query weight × document weight × ln((N - n + 0.5) / (n + 0.5) + 1) over the points themselves."""
    import math

    docs = {p.id: dict(zip(p.sparse.indices, p.sparse.values, strict=True)) for p in points if p.sparse}
    out = {}
    for pid, terms in docs.items():
        score = 0.0
        for term, weight in zip(query.indices, query.values, strict=True):
            if term in terms:
                n = sum(term in d for d in docs.values())
                score += weight * terms[term] * math.log((len(docs) - n + 0.5) / (n + 0.5) + 1)
        if score:
            out[pid] = score
    return out


def test_pgvector_bm25_scores_equal_qdrants_and_follow_every_write(tmp_path, pgvector_database):
    """IDF comes from term counts that triggers keep: the pgvector store scores as Qdrant's IDF modifier does over
    the same points, and after a replacement and deletes as BM25 worked out by hand from the points left."""
    from service.core.lexical import default_encoder

    encoder = default_encoder()
    edge = EdgeVectorStore(tmp_path / "edge", DIM, background=False)
    pg = PgVectorStore(pgvector_database, "chunks", DIM)
    queries = [encoder.query(q) for q in ("出血风险", "WARFARIN bleeding", "HbA1c", "剂量 dose", "房颤 stroke")]

    def same(got: list, want: dict[str, float]) -> None:
        assert {h.id for h in got} == set(want)
        for hit in got:
            assert hit.score == pytest.approx(want[hit.id], rel=1e-4)

    try:
        points = lexical_points(encoder)
        for s in (edge, pg):
            s.upsert(points)
        for query in queries:
            same(pg.search_lexical(query, 10), {h.id: h.score for h in edge.search_lexical(query, 10)})
            same(pg.search_lexical(query, 10), bm25_by_hand(points, query))
        replaced = VectorPoint(points[0].id, points[0].vector, points[0].payload,
                               sparse=encoder.document("Warfarin and bleeding: a stroke dose study"))
        pg.upsert([replaced])
        pg.delete([points[1].id, points[2].id])
        left = [replaced, *points[3:]]
        for query in queries:
            same(pg.search_lexical(query, 10), bm25_by_hand(left, query))
        assert pg.search_lexical(encoder.query("stroke"), 10)[0].id == replaced.id, "found by its new terms"
    finally:
        edge.close()
        pg.close()


def test_pgvector_keeps_the_matchers_filter_fields_as_indexed_columns_and_refuses_another_dimension(
        pgvector_database):
    from sqlalchemy import create_engine, text

    from service.store.db import normalise_url
    from service.store.pgvector_store import COLUMNS
    from service.store.points import PAYLOAD_INDEXES

    PgVectorStore(pgvector_database, "chunks", DIM).close()
    engine = create_engine(normalise_url(pgvector_database))
    with engine.connect() as conn:
        columns = set(conn.scalars(text("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'vector_points'")))
        indexed = " ".join(conn.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'vector_points'")))
    engine.dispose()
    assert set(PAYLOAD_INDEXES) <= set(COLUMNS) <= columns
    for name in PAYLOAD_INDEXES:
        assert f"({name})" in indexed or f", {name})" in indexed, f"{name} has no index"
    assert "hnsw (dense vector_cosine_ops)" in indexed
    with pytest.raises(VectorStoreError, match="16-d vectors"):
        PgVectorStore(pgvector_database, "chunks", DIM * 2)


def test_pgvector_fills_the_limit_under_a_selective_filter_with_the_exact_nearest(pgvector_database):
    """60 of 3,000 points pass the filter; HNSW's first neighbours mostly fail it, and the iterative scan must
    still return 20 hits, the 20 nearest that pass."""
    rng = np.random.default_rng(3)
    vectors = np.stack([unit(rng.standard_normal(DIM)) for _ in range(3000)])
    points = [VectorPoint(point_id(f"p{i}"), vectors[i], {"asset_id": f"a{i}", "language": "zh" if i % 50 == 0
                                                           else "en", "valid_until": i})
              for i in range(3000)]
    pg = PgVectorStore(pgvector_database, "chunks", DIM)
    try:
        pg.upsert(points)
        query = unit(rng.standard_normal(DIM))
        hits = pg.search(query, 20, Where(equals={"language": "zh"}, ranges={"valid_until": (None, 2999)}),
                         fields=["asset_id"])
        passing = [i for i in range(3000) if i % 50 == 0]
        exact = sorted(passing, key=lambda i: -float(vectors[i] @ query))[:20]
        assert len(hits) == 20
        assert [h.payload["asset_id"] for h in hits] == [f"a{i}" for i in exact]
        assert hits[0].score == pytest.approx(float(vectors[exact[0]] @ query), abs=1e-5)
        assert set(hits[0].payload) == {"asset_id"}
    finally:
        pg.close()


def test_payload_indexes_are_ensured_once_per_store_not_once_per_ingested_item(tmp_path, embedder):
    """On a Qdrant server every ensure_index is a round trip that waits for the index: a job of many files
    builds an Ingestor per item, and none after the first may ask again."""
    from service.ingest import Ingestor
    from service.settings import Settings
    from service.store.db import Database
    from service.store.points import PAYLOAD_INDEXES

    asked: list[str] = []

    class CountingStore(QdrantServerStore):
        def ensure_index(self, field_name, kind):  # type: ignore[no-untyped-def]
            asked.append(field_name)
            super().ensure_index(field_name, kind)

    store = CountingStore(":memory:", "chunks", embedder.dim)
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    try:
        for _ in range(3):
            Ingestor.from_settings(db, store, embedder, Settings(data_dir=tmp_path, llm_mode="off"))
        assert sorted(asked) == sorted(PAYLOAD_INDEXES)
    finally:
        store.close()
        db.dispose()
