"""Tagging evaluation: run the engine over gold items and report per-label and per-dimension scores."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval import baseline
from eval.datasets import GoldItem
from indexers.chunker import chunk_blocks
from indexers.document import ParsedDocument, TextBlock
from service.core.embeddings import Embedder
from service.core.taxonomy import Taxonomy
from service.reports.runs import Prediction, Run
from service.reports.scores import score, summary
from service.tagging import training
from service.tagging.calibration import out_of_fold
from service.tagging.engine import TaggingEngine
from service.tagging.result import Mode, TaggingResult
from service.tagging.training import LabelledItem


@dataclass
class Prepared:
    item: GoldItem
    chunks: list[str]
    vectors: np.ndarray

    @property
    def asset_vector(self) -> np.ndarray:
        v = self.vectors.mean(axis=0)
        return v / (np.linalg.norm(v) or 1.0)


class VectorCache:
    """Chunk embeddings kept on disk between evaluation runs (embedding long abstracts on CPU is the
    slow part of a benchmark run), keyed by embedder name and chunk text."""

    def __init__(self, path: Path | None, embedder: Embedder) -> None:
        self.path, self.embedder = path, embedder
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False
        if path is not None and path.exists():
            with np.load(path) as data:
                self.vectors = {k: data[k] for k in data.files}

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.embedder.name}\0{text}".encode()).hexdigest()

    def embed(self, chunks: list[str]) -> np.ndarray:
        missing = [c for c in chunks if self._key(c) not in self.vectors]
        if missing:
            for chunk, vector in zip(missing, self.embedder.embed_passages(missing), strict=True):
                self.vectors[self._key(chunk)] = vector
            self.dirty = True
        return np.vstack([self.vectors[self._key(c)] for c in chunks])

    def save(self) -> None:
        if self.path is not None and self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.vectors)  # type: ignore[arg-type]
            self.dirty = False


def prepare(items: list[GoldItem], embedder: Embedder, max_tokens: int = 300,
            progress: Callable[[int], None] | None = None, cache: VectorCache | None = None) -> list[Prepared]:
    """Chunk and embed every item once (modes and folds reuse the vectors)."""
    cache = cache or VectorCache(None, embedder)
    out = []
    for i, item in enumerate(items):
        doc = ParsedDocument(format="txt", blocks=[TextBlock(text=item.text)]).finalise()
        chunks = [c.text for c in chunk_blocks(doc.text, doc.blocks, max_tokens=max_tokens)] or [item.text]
        out.append(Prepared(item, chunks, cache.embed(chunks)))
        if progress:
            progress(1)
        if i % 200 == 199:
            cache.save()
    cache.save()
    return out


def labelled(items: list[Prepared]) -> list[LabelledItem]:
    return [LabelledItem(p.item.text, p.vectors, p.item.labels, title=p.item.title, language=p.item.language,
                         chunks=p.chunks, content_hash=p.item.content_hash, metadata=p.item.metadata) for p in items]


def fit(engine: TaggingEngine, train: list[Prepared], llm_items: int = 0,
        progress: Callable[[int], None] | None = None) -> training.Fitted:
    """Learned heads and calibration from the training split, installed on ``engine``; with ``llm_items``,
    that many training items also teach the calibrator how far to trust the LLM."""
    return training.fit(engine, labelled(train), llm_items=llm_items, progress=progress)


def _tag(engine: TaggingEngine, p: Prepared, mode: Mode) -> TaggingResult:
    return engine.tag(p.item.text, title=p.item.title, language=p.item.language, chunks=p.chunks,
                      chunk_vectors=p.vectors, content_hash=p.item.content_hash, metadata=p.item.metadata, mode=mode)


def score_dimensions(taxonomy: Taxonomy, items: list[Prepared],
                     predictions: list[dict[str, set[str]]]) -> dict[str, Any]:
    """Per dimension (that the gold labels): summary scores plus per-label precision/recall/F1."""
    dimensions: dict[str, Any] = {}
    for dim in taxonomy.dimensions:
        rows = [i for i, p in enumerate(items) if dim.id in p.item.labels]
        if not rows:
            continue
        scores = score([items[i].item.labels[dim.id] for i in rows], [predictions[i][dim.id] for i in rows],
                       dim.value_ids)
        dimensions[dim.id] = {
            **summary(scores),
            "per_label": {k: {"precision": round(s.precision, 4), "recall": round(s.recall, 4),
                              "f1": round(s.f1, 4), "support": s.support} for k, s in scores.items()},
        }
    return dimensions


def _mean_macro(dimensions: dict[str, Any]) -> float:
    return float(np.mean([d["macro_f1"] for d in dimensions.values()])) if dimensions else 0.0


def _report(taxonomy: Taxonomy, items: list[Prepared], predictions: list[dict[str, set[str]]], mode: str,
            seconds: float, tokens: dict[str, int] | None = None) -> dict[str, Any]:
    dimensions = score_dimensions(taxonomy, items, predictions)
    return {"mode": mode, "items": len(items), "seconds": round(seconds, 2),
            "items_per_second": round(len(items) / seconds, 3) if seconds else None,
            "tokens": tokens or {"prompt": 0, "completion": 0, "calls": 0, "llm_unavailable": 0},
            "dimensions": dimensions, "macro_f1_mean": _mean_macro(dimensions)}


def run_baseline(taxonomy: Taxonomy, train: list[Prepared], items: list[Prepared]) -> dict[str, Any]:
    """The field's plain TF-IDF + linear SVM, fitted on ``train``, scored on ``items`` like the engine."""
    started = time.perf_counter()
    predictions = baseline.fit_predict(taxonomy, [p.item for p in train], [p.item for p in items])
    return _report(taxonomy, items, predictions, "baseline", time.perf_counter() - started)


