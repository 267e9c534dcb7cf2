"""Ranking quality of matching: nDCG@10 and recall@k of every variant (each channel alone, BM25 among them,
their fusions, MMR) beside the default configuration, measured in the same run on the same store; and the
fusion fitted on judged needs (``fit_fusion``), scored on needs it was not fitted on.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select

from eval.tagging import VectorCache
from service.core.taxonomy import Taxonomy
from service.ingest import Ingestor
from service.matching.cards import FAMILY
from service.matching.config import Channel, Diversity, Fusion, NeedKind
from service.matching.matcher import CHANNELS, Matcher, need_kind, usable_channels
from service.matching.need import parse_need
from service.matching.pool import Pool
from service.matching.schemas import MatchRequest
from service.runtime import Components
from service.store.models import Asset, Chunk
from service.store.points import asset_payload, chunk_point
from service.store.visibility import Scope, resolve_scope

# what is compared: name → (channels, diversity; None: the settings', floored). "default" is what the API serves:
# every channel, the settings' diversity, the relevance floor; "unfloored" is the same list always filled to k.
VARIANTS: dict[str, tuple[tuple[Channel, ...], Diversity | None, bool]] = {
    "dense": (("dense",), "none", False),
    "bm25": (("lexical",), "none", False),
    "tags": (("tags",), "none", False),
    "dense+bm25": (("dense", "lexical"), "none", False),
    "hybrid": (CHANNELS, "none", False),
    "hybrid+mmr": (CHANNELS, "mmr", False),
    "unfloored": (CHANNELS, None, False),
    "default": (CHANNELS, None, True),
}
BASELINE = "bm25"


@dataclass
class Judged:
    id: str
    request: MatchRequest
    relevant: dict[str, int]  # document key → grade
    scope: dict[str, list[str]] | None = None  # a rep key's scope: products and/or areas

    def scoped(self, taxonomy: Taxonomy) -> Scope | None:
        return resolve_scope(self.scope.get("products", []), self.scope.get("areas", []),
                             taxonomy) if self.scope else None

    @property
    def served(self) -> bool:
        """Some visible content is relevant to it (grade >= 1): a need without is one a list must leave empty."""
        return any(g > 0 for g in self.relevant.values())


def precision(ranked: list[str], grades: dict[str, int], k: int) -> float | None:
    """The share of what is listed (at most k) that is relevant (grade >= 1); None when nothing is listed."""
    listed = list(dict.fromkeys(ranked))[:k]
    return sum(1 for doc in listed if grades.get(doc, 0) > 0) / len(listed) if listed else None


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    """A document listed twice (two copies of one family, judged as one) gains once."""
    ranked = list(dict.fromkeys(ranked))
    gains = [2 ** grades.get(doc, 0) - 1 for doc in ranked[:k]]
    ideal = sorted((2 ** g - 1 for g in grades.values() if g > 0), reverse=True)[:k]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], grades: dict[str, int], k: int) -> float:
    ranked = list(dict.fromkeys(ranked))
    wanted = {d for d, g in grades.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def load_judged(path: Path, k: int) -> list[Judged]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Judged(p["id"], MatchRequest(need_tags=p.get("need_tags", {}), need_text=p.get("need_text"),
                                         language=p.get("language", "zh"), only_language=p.get("only_language", False),
                                         k=k, external_share=None),
                   dict(p["relevant"] or {}), p.get("scope")) for p in data["profiles"]]


def load_kuake(path: Path, limit: int | None, seed: int, k: int, fit: int = 0) -> tuple[list[Judged], list[str]]:
    """Judged queries (grade ≥ 1 counts as relevant) and the corpus: every title in the file. ``fit`` > 0
    adds that many more queries after the ``limit`` sampled ones, disjoint from them (for fitting)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    titles = sorted({r["title"] for r in rows})
    by_query: dict[str, dict[str, int]] = {}
    for r in rows:
        by_query.setdefault(r["query"], {})[r["title"]] = max(int(r["label"]),
                                                               by_query.get(r["query"], {}).get(r["title"], 0))
    queries = sorted(q for q, grades in by_query.items() if any(g > 0 for g in grades.values()))
    if limit is not None and limit < len(queries):
        scored = sorted(random.Random(seed).sample(queries, limit))
        rest = sorted(set(queries) - set(scored))
        queries = scored + sorted(random.Random(seed + 1).sample(rest, min(fit, len(rest))))
    judged = [Judged(f"q{i}", MatchRequest(need_text=q, language="zh", k=k, external_share=None), by_query[q])
              for i, q in enumerate(queries)]
    return judged, titles


