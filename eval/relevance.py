"""Fitting and checking the calibrated relevance (service/matching/relevance.py) on judged pairs.

A judged pair is a need and one of its first ``TOP`` candidates by the fused ranking without the floor (what could be
listed), labelled relevant when judged at or above the set's grade (``RELEVANT``). A logistic model per
need kind (tag needs; free-text needs) maps the candidate's features to a probability.

Calibration is measured where the model did not look: on the sample needs by folds of whole needs (a need's
candidates are never split between fitting and scoring), and on KUAKE-QTR's scored queries, which the fit never
reads (it fits on the ``--fit`` queries). ECE: the mean |predicted - observed| over ten equal-width bins, weighted
by their pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from service.matching.config import NeedKind
from service.matching.matcher import usable_channels
from service.matching.need import parse_need
from service.matching.relevance import FEATURES, Logistic, RelevanceModel, features

TOP = 30
# the grade from which a judged pair counts as serving the need: 1 in both sets, the grade nDCG@10 starts to credit
# (the sample needs' "marginally useful", judged by reading the content for this very need; KUAKE-QTR's 1, a title
# on the query's topic that answers part of it). At 2 the floor drops what the ranking is scored on: on KUAKE-QTR
# a model fitted at 2 cost nDCG@10 0.012-0.018 at any floor that also keeps filler out (bench notes in the README)
RELEVANT = {"kuake-qtr": 1, "samples": 1}
BINS = 10


@dataclass
class NeedPairs:
    """One judged need: every candidate's features (the need's best is read over all of them), which of them are
    its first ``TOP`` by the fused ranking (the judged pairs), and their labels."""

    name: str
    set_name: str
    kind: NeedKind
    x: np.ndarray
    top: np.ndarray
    y: np.ndarray


def judged_pairs(js: Any, which: list[int] | None = None) -> list[NeedPairs]:
    """``js``: a prepared ``eval.matching.JudgedSet``; its needs ``which`` (None: all)."""
    out: list[NeedPairs] = []
    matcher = js.matcher
    for i in which if which is not None else range(len(js.judged)):
        item, pool = js.judged[i], js.candidates[i]
        if not len(pool):
            continue
        need = parse_need(js.taxonomy, item.request.need_tags, item.request.need_text)
        kind = js.kind(i)
        fused = matcher.fused(pool, set(usable_channels(need)), matcher.config.fusion(kind))
        top = np.lexsort((pool.rows, -fused))[:TOP]
        keys = [js.key_of(pool.catalog.ids[int(r)]) for r in pool.rows[top]]
        y = np.asarray([item.relevant.get(key, 0) >= RELEVANT.get(js.name, 2) for key in keys], dtype=float)
        out.append(NeedPairs(f"{js.name}:{item.id}", js.name, kind, features(pool.evidence(), kind), top, y))
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], weight: np.ndarray | None = None) -> Logistic:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y, sample_weight=weight)
    return Logistic(names, mean, scale, model.coef_[0].astype(float), float(model.intercept_[0]))


def _fit(needs: list[NeedPairs], kind: NeedKind) -> Logistic:
    """Each judged set weighs the same in the fit, however many needs it has: KUAKE-QTR's 1,490 queries over page
    titles would otherwise decide alone what a cosine means for the service's passages (titles sit nearer their
    queries than passages do: fitted on KUAKE-QTR alone, the sample passages' right answers scored 0.02-0.3)."""
    sizes: dict[str, int] = {}
    for n in needs:
        sizes[n.set_name] = sizes.get(n.set_name, 0) + len(n.top)
    total = sum(sizes.values())
    weight = np.concatenate([np.full(len(n.top), total / (len(sizes) * sizes[n.set_name])) for n in needs])
    return fit_logistic(np.concatenate([n.x[n.top] for n in needs]), np.concatenate([n.y for n in needs]),
                        FEATURES[kind], weight)


def _folds(needs: list[NeedPairs], folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    groups = np.arange(len(needs))
    return list(GroupKFold(n_splits=min(folds, len(needs))).split(groups, groups, groups))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """ECE and the reliability table: per equal-width bin, pairs, mean predicted, observed rate."""
    edges = np.linspace(0, 1, bins + 1)
    at = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = at == b
        n = int(inside.sum())
        if not n:
            continue
        predicted, observed = float(p[inside].mean()), float(y[inside].mean())
        ece += n / len(p) * abs(predicted - observed)
        table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "pairs": n, "predicted": round(predicted, 4),
                      "observed": round(observed, 4)})
    return {"ece": round(ece, 4), "pairs": len(p), "relevant": int(y.sum()), "table": table}


def fit_relevance(fitting: list[tuple[Any, list[int]]], held_out: list[tuple[Any, list[int]]],
                  current: RelevanceModel, folds: int = 5) -> tuple[RelevanceModel, dict[str, Any]]:
    """The model fitted on every ``fitting`` need's pairs, and its calibration where it did not look: on each set's
    fitting needs by folds of whole needs (both stages refitted without the fold), and on the ``held_out`` needs."""
    by_kind: dict[NeedKind, list[NeedPairs]] = {}
    for js, idx in fitting:
        for n in judged_pairs(js, idx):
            by_kind.setdefault(n.kind, []).append(n)
    models = dict(current.models)
    report: dict[str, Any] = {"kinds": {}, "sets": {}}
    out_of_fold: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for kind, needs in by_kind.items():
        models[kind] = _fit(needs, kind)
        for train, test in _folds(needs, folds):
            fold = _fit([needs[i] for i in train], kind)
            for i in test:
                got = out_of_fold.setdefault(f"{needs[i].set_name} ({folds}-fold by need)", ([], []))
                got[0].append(fold.predict(needs[i].x[needs[i].top]))
                got[1].append(needs[i].y)
        y_all = np.concatenate([n.y for n in needs])
        report["kinds"][kind] = {"pairs": len(y_all), "needs": len(needs), "relevant": int(y_all.sum()),
                                 "coef": dict(zip(FEATURES[kind], np.round(models[kind].coef, 3).tolist(),
                                                  strict=True))}
    fitted = RelevanceModel(models, current.strong, current.partial)
    for name, (ps, ys) in out_of_fold.items():
        report["sets"][name] = reliability(np.concatenate(ps), np.concatenate(ys))
    for js, idx in held_out:
        needs = judged_pairs(js, idx)
        if needs:
            p = np.concatenate([fitted.models[n.kind].predict(n.x[n.top]) for n in needs])
            report["sets"][f"{js.name} (held-out queries)"] = reliability(p, np.concatenate([n.y for n in needs]))
    return fitted, report
