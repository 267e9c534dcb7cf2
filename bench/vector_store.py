"""Embedded vector store: filtered top-10 latency against a brute-force numpy scan of the same vectors,
and query latency while the background HNSW build runs. Prints ratios measured in this run.

    python bench/vector_store.py [--points 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from service.store.edge_store import EdgeVectorStore
from service.store.vectors import VectorPoint, Where, point_id

DIM = 384


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def run(n: int, queries: int) -> None:
    rng = np.random.default_rng(0)
    # Clustered like real embeddings (topics), not uniform noise, which no ANN index can organise.
    centroids = rng.standard_normal((max(50, n // 100), DIM)).astype(np.float32)
    vectors = centroids[rng.integers(0, len(centroids), n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    langs = np.array(["zh", "en"])[rng.integers(0, 2, n)]
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "s", DIM, optimize_after=n, background=True)
        store.ensure_index("lang", "keyword")
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            store.upsert([VectorPoint(point_id(str(i)), vectors[i], {"lang": str(langs[i]), "i": i})
                          for i in range(start, min(n, start + 1000))])
        insert_s = time.perf_counter() - t0
        # Queries while the background build runs.
        during: list[float] = []
        q_during = rng.standard_normal((10_000, DIM)).astype(np.float32)
        build_started = time.perf_counter()
        k = 0
        while store.rebuilding:
            t = time.perf_counter()
            store.search(q_during[k % len(q_during)], 10, Where(equals={"lang": "zh"}))
            during.append(time.perf_counter() - t)
            k += 1
            time.sleep(0.005)
        build_s = time.perf_counter() - build_started
        qs = vectors[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, DIM)).astype(np.float32)
        edge_lat, numpy_lat, recall = [], [], []
        zh_mask = langs == "zh"
        for q in qs:
            t = time.perf_counter()
            hits = store.search(q, 10, Where(equals={"lang": "zh"}))
            edge_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            scores = vectors @ (q / np.linalg.norm(q))
            scores[~zh_mask] = -np.inf
            top = np.argpartition(-scores, 10)[:10]
            numpy_lat.append(time.perf_counter() - t)
            recall.append(len({h.payload["i"] for h in hits} & set(top.tolist())) / 10)
        info = store.info()
        store.close()
    p50_e, p99_e = percentile(edge_lat, 50), percentile(edge_lat, 99)
    p50_n, p99_n = percentile(numpy_lat, 50), percentile(numpy_lat, 99)
    print(f"\n{n:,} points x {DIM}-d (insert {n / insert_s:,.0f} points/s; HNSW built in background in "
          f"{build_s:.1f}s, indexed {info['indexed_vectors']:,})")
    print(f"  filtered top-10  qdrant-edge p50 {p50_e:.2f} ms p99 {p99_e:.2f} ms | numpy scan p50 {p50_n:.2f} ms "
          f"p99 {p99_n:.2f} ms | speed-up p50 x{p50_n / p50_e:.1f} | recall@10 vs exact {statistics.mean(recall):.3f}")
    if during:
        print(f"  during the build: {len(during)} queries answered, p50 {percentile(during, 50):.2f} ms, "
              f"max {max(during) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    for n in args.points:
        run(n, args.queries)


if __name__ == "__main__":
    main()
