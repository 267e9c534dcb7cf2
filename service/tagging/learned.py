"""Learned heads: one classifier per dimension on asset embeddings, fitted on reviewed tags.

Reviewed tags are the training data, so the tagger improves as marketing reviews. Values with too
few positive or negative examples get no head (the other signals carry them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from service.core.taxonomy import Taxonomy

log = logging.getLogger(__name__)
MIN_POSITIVES = 2


class LearnedHeads:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy_key = taxonomy.key
        self.taxonomy = taxonomy
        self.models: dict[tuple[str, str], LogisticRegression] = {}
        self.examples = 0

    def fit(self, vectors: np.ndarray, labels: list[dict[str, set[str]]], c: float = 4.0) -> LearnedHeads:
        """``labels[i]`` maps dimension → values of example i; a dimension absent there is unlabelled."""
        self.models.clear()
        self.examples = len(labels)
        for dim in self.taxonomy.dimensions:
            rows = [i for i, lab in enumerate(labels) if dim.id in lab]
            if len(rows) < 2 * MIN_POSITIVES:
                continue
            x = vectors[rows]
            for value in dim.values:
                y = np.array([value.id in labels[i][dim.id] for i in rows])
                if y.sum() < MIN_POSITIVES or (~y).sum() < MIN_POSITIVES:
                    continue
                model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
                model.fit(x, y)
                self.models[(dim.id, value.id)] = model
        log.info("fitted %d learned heads on %d examples", len(self.models), self.examples)
        return self

    def predict(self, vector: np.ndarray) -> dict[tuple[str, str], float]:
        if not self.models:
            return {}
        x = vector.reshape(1, -1)
        return {key: float(model.predict_proba(x)[0, 1]) for key, model in self.models.items()}

    def predict_many(self, vectors: np.ndarray) -> list[dict[tuple[str, str], float]]:
        out: list[dict[tuple[str, str], float]] = [{} for _ in range(len(vectors))]
        for key, model in self.models.items():
            probs = model.predict_proba(vectors)[:, 1]
            for i, p in enumerate(probs):
                out[i][key] = float(p)
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"taxonomy": self.taxonomy_key, "examples": self.examples, "models": self.models}, path)

    @classmethod
    def load(cls, taxonomy: Taxonomy, path: Path) -> LearnedHeads | None:
        if not path.exists():
            return None
        data = joblib.load(path)
        if data.get("taxonomy") != taxonomy.key:
            return None  # heads of another taxonomy version would map to the wrong values
        heads = cls(taxonomy)
        heads.models, heads.examples = data["models"], data["examples"]
        return heads
