"""The field's plain baseline, run in the same harness: TF-IDF + a linear SVM per dimension, scikit-learn as a
data scientist would write it in ten lines. Every tagging report prints it beside the engine, on the same
items and splits, so nobody has to trust that the engine is better than the simplest thing.

English text gets word 1-2-grams, Chinese character 1-3-grams, a mixed set both; ``sublinear_tf`` and
``class_weight="balanced"``, as in the usual recipes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from eval.datasets import GoldItem
from service.core.taxonomy import Taxonomy

NONE = "__none__"


def vectorizer(items: Sequence[GoldItem]) -> TfidfVectorizer | FeatureUnion:
    zh = sum(i.language in ("zh", "mixed") for i in items)
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    if zh == 0:
        return word
    if zh == len(items):
        return char
    return FeatureUnion([("word", word), ("char", char)])


def fit_predict(taxonomy: Taxonomy, train: Sequence[GoldItem], test: Sequence[GoldItem]) -> list[dict[str, set[str]]]:
    """Per test item, per dimension labelled in ``train``: the baseline's values."""
    out: list[dict[str, set[str]]] = [{d.id: set() for d in taxonomy.dimensions} for _ in test]
    texts = [i.text for i in test]
    for dim in taxonomy.dimensions:
        rows = [i for i in train if dim.id in i.labels]
        if len(rows) < 2:
            continue
        if dim.cardinality == "single":
            y = [next(iter(i.labels[dim.id])) if i.labels[dim.id] else NONE for i in rows]
            if len(set(y)) < 2:
                predicted = [y[0]] * len(test)
            else:
                model = make_pipeline(vectorizer(rows), LinearSVC(class_weight="balanced"))
                predicted = list(model.fit([i.text for i in rows], y).predict(texts))
            for o, v in zip(out, predicted, strict=True):
                o[dim.id] = set() if v == NONE else {str(v)}
            continue
        binarizer = MultiLabelBinarizer(classes=dim.value_ids)
        y_multi = binarizer.fit_transform([i.labels[dim.id] for i in rows])
        keep = [j for j in range(y_multi.shape[1]) if 0 < y_multi[:, j].sum() < len(rows)]
        if not keep:
            continue
        model = make_pipeline(vectorizer(rows), OneVsRestClassifier(LinearSVC(class_weight="balanced")))
        predicted_multi = np.asarray(model.fit([i.text for i in rows], y_multi[:, keep]).predict(texts))
        for o, row in zip(out, predicted_multi, strict=True):
            o[dim.id] = {dim.value_ids[keep[j]] for j, on in enumerate(row) if on}
    return out