def run(matcher: Matcher, taxonomy: Taxonomy, judged: list[Judged], key_of: Callable[[str], str],
        variants: Iterable[str] = tuple(VARIANTS), k: int = 10,
        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every variant on every judged need; ``key_of`` maps a returned asset id to the judged set's key."""
    names = list(variants)
    per: dict[str, list[dict[str, float | None]]] = {name: [] for name in names}
    unserved: dict[str, list[int]] = {name: [] for name in names}  # per variant: results listed per unserved need
    started = time.perf_counter()
    for i, item in enumerate(judged):
        need = parse_need(taxonomy, item.request.need_tags, item.request.need_text)
        for name in names:
            channels, diversity, floored = VARIANTS[name]
            usable = usable_channels(need, channels)
            if not usable:
                continue
            out = matcher.match(item.request, taxonomy, scope=item.scoped(taxonomy), channels=usable,
                                diversity=diversity, floored=floored)
            ranked = [key_of(r.asset_id) for r in out.results]
            if not item.served:
                unserved[name].append(len(ranked))
                continue
            per[name].append({"ndcg@10": ndcg(ranked, item.relevant, 10),
                              f"recall@{k}": recall(ranked, item.relevant, k),
                              f"precision@{k}": precision(ranked, item.relevant, k),
                              "listed": float(len(ranked))})
        if progress:
            progress(i + 1, len(judged))
    summary: dict[str, dict[str, float | None]] = {}
    for name, rows in per.items():
        if rows:
            summary[name] = {}
            for metric in rows[0]:
                found = [float(v) for r in rows if (v := r[metric]) is not None]
                summary[name][metric] = round(float(np.mean(found)), 4) if found else None
            summary[name]["needs"] = len(rows)
            filled = unserved[name]
            summary[name]["false fill"] = round(sum(1 for n in filled if n) / len(filled), 4) if filled else None
            summary[name]["unserved needs"] = len(filled)
    base = summary.get(BASELINE, {}).get("ndcg@10")
    for values in summary.values():
        ours = values["ndcg@10"]
        values["vs bm25"] = round(ours - base, 4) if base is not None and ours is not None else None
    return {"variants": summary, "needs": len(judged), "seconds": round(time.perf_counter() - started, 1)}


# --- fitting the fusion --------------------------------------------------------------------------------
LEXICAL_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)
TAG_WEIGHTS = (0.5, 1.0, 2.0)
RRF_KS = (10, 30, 60)


