"""Per-label precision, recall and F1, with micro and macro averages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class LabelScore:
    label: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(gold: list[set[str]], predicted: list[set[str]], labels: Iterable[str]) -> dict[str, LabelScore]:
    out = {label: LabelScore(label, 0, 0, 0) for label in labels}
    for g, p in zip(gold, predicted, strict=True):
        for label in g | p:
            s = out.setdefault(label, LabelScore(label, 0, 0, 0))
            if label in g and label in p:
                s.tp += 1
            elif label in p:
                s.fp += 1
            else:
                s.fn += 1
    return out


def summary(scores: dict[str, LabelScore]) -> dict[str, float]:
    """Macro-F1 over labels that occur in the gold or the predictions (labels never seen either way
    say nothing); micro-F1 over all decisions."""
    active = [s for s in scores.values() if s.tp + s.fp + s.fn]
    tp = sum(s.tp for s in active)
    fp = sum(s.fp for s in active)
    fn = sum(s.fn for s in active)
    micro_p = tp / (tp + fp) if tp + fp else 0.0
    micro_r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "macro_f1": sum(s.f1 for s in active) / len(active) if active else 0.0,
        "macro_precision": sum(s.precision for s in active) / len(active) if active else 0.0,
        "macro_recall": sum(s.recall for s in active) / len(active) if active else 0.0,
        "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0,
        "labels": float(len(active)),
    }
