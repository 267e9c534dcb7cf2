"""Fitting the tagger on labelled examples: both learned heads (embedding and lexical), then the calibrator on
their out-of-fold signals. Reviewed tags in production and training splits in evaluation both come through here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from service.tagging.calibration import Calibrator, Example, out_of_fold
from service.tagging.context import ContextHead, Facts, facts_of
from service.tagging.engine import TaggingEngine
from service.tagging.examples import ExampleBank
from service.tagging.learned import LearnedHeads
from service.tagging.lexical import LexicalHeads
from service.tagging.proposer import Heads, asset_vector

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
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def asset_vector(self) -> np.ndarray:
        return asset_vector(self.chunk_vectors)


@dataclass
class Fitted:
    heads: Heads
    calibrator: Calibrator
    seconds: float


def item_facts(engine: TaggingEngine, item: LabelledItem) -> Facts:
    return facts_of(engine.taxonomy, item.metadata, item.labels)


def fit_heads(engine: TaggingEngine, items: Sequence[LabelledItem]) -> Heads:
    labels = [i.labels for i in items]
    vectors = np.vstack([i.asset_vector for i in items])
    return Heads(LearnedHeads(engine.taxonomy).fit(vectors, labels),
                 LexicalHeads(engine.taxonomy).fit([i.text for i in items], labels),
                 ExampleBank.build(engine.taxonomy,
                                   [(i.text, v, i.labels) for i, v in zip(items, vectors, strict=True)]),
                 ContextHead.fit(engine.taxonomy, [item_facts(engine, i) for i in items], labels))


def fit(engine: TaggingEngine, items: Sequence[LabelledItem], folds: int = 5, llm_items: int = 0,
        progress: Callable[[int], None] | None = None) -> Fitted:
    """Heads on every item; the calibrator on out-of-fold signals (a head scores its own training items too
    well, so each item's head features come from heads that never saw it). Installs all on ``engine``.

    With ``llm_items`` > 0 and an LLM on the engine, that many items (a seeded sample) are also put to the
    LLM, with the out-of-fold heads, so the calibrator learns how far to trust its answers. The LLM's
    answers are cached, so items it has seen before cost no tokens."""
    started = time.perf_counter()
    examples: list[Example | None] = [None] * len(items)
    ask = set(np.random.default_rng(11).permutation(len(items))[:llm_items].tolist()) \
        if llm_items and engine.llm is not None else set()

    def fit_predict(train_idx: list[int], held: list[int]) -> None:
        heads = fit_heads(engine, [items[i] for i in train_idx])
        held_items = [items[i] for i in held]
        signals = engine.proposer.signals_many([it.text for it in held_items],
                                               [it.chunk_vectors for it in held_items], heads,
                                               facts=[item_facts(engine, it) for it in held_items])
        for i, it, sig in zip(held, held_items, signals, strict=True):
            llm = engine.ask_for_training(it.text, title=it.title, language=it.language,
                                          chunks=it.chunks or [it.text], chunk_vectors=it.chunk_vectors,
                                          content_hash=it.content_hash, heads=heads) if i in ask else None
            examples[i] = Example(sig, it.labels, llm)
            if progress and i in ask:
                progress(1)

    if len(items) >= 2 * folds:
        out_of_fold(len(items), folds, fit_predict)
    heads = fit_heads(engine, items)
    calibrator = Calibrator.fit(engine.taxonomy, [e for e in examples if e is not None])
    engine.install(heads, calibrator)
    seconds = time.perf_counter() - started
    log.info("fitted %d heads and %d calibrated dimensions on %d items in %.1fs", heads.count,
             len(calibrator.models), len(items), seconds)
    return Fitted(heads, calibrator, seconds)