@dataclass
class JudgedSet:
    """One judged set ready for re-ranking: each need's candidates retrieved once."""

    name: str
    matcher: Matcher
    taxonomy: Taxonomy
    judged: list[Judged]
    key_of: Callable[[str], str]
    candidates: list[Pool] | None = None
    kinds: list[NeedKind] = field(default_factory=list)  # each need's kind, found by prepare()
    channels: list[set[Channel]] = field(default_factory=list)  # each need's usable channels, likewise
    _scores: dict[tuple[Any, ...], list[float]] = field(default_factory=dict)  # per fusion, every need's nDCG

    def prepare(self) -> JudgedSet:
        self.candidates, self.kinds, self.channels = [], [], []
        for item in self.judged:
            need = parse_need(self.taxonomy, item.request.need_tags, item.request.need_text)
            self.kinds.append(need_kind(need))
            self.channels.append(set(usable_channels(need)))
            self.candidates.append(self.matcher.candidates(item.request, need, self.taxonomy, self.channels[-1],
                                                           item.scoped(self.taxonomy)))
        return self

    def kind(self, i: int) -> NeedKind:
        return self.kinds[i]

    def scores(self, fusion: Fusion | None, which: list[int] | None = None) -> list[float]:
        """nDCG@10 of the default diversity under ``fusion`` (None: the settings' for each need's kind), per
        judged need (``which``: these only)."""
        assert self.candidates is not None, "prepare() first"
        key = ("settings",) if fusion is None else (tuple(sorted(fusion.weights.items())), fusion.rrf_k, fusion.method)
        if key not in self._scores:
            every = []
            for i, (item, candidates) in enumerate(zip(self.judged, self.candidates, strict=True)):
                used = fusion or self.matcher.config.fusion(self.kind(i))
                picked = self.matcher.rank(candidates, item.request, self.channels[i], used,
                                           self.matcher.config.diversity)
                every.append(ndcg([self.key_of(c.asset_id) for c in picked], item.relevant))
            self._scores[key] = every
        return [self._scores[key][i] for i in (which if which is not None else range(len(self.judged)))]


def fusion_grid(kind: NeedKind) -> list[Fusion]:
    """Reciprocal-rank fusion over weights × constants, and the weighted sum of normalised scores over the same
    weights (no constant there)."""
    tags = TAG_WEIGHTS if kind == "tags" else (1.0,)  # a free-text need has no tag channel
    rrf = [Fusion({"dense": 1.0, "lexical": lex, "tags": t}, k)
           for lex in LEXICAL_WEIGHTS for t in tags for k in RRF_KS]
    weighted = [Fusion({"dense": 1.0, "lexical": lex, "tags": t}, method="weighted")
                for lex in LEXICAL_WEIGHTS for t in tags]
    return rrf + weighted


def _score_matrix(sets: list[tuple[JudgedSet, list[int]]], grid: list[Fusion]) -> np.ndarray:
    """nDCG@10 per grid point (rows) per need (columns, every set's given needs pooled)."""
    return np.asarray([[v for js, idx in sets if idx for v in js.scores(fusion, idx)] for fusion in grid])


def best_fusion(sets: list[tuple[JudgedSet, list[int]]], grid: list[Fusion]) -> tuple[Fusion, float]:
    """The fusion for these needs, in two steps, so that a method does not win by fitting noise:
    1. the method (reciprocal rank or weighted sum) whose own weights, fitted leave-one-need-out over these
       needs, score best on the need left out (on a dozen needs the weighted sum fits them better and
       generalises worse; on a thousand it generalises too);
    2. that method's grid point with the best mean nDCG@10 over all these needs (ties: earliest).
    Needs are pooled, not sets: two free-text sample needs must not weigh as much as four hundred KUAKE-QTR
    queries. Returns the fusion and its mean over the needs."""
    methods = list(dict.fromkeys(f.method for f in grid))
    chosen, chosen_score = methods[0], -1.0
    for method in methods:
        points = [f for f in grid if f.method == method]
        scores = _score_matrix(sets, points)
        n = scores.shape[1]
        if n > 1:  # each need scored with the point that is best on the others
            without = (scores.sum(axis=1, keepdims=True) - scores) / (n - 1)
            held_out = float(np.mean(scores[np.argmax(without, axis=0), np.arange(n)]))
        else:
            held_out = float(scores.max())
        if held_out > chosen_score + 1e-9:
            chosen, chosen_score = method, held_out
    points = [f for f in grid if f.method == chosen]
    means = _score_matrix(sets, points).mean(axis=1)
    best = int(np.argmax(means))  # the first of equal means
    return points[best], float(means[best])


