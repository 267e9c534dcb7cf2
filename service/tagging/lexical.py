"""Lexical heads: TF-IDF features and a linear model per dimension, beside the embedding heads.

The field's plain baseline (TF-IDF + a linear SVM) beat embedding heads alone on every benchmark we ran:
words and characters carry what a small embedding blurs (a drug name, "ECOG", "年龄"). So the tagger
learns from both, and the calibrator stacks them.

One analyzer serves both languages: Latin words (unigrams and bigrams) for English, character 1-3-grams
inside CJK runs for Chinese, where there are no spaces to split words on. A single-valued dimension gets
one multiclass model; a multi-valued one gets a binary model per value. The output is the model's
margin, not a probability: the calibrator turns margins into probabilities on out-of-fold examples.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from service.core.taxonomy import Dimension, Taxonomy
from service.tagging.heads import HeadSet, one_value_each, trainable_values

_WORD = re.compile(r"[a-z0-9][a-z0-9\-+.]*[a-z0-9+]|[a-z0-9]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_SPACE = re.compile(r"\s+")


def analyze(text: str) -> list[str]:
    """Features of ``text``: Latin/number words and word bigrams; for text with Chinese in it, also the
    character 1-3-grams of the whole text (digits and symbols included: "≥18岁" is an age criterion).
    A module-level function, so stored vectorizers name it (``model_bytes.TRUSTED`` allows it by that name)."""
    lowered = text.lower()
    words = _WORD.findall(_CJK_RUN.sub(" ", lowered))
    out = [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]
    if _CJK_RUN.search(lowered):
        chars = _SPACE.sub(" ", lowered).strip()
        n = len(chars)
        out.extend(chars[i:i + k] for k in (1, 2, 3) for i in range(n - k + 1))
    return out


def vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=2, dtype=np.float32)


class _DimensionHead:
    """One dimension's vectorizer and linear model(s); ``values`` are the value ids each margin column means."""

    def __init__(self, vec: TfidfVectorizer, values: list[str], models: list[LinearSVC], columns: list[int]) -> None:
        self.vec, self.values, self.models, self._columns = vec, values, models, columns

    @classmethod
    def fit(cls, dim: Dimension, texts: Sequence[str], labels: list[set[str]], c: float) -> _DimensionHead | None:
        kept = trainable_values(dim.value_ids, labels)
        if not kept:
            return None
        vec = vectorizer()
        x = vec.fit_transform(texts)
        if one_value_each(dim, kept, labels):
            # one multiclass model (one-vs-rest inside liblinear, in one call): the fast path on big sets
            y = np.asarray([next(iter(lab)) for lab in labels])
            model = LinearSVC(C=c, class_weight="balanced").fit(x, y)
            classes = [str(v) for v in model.classes_]
            values = [v for v in classes if v in kept]
            return cls(vec, values, [model], [classes.index(v) for v in values])
        models = [LinearSVC(C=c, class_weight="balanced").fit(x, np.asarray([v in lab for lab in labels]))
                  for v in kept]
        return cls(vec, kept, models, [])

    def scores(self, texts: np.ndarray | Sequence[str]) -> np.ndarray:
        """``(len(texts), len(self.values))`` margins."""
        x = self.vec.transform(texts)
        if self._columns:
            scores = self.models[0].decision_function(x)
            if scores.ndim == 1:  # two classes: one margin, positive for the second
                scores = np.column_stack([-scores, scores])
            return np.asarray(scores[:, self._columns], dtype=np.float32)
        return np.column_stack([m.decision_function(x) for m in self.models]).astype(np.float32)

    def sentence_scores(self, sentences: Sequence[str], value: str) -> np.ndarray:
        """How much each sentence alone argues for ``value``: the model's weights on its features (for
        choosing which passage to show the LLM)."""
        if value not in self.values or not sentences:
            return np.zeros(len(sentences), dtype=np.float32)
        x: sparse.csr_matrix = self.vec.transform(sentences)
        i = self.values.index(value)
        if self._columns:
            coefs = self.models[0].coef_
            coef = (coefs[0] if self._columns[i] == 1 else -coefs[0]) if coefs.shape[0] == 1 \
                else coefs[self._columns[i]]
        else:
            coef = self.models[i].coef_[0]
        return np.asarray(x @ coef, dtype=np.float32).ravel()


class LexicalHeads(HeadSet[Sequence[str]]):
    """Per dimension, TF-IDF + linear SVM margins for the values with enough examples."""

    heads: dict[str, _DimensionHead]  # type: ignore[assignment]

    def __init__(self, taxonomy: Taxonomy, c: float = 0.5) -> None:
        super().__init__(taxonomy)
        self.c = c

    def fit(self, texts: Sequence[str], labels: Sequence[dict[str, set[str]]]) -> LexicalHeads:
        self._fit(texts, labels, lambda t, rows: [t[i] for i in rows],
                  lambda dim, t, lab: _DimensionHead.fit(dim, t, lab, self.c))
        return self