def cross_validate_baseline(taxonomy: Taxonomy, items: list[Prepared], folds: int = 5, seed: int = 7
                            ) -> dict[str, Any]:
    """The baseline over the same folds as :func:`cross_validate` (held-out predictions pooled in fold order)."""
    pooled: list[Prepared] = []
    predictions: list[dict[str, set[str]]] = []

    def fit_predict(train_idx: list[int], held: list[int]) -> None:
        predictions.extend(baseline.fit_predict(taxonomy, [items[i].item for i in train_idx],
                                                [items[i].item for i in held]))
        pooled.extend(items[i] for i in held)

    started = time.perf_counter()
    out_of_fold(len(items), folds, fit_predict, seed=seed)
    return _report(taxonomy, pooled, predictions, f"baseline-cv{folds}", time.perf_counter() - started)


def run(engine: TaggingEngine, items: list[Prepared], mode: Mode,
        progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Predictions for ``items`` and their scores per dimension and per label."""
    started = time.perf_counter()
    results = tag_all(engine, items, mode, progress)
    return _scored(engine.taxonomy, items, results, mode, time.perf_counter() - started)


def _scored(taxonomy: Taxonomy, items: list[Prepared], results: list[TaggingResult], mode: str, seconds: float
            ) -> dict[str, Any]:
    tokens = {"prompt": sum(r.prompt_tokens for r in results), "completion": sum(r.completion_tokens for r in results),
              "calls": sum(r.llm_calls for r in results),
              "llm_unavailable": sum(r.status == "llm_unavailable" for r in results),
              "assets_asked": sum(bool(r.asked) for r in results)}
    return _report(taxonomy, items, _value_sets(taxonomy, results), mode, seconds, tokens)


def score_cross_validated(engine: TaggingEngine, items: list[Prepared], folds: int = 5, mode: Mode = "learned",
                          seed: int = 7) -> dict[str, Any]:
    """:func:`run`'s report for ``mode``, every item tagged by heads fitted on the other folds (the seconds
    include the fitting)."""
    started = time.perf_counter()
    pooled, results = tag_cross_validated(engine, items, folds, mode, seed)
    return _scored(engine.taxonomy, pooled, results, f"{mode}-cv{folds}", time.perf_counter() - started)


def tag_all(engine: TaggingEngine, items: list[Prepared], mode: Mode,
            progress: Callable[[int], None] | None = None) -> list[TaggingResult]:
    results = []
    for p in items:
        results.append(_tag(engine, p, mode))
        if progress:
            progress(1)
    return results


def tag_cross_validated(engine: TaggingEngine, items: list[Prepared], folds: int = 5, mode: Mode = "learned",
                        seed: int = 7) -> tuple[list[Prepared], list[TaggingResult]]:
    """Heads and calibration fitted on k-1 folds, each item tagged while held out; pooled in fold order.
    One engine serves every fold (each fit replaces its heads and calibration; its embedded prototypes stay)."""
    pooled: list[Prepared] = []
    results: list[TaggingResult] = []

    def fit_predict(train_idx: list[int], held: list[int]) -> None:
        fit(engine, [items[i] for i in train_idx])
        for i in held:
            results.append(_tag(engine, items[i], mode))
            pooled.append(items[i])

    out_of_fold(len(items), folds, fit_predict, seed=seed)
    return pooled, results


def _value_sets(taxonomy: Taxonomy, results: list[TaggingResult]) -> list[dict[str, set[str]]]:
    return [{d.id: r.values(d.id) for d in taxonomy.dimensions} for r in results]


def cross_validate(taxonomy: Taxonomy, engine_factory: Callable[[], TaggingEngine],
                   items: list[Prepared], folds: int = 5, mode: Mode = "learned", seed: int = 7) -> dict[str, Any]:
    return score_cross_validated(engine_factory(), items, folds, mode, seed)


def report_run(taxonomy: Taxonomy, items: list[Prepared], results: list[TaggingResult], *, mode: str,
               source: str, label: str) -> Run:
    """Gold items and the engine's tags for them, as a run the report scores (with confidences and methods)."""
    predictions = [Prediction(p.item.id, t.dimension, t.value, t.confidence, t.method)
                   for p, r in zip(items, results, strict=True) for t in r.tags]
    last = results[-1] if results else None
    return Run(label=label, source=source, mode=mode, taxonomy=taxonomy.key,
               gold={p.item.id: {d: set(v) for d, v in p.item.labels.items()} for p in items},
               predictions=predictions, models=dict(last.models) if last else {},
               prompt_version=last.prompt_version if last else None)


def reviewed_items(db: Any, vectors: Any, embedder: Embedder) -> list[Prepared]:
    """The database's reviewed tags as gold items, with each asset's stored chunks and vectors."""
    from service.jobs.material import load_material
    from service.store.tags import reviewed_gold

    out = []
    with db.session() as s:
        golds = reviewed_gold(s)
    for gold in golds:
        m = load_material(db, vectors, embedder, gold.asset_id)
        if m is None:
            continue
        item = GoldItem(id=m.asset_id, text=m.text, labels=gold.labels, title=m.title, language=m.language,
                        chunks=m.chunks, content_hash=m.content_hash, metadata=m.metadata)
        out.append(Prepared(item, m.chunks, m.vectors))
    return out
