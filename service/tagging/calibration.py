"""Calibration: turn the proposer's signals into a probability per (dimension, value), fitted on labelled
examples, and learn how far to trust the LLM.

Before any reviewed examples exist the engine uses a hand-set prior (``Weights``). Once there are enough
(reviewed tags in production, a training split in evaluation) a logistic regression per dimension stacks
the signals — embedding z-score, keyword hits, the embedding head's logit, the lexical head's margin, each
head's lead over the value's rivals, and a per-value bias — into a probability that means what it says; a
per-dimension selection threshold is chosen to maximise macro-F1 on the same examples.

The heads' features must be out-of-fold when fitting (a head scores its own training examples too well),
so ``training.fit`` fits the heads k times and calibrates on held-out predictions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from sklearn.linear_model import LogisticRegression

from service.core.taxonomy import Dimension, Taxonomy
from service.tagging import model_bytes

log = logging.getLogger(__name__)
MIN_POSITIVES = 5
FEATURES = ("embedding_z", "keyword_hits", "embedding_logit", "has_embedding", "lexical_margin", "has_lexical",
            "embedding_lead", "lexical_lead", "neighbours", "neighbours_lead", "context")
# A signal as the calibrator reads it: (embedding_z, keyword_hits, embedding head probability or None,
# lexical head margin or None, neighbour share or None, context log likelihood ratio or None);
# service.tagging.proposer.Signal is one, and so is a plain tuple.
SignalLike = Sequence[Any]


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _lead(column: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each value's score minus the best of the other values (positive: it leads the dimension)."""
    if column.size < 2 or not present.any():
        return np.zeros_like(column)
    order = np.sort(column)
    best, second = order[-1], order[-2]
    lead = column - np.where(column >= best, second, best)
    return np.where(present, lead, 0.0)


def dimension_features(dim: Dimension, signals: Mapping[str, SignalLike]) -> np.ndarray:
    """``(len(dim.values), len(FEATURES) + len(dim.values))``: each value's stacked signals, then a one-hot of
    the value (the per-value bias: a rare value needs more evidence than a common one)."""
    n = len(dim.values)
    rows = [tuple(signals[v.id]) + (None,) * (6 - len(signals[v.id])) for v in dim.values]
    z = np.asarray([r[0] for r in rows], dtype=np.float64)
    hits = np.asarray([min(r[1], 3) for r in rows], dtype=np.float64)
    has_emb = np.asarray([r[2] is not None for r in rows])
    emb = np.asarray([logit(r[2]) if r[2] is not None else 0.0 for r in rows])
    has_lex = np.asarray([r[3] is not None for r in rows])
    lex = np.asarray([float(r[3]) if r[3] is not None else 0.0 for r in rows])
    has_nn = np.asarray([r[4] is not None for r in rows])
    nn = np.asarray([float(r[4]) if r[4] is not None else 0.0 for r in rows])
    context = np.asarray([float(r[5]) if r[5] is not None else 0.0 for r in rows])
    base = np.column_stack([z, hits, emb, has_emb, lex, has_lex, _lead(emb, has_emb), _lead(lex, has_lex), nn,
                            _lead(nn, has_nn), context])
    return np.hstack([base, np.eye(n)])


LLMSignal = tuple[bool, float, bool]  # (offered to the LLM, its confidence if chosen else 0, quote verified)


def llm_features(prior_logit: float, signal: LLMSignal) -> list[float]:
    offered, conf, verified = signal
    chosen = conf > 0
    return [prior_logit, conf if chosen and verified else 0.0, conf if chosen and not verified else 0.0,
            1.0 if offered and not chosen else 0.0]


@dataclass
class Example:
    """One labelled item's signals: ``signals[dim][value]`` (see ``SignalLike``), and when the LLM was asked
    about it, ``llm[dim][value]`` (see ``LLMSignal``)."""

    signals: Mapping[str, Mapping[str, SignalLike]]
    labels: dict[str, set[str]]
    llm: dict[str, dict[str, LLMSignal]] | None = None


