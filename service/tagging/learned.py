"""Embedding heads: a logistic regression per dimension on asset embeddings, fitted on reviewed tags.

Reviewed tags are the training data, so the tagger improves as marketing reviews. A single-valued
dimension whose examples carry one value each gets one multinomial model (one fit for 44 classes, not 44);
otherwise each value gets a binary model. Values with too few positive or negative examples get no head
(the other signals carry them). Scores are probabilities.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from service.core.taxonomy import Dimension, Taxonomy
from service.tagging.heads import HeadSet, one_value_each, trainable_values

log = logging.getLogger(__name__)


class _DimensionHead:
    def __init__(self, values: list[str], models: list[LogisticRegression], columns: list[int]) -> None:
        self.values, self.models, self._columns = values, models, columns

    @classmethod
    def fit(cls, dim: Dimension, x: np.ndarray, labels: list[set[str]], c: float) -> _DimensionHead | None:
        kept = trainable_values(dim.value_ids, labels)
        if not kept:
            return None
        if one_value_each(dim, kept, labels):
            y = np.asarray([next(iter(lab)) for lab in labels])
            model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(x, y)
            classes = [str(v) for v in model.classes_]
            values = [v for v in classes if v in kept]
            return cls(values, [model], [classes.index(v) for v in values])
        models = [LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(x, [v in lab for lab in labels])
                  for v in kept]
        return cls(kept, models, [])

    def scores(self, x: np.ndarray | Sequence[str]) -> np.ndarray:
        """``(len(x), len(self.values))`` probabilities (of the multinomial model, or each binary one)."""
        if self._columns:
            return np.asarray(self.models[0].predict_proba(x)[:, self._columns], dtype=np.float32)
        return np.column_stack([m.predict_proba(x)[:, 1] for m in self.models]).astype(np.float32)


class LearnedHeads(HeadSet[np.ndarray]):
    def __init__(self, taxonomy: Taxonomy, c: float = 4.0) -> None:
        super().__init__(taxonomy)
        self.c = c

    def fit(self, vectors: np.ndarray, labels: Sequence[dict[str, set[str]]]) -> LearnedHeads:
        """``labels[i]`` maps dimension → values of example i; a dimension absent there is unlabelled."""
        self._fit(vectors, labels, lambda x, rows: x[rows],
                  lambda dim, x, lab: _DimensionHead.fit(dim, x, lab, self.c))
        log.info("fitted %d embedding heads on %d examples", len(self.models), self.examples)
        return self
