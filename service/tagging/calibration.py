"""Calibration: turn the non-LLM signals into a probability per (dimension, value), fitted on labelled examples.

Before any reviewed examples exist the engine uses a hand-set prior (``Weights``). Once there are enough
(reviewed tags in production, a training split in evaluation) a logistic regression per dimension maps
the signals — embedding z-score, keyword hits, the learned head's logit — to a probability that means
what it says, and a per-dimension selection threshold is chosen to maximise F1 on the same examples.

The learned head's feature must be out-of-fold when fitting (a head scores its own training examples too
well), so ``fit_with_heads`` fits the heads k times and calibrates on held-out predictions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from service.core.taxonomy import Taxonomy

log = logging.getLogger(__name__)
MIN_POSITIVES = 5
FEATURES = ("embedding_z", "keyword_hits", "learned_logit", "has_learned")


def features(embedding_z: float, keyword_hits: int, learned: float | None) -> list[float]:
    return [embedding_z, float(min(keyword_hits, 3)), logit(learned) if learned is not None else 0.0,
            1.0 if learned is not None else 0.0]


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


LLMSignal = tuple[bool, float, bool]  # (offered to the LLM, its confidence if chosen else 0, quote verified)


def llm_features(prior_logit: float, signal: LLMSignal) -> list[float]:
    offered, conf, verified = signal
    chosen = conf > 0
    return [prior_logit, conf if chosen and verified else 0.0, conf if chosen and not verified else 0.0,
            1.0 if offered and not chosen else 0.0]


@dataclass
class Example:
    """One labelled item's signals: ``signals[dim][value] = (embedding_z, keyword_hits, learned)``, and
    when the LLM was asked about it, ``llm[dim][value]`` (see ``LLMSignal``)."""

    signals: dict[str, dict[str, tuple[float, int, float | None]]]
    labels: dict[str, set[str]]
    llm: dict[str, dict[str, LLMSignal]] | None = None


@dataclass
class Calibrator:
    taxonomy_key: str
    models: dict[str, LogisticRegression] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    examples: int = 0
    # how far to trust the LLM against the calibrated prior: one model pooled over dimensions (too few
    # LLM-judged examples per dimension otherwise), fitted only when enough examples carry LLM answers
    llm_model: LogisticRegression | None = None
    llm_thresholds: dict[str, float] = field(default_factory=dict)
    llm_examples: int = 0

    @classmethod
    def fit(cls, taxonomy: Taxonomy, examples: Sequence[Example]) -> Calibrator:
        cal = cls(taxonomy.key, examples=len(examples))
        for dim in taxonomy.dimensions:
            rows = [e for e in examples if dim.id in e.labels and dim.id in e.signals]
            x = [features(*e.signals[dim.id][v.id]) for e in rows for v in dim.values]
            y = [v.id in e.labels[dim.id] for e in rows for v in dim.values]
            if sum(y) < MIN_POSITIVES or len(y) - sum(y) < MIN_POSITIVES:
                continue
            model = LogisticRegression(C=1.0, max_iter=2000)
            model.fit(np.asarray(x), np.asarray(y))
            cal.models[dim.id] = model
            probs = model.predict_proba(np.asarray(x))[:, 1].reshape(len(rows), len(dim.values))
            truth = np.asarray(y).reshape(len(rows), len(dim.values))
            cal.thresholds[dim.id] = _best_threshold(probs, truth, single=dim.cardinality == "single")
        cal._fit_llm(taxonomy, [e for e in examples if e.llm is not None])
        log.info("calibrated %d dimensions on %d examples (LLM stage: %s)", len(cal.models), len(examples),
                 f"{cal.llm_examples} examples" if cal.llm_model is not None else "prior")
        return cal

    def _fit_llm(self, taxonomy: Taxonomy, examples: Sequence[Example], minimum: int = 20) -> None:
        if len(examples) < minimum:
            return
        rows: list[tuple[str, int, list[float], bool]] = []
        for n, e in enumerate(examples):
            assert e.llm is not None
            for dim in taxonomy.dimensions:
                if dim.id not in e.labels or dim.id not in e.llm or dim.id not in self.models:
                    continue
                for v in dim.values:
                    p = self.probability(dim.id, *e.signals[dim.id][v.id])
                    assert p is not None
                    signal = e.llm[dim.id].get(v.id, (False, 0.0, False))
                    rows.append((dim.id, n, llm_features(logit(p), signal), v.id in e.labels[dim.id]))
        y = np.asarray([r[3] for r in rows])
        if y.sum() < MIN_POSITIVES or (~y).sum() < MIN_POSITIVES:
            return
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(np.asarray([r[2] for r in rows]), y)
        self.llm_model, self.llm_examples = model, len(examples)
        for dim in taxonomy.dimensions:
            mine = [r for r in rows if r[0] == dim.id]
            if not mine:
                continue
            probs = model.predict_proba(np.asarray([r[2] for r in mine]))[:, 1].reshape(-1, len(dim.values))
            truth = np.asarray([r[3] for r in mine]).reshape(-1, len(dim.values))
            self.llm_thresholds[dim.id] = _best_threshold(probs, truth, single=dim.cardinality == "single")

    def with_llm(self, dimension: str, prior: float, signal: LLMSignal) -> float | None:
        """The probability after the LLM's say, or None when no LLM stage is fitted for ``dimension``."""
        if self.llm_model is None or dimension not in self.llm_thresholds:
            return None
        return float(self.llm_model.predict_proba(np.asarray([llm_features(logit(prior), signal)]))[0, 1])

    def probability(self, dimension: str, embedding_z: float, keyword_hits: int, learned: float | None
                    ) -> float | None:
        model = self.models.get(dimension)
        if model is None:
            return None
        return float(model.predict_proba(np.asarray([features(embedding_z, keyword_hits, learned)]))[0, 1])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)

    @classmethod
    def load(cls, taxonomy: Taxonomy, path: Path) -> Calibrator | None:
        if not path.exists():
            return None
        cal = joblib.load(path)
        if not isinstance(cal, cls) or cal.taxonomy_key != taxonomy.key:
            return None
        return cal


def _best_threshold(probs: np.ndarray, truth: np.ndarray, *, single: bool) -> float:
    """The selection threshold with the best macro-F1 over the dimension's values on these examples."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.arange(0.05, 0.91, 0.025):
        if single:
            top = probs.argmax(axis=1)
            pred = np.zeros_like(truth)
            keep = probs[np.arange(len(probs)), top] >= t
            pred[np.arange(len(probs))[keep], top[keep]] = True
        else:
            pred = probs >= t
        tp = (pred & truth).sum(axis=0)
        fp = (pred & ~truth).sum(axis=0)
        fn = (~pred & truth).sum(axis=0)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
        score = float(f1[truth.any(axis=0)].mean()) if truth.any() else 0.0
        if score > best_f1 + 1e-9:
            best_t, best_f1 = float(t), score
    return round(best_t, 3)


def out_of_fold(n: int, folds: int, fit_predict: Callable[[list[int], list[int]], None], seed: int = 7) -> None:
    """Call ``fit_predict(train_idx, held_out_idx)`` for each of ``folds`` folds over ``n`` items."""
    order = np.random.default_rng(seed).permutation(n)
    for f in range(folds):
        held = sorted(order[f::folds].tolist())
        held_set = set(held)
        fit_predict([i for i in range(n) if i not in held_set], held)