@dataclass
class Calibrator:
    taxonomy_key: str
    models: dict[str, LogisticRegression] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    examples: int = 0
    dimensions: dict[str, Dimension] = field(default_factory=dict)
    columns: dict[str, list[int]] = field(default_factory=dict)  # the feature set chosen per dimension
    # how far to trust the LLM against the calibrated prior: one model pooled over dimensions (too few
    # LLM-judged examples per dimension otherwise), fitted only when enough examples carry LLM answers
    llm_model: LogisticRegression | None = None
    llm_thresholds: dict[str, float] = field(default_factory=dict)
    llm_examples: int = 0
    features: tuple[str, ...] = FEATURES  # what the models were fitted on (a file from before a new signal won't do)

    @classmethod
    def fit(cls, taxonomy: Taxonomy, examples: Sequence[Example], c: float = 1.0) -> Calibrator:
        cal = cls(taxonomy.key, examples=len(examples))
        for dim in taxonomy.dimensions:
            rows = [e for e in examples if dim.id in e.labels and dim.id in e.signals]
            if not rows:
                continue
            x = np.vstack([dimension_features(dim, e.signals[dim.id]) for e in rows])
            y = np.asarray([v.id in e.labels[dim.id] for e in rows for v in dim.values])
            if y.sum() < MIN_POSITIVES or len(y) - y.sum() < MIN_POSITIVES:
                continue
            columns = _choose_columns(x, y, len(rows), len(dim.values), c, single=dim.cardinality == "single")
            model = LogisticRegression(C=c, max_iter=3000)
            model.fit(x[:, columns], y)
            cal.models[dim.id] = model
            cal.columns[dim.id] = columns
            cal.dimensions[dim.id] = dim
            probs = model.predict_proba(x[:, columns])[:, 1].reshape(len(rows), len(dim.values))
            cal.thresholds[dim.id] = _best_threshold(probs, y.reshape(len(rows), len(dim.values)),
                                                     single=dim.cardinality == "single")
        cal._fit_llm(taxonomy, [e for e in examples if e.llm is not None])
        log.info("calibrated %d dimensions on %d examples (LLM stage: %s)", len(cal.models), len(examples),
                 f"{cal.llm_examples} examples" if cal.llm_model is not None else "prior")
        return cal

    def probabilities(self, dimension: str, signals: Mapping[str, SignalLike]) -> dict[str, float] | None:
        """Every value's calibrated probability, or None when ``dimension`` has no fitted model."""
        model = self.models.get(dimension)
        if model is None:
            return None
        dim = self.dimensions[dimension]
        probs = model.predict_proba(dimension_features(dim, signals)[:, self.columns[dimension]])[:, 1]
        return {v.id: float(p) for v, p in zip(dim.values, probs, strict=True)}

    def probability(self, dimension: str, value: str, signals: Mapping[str, SignalLike]) -> float | None:
        probs = self.probabilities(dimension, signals)
        return None if probs is None else probs[value]

    def _fit_llm(self, taxonomy: Taxonomy, examples: Sequence[Example], minimum: int = 20) -> None:
        if len(examples) < minimum:
            return
        rows: list[tuple[str, int, list[float], bool]] = []
        for n, e in enumerate(examples):
            assert e.llm is not None
            for dim in taxonomy.dimensions:
                if dim.id not in e.labels or dim.id not in e.llm or dim.id not in self.models:
                    continue
                probs = self.probabilities(dim.id, e.signals[dim.id])
                assert probs is not None
                for v in dim.values:
                    p = probs[v.id]
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

    def dumps(self) -> bytes:
        return model_bytes.dumps(self)

    def __getstate__(self) -> dict[str, Any]:
        # the dimensions are the taxonomy's: stored by id, attached again from the taxonomy on load
        return {**self.__dict__, "dimensions": sorted(self.dimensions), "features": list(self.features)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.features = tuple(state.get("features", ()))

    @classmethod
    def loads(cls, taxonomy: Taxonomy, raw: bytes) -> Calibrator | None:
        """A calibrator from :meth:`dumps` bytes; None when unreadable (an older release's pickles, a type not
        trusted), for another taxonomy version or another feature set: recalibrate rather than fail to start."""
        try:
            cal = model_bytes.loads(raw)
        except model_bytes.UnreadableModel as exc:
            log.warning("stored calibration not loaded (%s)", exc)
            return None
        if not isinstance(cal, cls) or cal.taxonomy_key != taxonomy.key or cal.features != FEATURES:
            return None
        stored = cast(list[str], cal.dimensions)
        if not all(taxonomy.has_dimension(d) for d in stored):
            return None
        cal.dimensions = {d: taxonomy.dimension(d) for d in stored}
        return cal

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.dumps())

    @classmethod
    def load(cls, taxonomy: Taxonomy, path: Path) -> Calibrator | None:
        return cls.loads(taxonomy, path.read_bytes()) if path.exists() else None


# The stack's feature sets, simplest first: prototype, keywords and neighbours; then every head. With a few
# dozen reviews the extra columns only add variance, so below MIN_SELECTION_ITEMS the compact set is taken (held-out
# folds that small are too noisy to choose by: on the sample gold the choice lost 0.015 against always compact);
# up to SELECTION_ITEMS each dimension takes the set with the best macro-F1 on its held-out examples (item folds;
# on HoC at 100 and 250 examples that was the full set, +0.02 and +0.03); above, the full stack wins and the
# (costly) comparison is not run.
COMPACT = [0, 1, 8, 9, 10]
FULL = list(range(len(FEATURES)))
MIN_SELECTION_ITEMS = 50
SELECTION_ITEMS = 400


def _choose_columns(x: np.ndarray, y: np.ndarray, items: int, values: int, c: float, *, single: bool,
                    folds: int = 3, seed: int = 3) -> list[int]:
    onehot = list(range(len(FEATURES), x.shape[1]))
    candidates = [COMPACT + onehot, FULL + onehot]
    if items > SELECTION_ITEMS or items < max(MIN_SELECTION_ITEMS, 2 * folds):
        return candidates[-1] if items > SELECTION_ITEMS else candidates[0]
    item_of_row = np.repeat(np.arange(items), values)
    fold_of_item = np.random.default_rng(seed).permutation(items) % folds
    scores = []
    for cols in candidates:
        probs = np.zeros(len(y))
        for f in range(folds):
            held = fold_of_item[item_of_row] == f
            if y[~held].all() or not y[~held].any():
                probs[held] = y[~held].mean()
                continue
            model = LogisticRegression(C=c, max_iter=3000).fit(x[~held][:, cols], y[~held])
            probs[held] = model.predict_proba(x[held][:, cols])[:, 1]
        grid, truth = probs.reshape(items, values), y.reshape(items, values)
        scores.append(_macro_f1(grid, truth, _best_threshold(grid, truth, single=single), single=single))
    return candidates[int(np.argmax(scores))]  # ties go to the compact set


def _macro_f1(probs: np.ndarray, truth: np.ndarray, t: float, *, single: bool) -> float:
    """Macro-F1 over the values present in ``truth`` when selecting at threshold ``t``."""
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
    return float(f1[truth.any(axis=0)].mean()) if truth.any() else 0.0


def _best_threshold(probs: np.ndarray, truth: np.ndarray, *, single: bool) -> float:
    """The selection threshold with the best macro-F1 over the dimension's values on these examples."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.arange(0.05, 0.91, 0.025):
        score = _macro_f1(probs, truth, float(t), single=single)
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
