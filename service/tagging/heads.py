"""What both learned heads share: one model (or one per value) per dimension, fitted on the examples labelled on
that dimension, for the values with enough positive and negative examples; predictions as (dimension, value)
scores for a batch of inputs (asset vectors for the embedding head, texts for the lexical head)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np

from service.core.taxonomy import Dimension, Taxonomy

MIN_POSITIVES = 2
Inputs = TypeVar("Inputs", np.ndarray, Sequence[str])


class DimensionHead(Protocol):
    values: list[str]

    def scores(self, inputs: np.ndarray | Sequence[str]) -> np.ndarray:
        """``(len(inputs), len(self.values))`` scores."""
        ...


def trainable_values(value_ids: Sequence[str], labels: Sequence[set[str]]) -> list[str]:
    """The values with at least ``MIN_POSITIVES`` examples on each side: the others cannot be learned yet."""
    counts = {v: sum(v in lab for lab in labels) for v in value_ids}
    return [v for v in value_ids if counts[v] >= MIN_POSITIVES and len(labels) - counts[v] >= MIN_POSITIVES]


def one_value_each(dim: Dimension, kept: Sequence[str], labels: Sequence[set[str]]) -> bool:
    """A single-valued dimension whose examples carry exactly one value each: one multiclass model fits it."""
    return dim.cardinality == "single" and len(kept) >= 2 and all(len(lab) == 1 for lab in labels)


class HeadSet(Generic[Inputs]):
    """Per dimension, a head built by ``make`` from the rows labelled on it (``take`` selects those rows)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy_key = taxonomy.key
        self.taxonomy = taxonomy
        self.heads: dict[str, DimensionHead] = {}
        self.examples = 0

    def __getstate__(self) -> dict[str, object]:
        # the taxonomy is not stored with the heads: whoever loads them attaches the one their key names
        return {k: v for k, v in self.__dict__.items() if k != "taxonomy"}

    @property
    def models(self) -> dict[tuple[str, str], object]:
        """One entry per (dimension, value) with a head (the count the API reports)."""
        return {(d, v): h for d, h in self.heads.items() for v in h.values}

    def _fit(self, inputs: Inputs, labels: Sequence[dict[str, set[str]]], take: Callable[[Inputs, list[int]], Inputs],
             make: Callable[[Dimension, Inputs, list[set[str]]], DimensionHead | None]) -> None:
        self.heads.clear()
        self.examples = len(labels)
        for dim in self.taxonomy.dimensions:
            rows = [i for i, lab in enumerate(labels) if dim.id in lab]
            if len(rows) < 2 * MIN_POSITIVES:
                continue
            head = make(dim, take(inputs, rows), [labels[i][dim.id] for i in rows])
            if head is not None:
                self.heads[dim.id] = head

    def predict_many(self, inputs: Inputs) -> list[dict[tuple[str, str], float]]:
        out: list[dict[tuple[str, str], float]] = [{} for _ in range(len(inputs))]
        for dim_id, head in self.heads.items():
            for i, row in enumerate(head.scores(inputs)):
                for v, score in zip(head.values, row, strict=True):
                    out[i][(dim_id, v)] = float(score)
        return out
