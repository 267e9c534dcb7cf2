"""Compute a report from a run: per-dimension scores, confusion, calibration, thresholds, method mix,
acceptance over time, and the comparison with a baseline report."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from service.core.taxonomy import Taxonomy
from service.reports.runs import Prediction, Run
from service.reports.schema import (
    AcceptanceDay,
    AutoAccept,
    Comparison,
    Confusion,
    DimensionDelta,
    DimensionScore,
    EvalReport,
    LabelScoreOut,
    MethodRow,
    MetricDelta,
    Overall,
    Reliability,
    ReliabilityBin,
    RunInfo,
    ThresholdPoint,
)
from service.reports.scores import LabelScore, score, summary

NONE = "(none)"
BINS = 10
THRESHOLD_STEP = 0.05
# A change smaller than this is noise on a few dozen items; the page does not highlight it.
NOTABLE = 0.02


def _r(x: float) -> float:
    return round(x, 4)


def _ratio(a: int, b: int) -> float | None:
    return _r(a / b) if b else None


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    total = LabelScore("all", tp, fp, fn)
    return _r(total.precision), _r(total.recall), _r(total.f1)


def _predicted_sets(run: Run) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for p in run.predictions:
        out[p.item][p.dimension].add(p.value)
    return out


def _dimensions(taxonomy: Taxonomy, run: Run) -> dict[str, DimensionScore]:
    predicted = _predicted_sets(run)
    out: dict[str, DimensionScore] = {}
    for dim in taxonomy.dimensions:
        items = [i for i, labels in run.gold.items() if dim.id in labels]
        if not items:
            continue
        gold = [run.gold[i][dim.id] for i in items]
        pred = [predicted.get(i, {}).get(dim.id, set()) for i in items]
        scores = score(gold, pred, dim.value_ids)
        active = {k: s for k, s in scores.items() if s.tp + s.fp + s.fn}
        tp, fp, fn = (sum(getattr(s, f) for s in active.values()) for f in ("tp", "fp", "fn"))
        p, r, f = _prf(tp, fp, fn)
        out[dim.id] = DimensionScore(
            label=dim.label.en or dim.id, kind=dim.kind, cardinality=dim.cardinality, items=len(items),
            precision=p, recall=r, f1=f, tp=tp, fp=fp, fn=fn, macro_f1=_r(summary(scores)["macro_f1"]),
            per_label={k: LabelScoreOut(precision=_r(s.precision), recall=_r(s.recall), f1=_r(s.f1),
                                        support=s.support, predicted=s.tp + s.fp)
                       for k, s in sorted(active.items())})
    return out


def _confusion(taxonomy: Taxonomy, run: Run) -> dict[str, Confusion]:
    """For single-valued dimensions: the gold value against the most confident proposal."""
    top: dict[tuple[str, str], Prediction] = {}
    for p in run.predictions:
        key = (p.item, p.dimension)
        if key not in top or p.confidence > top[key].confidence:
            top[key] = p
    out: dict[str, Confusion] = {}
    for dim in taxonomy.dimensions:
        if dim.cardinality != "single":
            continue
        pairs = []
        for item, labels in run.gold.items():
            if dim.id not in labels:
                continue
            gold = min(labels[dim.id]) if labels[dim.id] else NONE
            pick = top.get((item, dim.id))
            pairs.append((gold, pick.value if pick else NONE))
        if not pairs:
            continue
        # taxonomy order for the values that occur, then "(none)"
        seen = {v for pair in pairs for v in pair}
        labels_ = [v for v in dim.value_ids if v in seen] + ([NONE] if NONE in seen else [])
        index = {v: i for i, v in enumerate(labels_)}
        matrix = [[0] * len(labels_) for _ in labels_]
        for g, p_ in pairs:
            matrix[index[g]][index[p_]] += 1
        out[dim.id] = Confusion(labels=labels_, matrix=matrix,
                                accuracy=_r(sum(g == p_ for g, p_ in pairs) / len(pairs)))
    return out


def _reliability(run: Run, scored: list[Prediction]) -> Reliability:
    bins: list[list[Prediction]] = [[] for _ in range(BINS)]
    for p in scored:
        bins[min(int(p.confidence * BINS), BINS - 1)].append(p)
    out, ece = [], 0.0
    for i, members in enumerate(bins):
        conf = acc = None
        if members:
            conf = sum(p.confidence for p in members) / len(members)
            acc = sum(run.correct(p) for p in members) / len(members)
            ece += len(members) / len(scored) * abs(acc - conf)
        out.append(ReliabilityBin(lower=_r(i / BINS), upper=_r((i + 1) / BINS), count=len(members),
                                  confidence=None if conf is None else _r(conf),
                                  accuracy=None if acc is None else _r(acc)))
    return Reliability(bins=out, ece=_r(ece), predictions=len(scored))


def _gold_count(run: Run) -> int:
    return sum(len(values) for labels in run.gold.values() for values in labels.values())


def _at(run: Run, scored: list[Prediction], threshold: float) -> tuple[int, int]:
    kept = [p for p in scored if p.confidence >= threshold - 1e-9]
    return len(kept), sum(run.correct(p) for p in kept)


def _thresholds(run: Run, scored: list[Prediction]) -> list[ThresholdPoint]:
    total, gold = len(scored), _gold_count(run)
    points = []
    for step in range(round(1 / THRESHOLD_STEP)):
        t = _r(step * THRESHOLD_STEP)
        kept, correct = _at(run, scored, t)
        points.append(ThresholdPoint(threshold=t, kept=kept, coverage=_ratio(kept, total) or 0.0,
                                     precision=_ratio(correct, kept), recall=_ratio(correct, gold) or 0.0))
    return points


def _auto_accept(run: Run, scored: list[Prediction], threshold: float) -> AutoAccept:
    total = len(scored)
    correct_all = sum(run.correct(p) for p in scored)
    kept, correct = _at(run, scored, threshold)
    return AutoAccept(threshold=threshold, accepted=kept, correct=correct, wrong=kept - correct,
                      to_review=total - kept, correct_to_review=correct_all - correct,
                      precision=_ratio(correct, kept), coverage=_ratio(kept, total) or 0.0)


def _methods(run: Run, scored: list[Prediction]) -> dict[str, MethodRow]:
    by: dict[str, list[bool]] = defaultdict(list)  # method -> whether each of its proposals is right
    for p in scored:
        by[p.method].append(run.correct(p))
    return {m: MethodRow(count=len(rights), correct=sum(rights), precision=_r(sum(rights) / len(rights)),
                         share=_r(len(rights) / len(scored)))
            for m, rights in sorted(by.items(), key=lambda kv: -len(kv[1]))}


def _acceptance(run: Run) -> list[AcceptanceDay]:
    days: dict[str, dict[str, int]] = defaultdict(lambda: {"accept": 0, "reject": 0, "edit": 0})
    for r in run.reviews:
        if r.action in ("accept", "reject", "edit"):
            days[r.at.date().isoformat()][r.action] += 1
    return [AcceptanceDay(day=datetime.fromisoformat(d).date(), accepted=c["accept"], rejected=c["reject"],
                          edited=c["edit"], rate=_r(c["accept"] / (c["accept"] + c["reject"] + c["edit"])))
            for d, c in sorted(days.items())]


def _change(delta: float | None, higher_is_better: bool = True) -> str:
    if delta is None or abs(delta) < NOTABLE:
        return "same"
    return "better" if (delta > 0) == higher_is_better else "worse"


def _delta(a: float | None, b: float | None, higher_is_better: bool = True) -> MetricDelta:
    d = None if a is None or b is None else _r(b - a)
    return MetricDelta(a=a, b=b, delta=d, change=_change(d, higher_is_better))  # type: ignore[arg-type]


def compare(baseline: EvalReport, report: EvalReport, baseline_id: str | None) -> Comparison:
    """A = the baseline, B = this report."""
    overall = {
        "f1": _delta(baseline.overall.f1, report.overall.f1),
        "precision": _delta(baseline.overall.precision, report.overall.precision),
        "recall": _delta(baseline.overall.recall, report.overall.recall),
        "macro_f1_mean": _delta(baseline.overall.macro_f1_mean, report.overall.macro_f1_mean),
        "ece": _delta(baseline.reliability.ece, report.reliability.ece, higher_is_better=False),
        "auto_accept_precision": _delta(baseline.auto_accept.precision, report.auto_accept.precision),
    }
    dims: dict[str, DimensionDelta] = {}
    for dim_id in list(baseline.dimensions) + [d for d in report.dimensions if d not in baseline.dimensions]:
        a = baseline.dimensions[dim_id].f1 if dim_id in baseline.dimensions else None
        b = report.dimensions[dim_id].f1 if dim_id in report.dimensions else None
        d = None if a is None or b is None else _r(b - a)
        change = "new" if a is None else "gone" if b is None else _change(d)
        dims[dim_id] = DimensionDelta(f1_a=a, f1_b=b, delta=d, change=change)  # type: ignore[arg-type]
    return Comparison(baseline_id=baseline_id, a=baseline.run, b=report.run, overall=overall, dimensions=dims)


def build_report(taxonomy: Taxonomy, run: Run, *, title: str | None = None, threshold: float = 0.8,
                 baseline: EvalReport | None = None, baseline_id: str | None = None) -> EvalReport:
    dimensions = _dimensions(taxonomy, run)
    tp, fp, fn = (sum(getattr(d, f) for d in dimensions.values()) for f in ("tp", "fp", "fn"))
    p, r, f = _prf(tp, fp, fn)
    macro = _r(sum(d.macro_f1 for d in dimensions.values()) / len(dimensions)) if dimensions else 0.0
    scored = run.scored()
    notes = []
    if not run.reviews:
        notes.append("No review decisions in this run's source: the acceptance-over-time chart is empty.")
    report = EvalReport(
        title=title or f"Tagging accuracy: {run.label}", created_at=datetime.now(UTC),
        run=RunInfo(label=run.label, source=run.source, mode=run.mode, taxonomy=run.taxonomy, models=run.models,
                    prompt_version=run.prompt_version, items=len(run.gold), predictions=len(scored)),
        threshold=threshold, overall=Overall(precision=p, recall=r, f1=f, tp=tp, fp=fp, fn=fn, macro_f1_mean=macro),
        dimensions=dimensions, confusion=_confusion(taxonomy, run), reliability=_reliability(run, scored),
        thresholds=_thresholds(run, scored), auto_accept=_auto_accept(run, scored, threshold),
        methods=_methods(run, scored),
        acceptance=_acceptance(run), notes=notes)
    if baseline is not None:
        report.comparison = compare(baseline, report, baseline_id)
    return report
