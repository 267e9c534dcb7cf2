"""The learning curve: macro-F1, ECE and auto-accept precision against the number of labelled examples.

Marketing asks "how many reviews until we can trust the tags?". For each size N the heads and calibration are
fitted on N examples drawn (seeded) from the training pool, several draws per size, and scored on items they
never saw: a test split when there is one, else k-fold cross-validation (each fold's N drawn from the other
folds, every item scored once per draw). The plain TF-IDF + linear SVM is fitted on the same draws.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eval import baseline
from eval.tagging import Prepared, _mean_macro, fit, report_run, score_dimensions, tag_all
from service.core.taxonomy import Taxonomy
from service.reports.build import build_report
from service.reports.schema import LearningCurve, LearningPoint
from service.tagging.calibration import out_of_fold
from service.tagging.engine import TaggingEngine
from service.tagging.result import TaggingResult

DEFAULT_SIZES = (10, 25, 50, 100, 250, 500, 1000)


@dataclass
class Draw:
    macro_f1: float
    ece: float
    precision: float | None  # of tags at or above the threshold; None when none reached it
    accepted_share: float
    baseline_macro_f1: float | None = None


def score_draw(taxonomy: Taxonomy, items: Sequence[Prepared], results: Sequence[TaggingResult], threshold: float
               ) -> Draw:
    """One draw's numbers, as the eval report computes them (mean macro-F1 over labelled dimensions, ECE over
    every proposed tag, precision and share of the tags at or above ``threshold``)."""
    report = build_report(taxonomy, report_run(taxonomy, list(items), list(results), mode="learned",
                                               source="learning-curve", label="draw"), threshold=threshold)
    return Draw(report.overall.macro_f1_mean, report.reliability.ece, report.auto_accept.precision,
                report.auto_accept.coverage)


def summarise(size: int, draws: Sequence[Draw]) -> LearningPoint:
    """Mean and sample standard deviation (0 for one draw) over a size's draws."""
    def mean_sd(values: list[float]) -> tuple[float, float]:
        return round(statistics.fmean(values), 4), round(statistics.stdev(values), 4) if len(values) > 1 else 0.0

    f1, f1_sd = mean_sd([d.macro_f1 for d in draws])
    ece, ece_sd = mean_sd([d.ece for d in draws])
    precisions = [d.precision for d in draws if d.precision is not None]
    baselines = [d.baseline_macro_f1 for d in draws if d.baseline_macro_f1 is not None]
    return LearningPoint(size=size, draws=len(draws), macro_f1=f1, macro_f1_sd=f1_sd, ece=ece, ece_sd=ece_sd,
                         precision_at_threshold=round(statistics.fmean(precisions), 4) if precisions else None,
                         accepted_share=round(statistics.fmean(d.accepted_share for d in draws), 4),
                         baseline_macro_f1=round(statistics.fmean(baselines), 4) if baselines else None)


def plan_sizes(sizes: Sequence[int], pool: int, draws: int) -> list[tuple[int, int]]:
    """(size, draws) to run: sizes below the pool, then the whole pool once (every draw of it is the same)."""
    below = sorted({s for s in sizes if 0 < s < pool})
    return [(s, draws) for s in below] + [(pool, 1)]


def learning_curve(engine: TaggingEngine, items: list[Prepared], *, test: list[Prepared] | None = None,
                   sizes: Sequence[int] = DEFAULT_SIZES, draws: int = 3, seed: int = 17, folds: int = 5,
                   threshold: float = 0.8, with_baseline: bool = True, source: str = "",
                   progress: Callable[[str], None] | None = None) -> LearningCurve:
    """The curve over ``items`` (the training pool), scored on ``test``, or cross-validated without one."""
    taxonomy = engine.taxonomy
    splits: list[tuple[list[int], list[Prepared]]] = []
    if test is not None:
        splits.append((list(range(len(items))), test))
    else:
        def collect(train_idx: list[int], held: list[int]) -> None:
            splits.append((train_idx, [items[i] for i in held]))

        out_of_fold(len(items), folds, collect, seed=seed)
    pool = min(len(train) for train, _ in splits)
    points = []
    for size, n_draws in plan_sizes(sizes, pool, draws):
        scored: list[Draw] = []
        for d in range(n_draws):
            held_all: list[Prepared] = []
            results: list[TaggingResult] = []
            predictions: list[dict[str, set[str]]] = []
            for s, (train_idx, held) in enumerate(splits):
                rng = np.random.default_rng([seed, size, d, s])
                drawn = [items[i] for i in rng.permutation(train_idx)[:size]] if size < len(train_idx) \
                    else [items[i] for i in train_idx]
                fit(engine, drawn)
                results.extend(tag_all(engine, held, "learned"))
                held_all.extend(held)
                if with_baseline:
                    predictions.extend(baseline.fit_predict(taxonomy, [p.item for p in drawn], [p.item for p in held]))
            draw = score_draw(taxonomy, held_all, results, threshold)
            if with_baseline:
                draw.baseline_macro_f1 = _mean_macro(score_dimensions(taxonomy, held_all, predictions))
            scored.append(draw)
        point = summarise(size, scored)
        points.append(point)
        if progress:
            progress(f"{size} examples × {n_draws}: macro-F1 {point.macro_f1:.3f} ± {point.macro_f1_sd:.3f}, "
                     f"ECE {point.ece:.3f}, precision at {threshold:g} {point.precision_at_threshold}")
    evaluated_on = "test split" if test is not None else f"cross-validated ({folds} folds)"
    return LearningCurve(source=source, evaluated_on=evaluated_on, threshold=threshold, seed=seed, points=points)

