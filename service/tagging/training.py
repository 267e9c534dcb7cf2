"""Fitting the tagger on labelled examples: learned heads on asset embeddings, then the calibrator on
held-out signals. Reviewed tags in production and training splits in evaluation both come through here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from service.tagging.calibration import Calibrator, Example, out_of_fold
from service.tagging.engine import TaggingEngine
from service.tagging.learned import LearnedHeads

log = logging.getLogger(__name__)


@dataclass
class LabelledItem:
    text: str
    chunk_vectors: np.ndarray
    labels: dict[str, set[str]]  # dimension -> values; a dimension absent here is unlabelled
    title: str = ""
    language: str = "en"
    chunks: list[str] | None = None
    content_hash: str | None = None

    @property
    def asset_vector(self) -> np.ndarray:
        v = self.chunk_vectors.mean(axis=0) if self.chunk_vectors.ndim == 2 else self.chunk_vectors
        return v / (np.linalg.norm(v) or 1.0)


def fit_heads(engine: TaggingEngine, items: Sequence[LabelledItem]) -> LearnedHeads:
    vectors = np.vstack([i.asset_vector for i in items])
    return LearnedHeads(engine.taxonomy).fit(vectors, [i.labels for i in items])


def fit(engine: TaggingEngine, items: Sequence[LabelledItem], folds: int = 5, llm_items: int = 0,
        progress: Callable[[int], None] | None = None) -> tuple[LearnedHeads, Calibrator]:
    """Heads on every item; the calibrator on out-of-fold signals (a head scores its own training items too
    well, so each item's learned feature comes from heads that never saw it). Installs both on ``engine``.

    With ``llm_items`` > 0 and an LLM on the engine, that many items (a seeded sample) are also put to the
    LLM, with the out-of-fold heads, so the calibrator learns how far to trust its answers. The LLM's
    answers are cached, so items it has seen before cost no tokens."""
    examples: list[Example | None] = [None] * len(items)
    ask = set(np.random.default_rng(11).permutation(len(items))[:llm_items].tolist()) \
        if llm_items and engine.llm is not None else set()

    def fit_predict(train_idx: list[int], held: list[int]) -> None:
        heads = fit_heads(engine, [items[i] for i in train_idx])
        for i in held:
            it = items[i]
            llm = engine.ask_for_training(it.text, title=it.title, language=it.language,
                                          chunks=it.chunks or [it.text], chunk_vectors=it.chunk_vectors,
                                          content_hash=it.content_hash, heads=heads) if i in ask else None
            examples[i] = Example(engine.signals(it.text, it.chunk_vectors, heads=heads), it.labels, llm)
            if progress and i in ask:
                progress(1)

    if len(items) >= 2 * folds:
        out_of_fold(len(items), folds, fit_predict)
    heads = fit_heads(engine, items)
    calibrator = Calibrator.fit(engine.taxonomy, [e for e in examples if e is not None])
    engine.heads, engine.calibrator = heads, calibrator
    log.info("fitted %d heads and %d calibrated dimensions on %d items", len(heads.models), len(calibrator.models),
             len(items))
    return heads, calibrator
