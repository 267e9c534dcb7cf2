"""Ranking quality of matching: nDCG@10 and recall@k of the hybrid pipeline against the dense-only baseline,
measured in the same run on the same store.

Two judged sets:
- the project's own (samples/matching.yaml): HCP needs → graded sample assets, on the ingested samples;
- KUAKE-QTR dev (a path): Chinese medical queries → page titles graded 0–3. Every title of the split is one
  document; each query is a free-text need. No taxonomy tags exist there, so "hybrid" is dense + BM25.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select

from eval.tagging import VectorCache
from service.core.taxonomy import Taxonomy
from service.ingest import Ingestor, asset_payload, chunk_point
from service.matching.matcher import CHANNELS, Channel, Matcher
from service.matching.schemas import MatchRequest
from service.runtime import Components
from service.store.models import Asset, Chunk

# what is compared: name → (channels, MMR on)
VARIANTS: dict[str, tuple[tuple[Channel, ...], bool]] = {
    "dense": (("dense",), False),
    "lexical": (("lexical",), False),
    "tags": (("tags",), False),
    "dense+lexical": (("dense", "lexical"), False),
    "hybrid": (CHANNELS, False),
    "hybrid+mmr": (CHANNELS, True),
}


@dataclass
class Judged:
    id: str
    request: MatchRequest
    relevant: dict[str, int]  # document key → grade


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    gains = [2 ** grades.get(doc, 0) - 1 for doc in ranked[:k]]
    ideal = sorted((2 ** g - 1 for g in grades.values() if g > 0), reverse=True)[:k]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], grades: dict[str, int], k: int) -> float:
    wanted = {d for d, g in grades.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def load_judged(path: Path, k: int) -> list[Judged]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Judged(p["id"], MatchRequest(need_tags=p.get("need_tags", {}), need_text=p.get("need_text"),
                                         language=p.get("language", "zh"), k=k, external_share=None),
                   dict(p["relevant"])) for p in data["profiles"]]


def load_kuake(path: Path, limit: int | None, seed: int, k: int) -> tuple[list[Judged], list[str]]:
    """Judged queries (grade ≥ 1 counts as relevant) and the corpus: every title in the file."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    titles = sorted({r["title"] for r in rows})
    by_query: dict[str, dict[str, int]] = {}
    for r in rows:
        by_query.setdefault(r["query"], {})[r["title"]] = max(int(r["label"]),
                                                               by_query.get(r["query"], {}).get(r["title"], 0))
    queries = sorted(q for q, grades in by_query.items() if any(g > 0 for g in grades.values()))
    if limit is not None and limit < len(queries):
        queries = sorted(random.Random(seed).sample(queries, limit))
    judged = [Judged(f"q{i}", MatchRequest(need_text=q, language="zh", k=k, external_share=None), by_query[q])
              for i, q in enumerate(queries)]
    return judged, titles


def run(matcher: Matcher, taxonomy: Taxonomy, judged: list[Judged], key_of: Callable[[str], str],
        variants: Iterable[str] = tuple(VARIANTS), k: int = 10,
        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every variant on every judged need; ``key_of`` maps a returned asset id to the judged set's key."""
    names = list(variants)
    per: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    started = time.perf_counter()
    for i, item in enumerate(judged):
        for name in names:
            channels, mmr = VARIANTS[name]
            usable = [c for c in channels if c != "tags" or item.request.need_tags]
            if not usable:
                continue
            out = matcher.match(item.request, taxonomy, channels=usable, diversify=mmr)
            ranked = [key_of(r.asset_id) for r in out.results]
            per[name].append({"ndcg@10": ndcg(ranked, item.relevant, 10),
                              f"recall@{k}": recall(ranked, item.relevant, k)})
        if progress:
            progress(i + 1, len(judged))
    summary = {name: {metric: round(float(np.mean([r[metric] for r in rows])), 4) for metric in rows[0]}
               | {"needs": len(rows)} for name, rows in per.items() if rows}
    return {"variants": summary, "needs": len(judged), "seconds": round(time.perf_counter() - started, 1)}


def index_samples(components: Components, content: Path) -> Callable[[str], str]:
    """Ingest and tag (without the LLM) the sample content; asset id → source key."""
    c = components
    Ingestor(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger, tagging_mode="learned").ingest_path(content)
    with c.db.session() as s:
        uri = {a.id: a.uri or a.id for a in s.scalars(select(Asset))}
    return lambda asset_id: uri.get(asset_id, asset_id)


def index_titles(components: Components, titles: list[str], cache: VectorCache,
                 progress: Callable[[int], None] | None = None, batch: int = 256) -> Callable[[str], str]:
    """One approved asset per title (dense vector + BM25 terms); asset id → title."""
    c = components
    with c.db.session() as s:
        for start in range(0, len(titles), batch):
            part = list(enumerate(titles[start:start + batch], start))
            vectors = cache.embed([t for _, t in part])
            assets = [Asset(id=f"t{i}", title=t, language="zh", source="internal", format="txt", uri=f"title:{i}",
                            approval_status="approved", current_version=1) for i, t in part]
            s.add_all(assets)
            s.add_all(Chunk(id=f"t{i}:1:0", asset_id=f"t{i}", version=1, ordinal=0, text=t, char_start=0,
                            char_end=len(t), token_count=len(t)) for i, t in part)
            c.vectors.upsert([chunk_point(f"t{i}:1:0", v, asset_payload(a, []), 1, None, None, t)
                              for (i, t), v, a in zip(part, vectors, assets, strict=True)])
            s.flush()
            if progress:
                progress(len(part))
    cache.save()
    return lambda asset_id: titles[int(asset_id[1:])]