def fit_fusion(sets: list[JudgedSet], held_out: dict[str, list[int]]) -> dict[str, Any]:
    """Fit channel weights and the RRF constant per need kind (tag needs; free text only), on every judged
    set's needs of that kind.

    ``held_out[name]``: needs of that set kept out of every fit and scored with the final weights. A set with
    none is scored leave-one-need-out instead: each of its needs ranked with weights fitted without it (and
    with the other sets' fitting needs); deterministic, and the least wasteful with a dozen needs."""
    kinds: dict[NeedKind, list[tuple[JudgedSet, list[int]]]] = {}
    for js in sets:
        kept_out = set(held_out.get(js.name, []))
        for kind in ("tags", "text"):
            # a need nothing serves scores 0 under every fusion: it says nothing about how to fuse
            idx = [i for i in range(len(js.judged))
                   if i not in kept_out and js.kind(i) == kind and js.judged[i].served]
            if idx:
                kinds.setdefault(kind, []).append((js, idx))
    report: dict[str, Any] = {"fitted": {}, "sets": {}}
    final: dict[NeedKind, Fusion] = {}
    for kind, fitting in kinds.items():
        grid = fusion_grid(kind)
        final[kind], score = best_fusion(fitting, grid)
        report["fitted"][kind] = {"method": final[kind].method, "weights": dict(final[kind].weights),
                                  "rrf_k": final[kind].rrf_k if final[kind].method == "rrf" else None,
                                  "fit_ndcg@10": round(score, 4), "grid": len(grid),
                                  "needs": sum(len(idx) for _, idx in fitting)}
    for js in sets:
        if held_out.get(js.name):
            idx = held_out[js.name]
            fitted = [js.scores(final[js.kind(i)], [i])[0] for i in idx]
            protocol = "held-out queries"
        else:
            idx = [i for i in range(len(js.judged)) if js.judged[i].served]
            fitted = []
            for i in idx:
                kind = js.kind(i)
                fitting = [(o, [j for j in o_idx if o is not js or j != i]) for o, o_idx in kinds[kind]]
                fold, _ = best_fusion(fitting, fusion_grid(kind))
                fitted.append(js.scores(fold, [i])[0])
            protocol = "leave-one-need-out"
        report["sets"][js.name] = {"held_out_needs": len(idx), "protocol": protocol,
                                   "settings_ndcg@10": round(float(np.mean(js.scores(None, idx))), 4),
                                   "fitted_ndcg@10": round(float(np.mean(fitted)), 4)}
    return report


def index_samples(components: Components, content: Path) -> Callable[[str], str]:
    """Ingest and tag (without the LLM) the sample content; asset id → its judged unit: the source key, or for
    an asset of a content family (its metadata's ``family``: the zh and en copies of one deck) the family,
    since a rep given one copy has the piece (see ``by_family``)."""
    c = components
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger, tagging_mode="learned")
    ingestor.ingest_path(content)
    with c.db.session() as s:
        unit = {a.id: unit_key(a) for a in s.scalars(select(Asset))}
    return lambda asset_id: unit.get(asset_id, asset_id)


def unit_key(asset: Asset) -> str:
    """What the judged sets grade: a family once, else the source key."""
    family = (asset.extra or {}).get(FAMILY)
    return f"family:{family}" if family else (asset.uri or asset.id)


def by_family(judged: list[Judged], components: Components) -> list[Judged]:
    """The judged grades per unit: a family's grade is its best copy's (one copy listed is the piece
    delivered; the other is that result's alternate)."""
    with components.db.session() as s:
        unit = {a.uri: unit_key(a) for a in s.scalars(select(Asset)) if a.uri}
    out = []
    for item in judged:
        grades: dict[str, int] = {}
        for key, grade in item.relevant.items():
            u = unit.get(key, key)
            grades[u] = max(grade, grades.get(u, 0))
        out.append(Judged(item.id, item.request, grades, item.scope))
    return out


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
