"""The non-LLM signals that propose tags: embedding similarity to each value's prototype, and
keyword/synonym hits in Chinese and English (whose matching sentence becomes evidence)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from service.core.embeddings import Embedder
from service.core.taxonomy import Taxonomy

_CJK = re.compile(r"[\u3400-\u9fff]")


class PrototypeIndex:
    """Every value's prototype texts (labels, definition, synonyms, examples; both languages), embedded.

    Prototypes are embedded as queries and chunks as passages: e5 models are trained for that
    asymmetry (a short description looking for the text that fits it).
    """

    def __init__(self, taxonomy: Taxonomy, embedder: Embedder) -> None:
        self.taxonomy = taxonomy
        texts: list[str] = []
        owners: list[tuple[int, int]] = []
        for d, dim in enumerate(taxonomy.dimensions):
            for v, value in enumerate(dim.values):
                for text in dict.fromkeys(value.prototype_texts()):
                    texts.append(text)
                    owners.append((d, v))
        self.matrix = embedder.embed_queries(texts)
        self.owners = np.asarray(owners, dtype=np.int32)
        # per dimension, per value: the rows of its prototype texts (scores() runs per asset, thousands of
        # times when calibration scores held-out items, so the masks are computed once here)
        self._rows = [[np.flatnonzero((self.owners[:, 0] == d) & (self.owners[:, 1] == v))
                       for v in range(len(dim.values))] for d, dim in enumerate(taxonomy.dimensions)]

    def value_rows(self, d: int, v: int) -> np.ndarray:
        """The rows of ``matrix`` that are prototype texts of value ``v`` of dimension ``d``."""
        return self._rows[d][v]

    def scores(self, chunk_vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Per dimension, a score per value: mean of the best-matching chunk over its prototype texts,
        blended with the single best match (one sharp synonym hit matters)."""
        if chunk_vectors.ndim == 1:
            chunk_vectors = chunk_vectors[None, :]
        best = (chunk_vectors @ self.matrix.T).max(axis=0)  # per prototype text: its best chunk
        out: dict[str, np.ndarray] = {}
        for d, dim in enumerate(self.taxonomy.dimensions):
            scores = np.zeros(len(dim.values), dtype=np.float32)
            for v, rows in enumerate(self._rows[d]):
                if rows.size:
                    sims = best[rows]
                    scores[v] = 0.5 * sims.max() + 0.5 * sims.mean()
            out[dim.id] = scores
        return out


def standardise(scores: np.ndarray) -> np.ndarray:
    """Scores as z-values within their dimension: e5 cosines sit high (0.7-0.9), so rank, don't threshold."""
    if scores.size < 2:
        return np.zeros_like(scores)
    std = float(scores.std())
    return (scores - scores.mean()) / (std if std > 1e-6 else 1.0)


@dataclass
class KeywordHit:
    count: int
    sentence: str


class KeywordMatcher:
    """Labels and synonyms of every value, matched as whole words (English) or substrings (Chinese)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._patterns: dict[tuple[str, str], re.Pattern[str]] = {}
        for dim in taxonomy.dimensions:
            for value in dim.values:
                terms = {t.strip() for t in [*value.label.all(), *value.synonyms.all()] if len(t.strip()) >= 2}
                if not terms:
                    continue
                parts = []
                for term in sorted(terms, key=len, reverse=True):
                    escaped = re.escape(term)
                    parts.append(escaped if _CJK.search(term) else rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])")
                self._patterns[(dim.id, value.id)] = re.compile("|".join(parts), re.IGNORECASE)

    def hits(self, text: str) -> dict[tuple[str, str], KeywordHit]:
        found: dict[tuple[str, str], KeywordHit] = {}
        for key, pattern in self._patterns.items():
            matches = list(pattern.finditer(text))
            if matches:
                found[key] = KeywordHit(len(matches), sentence_around(text, matches[0].start(), matches[0].end()))
        return found


def sentence_around(text: str, start: int, end: int, limit: int = 200) -> str:
    """The sentence holding text[start:end], trimmed to ``limit`` characters around the match."""
    left = max(text.rfind(c, 0, start) for c in "。！？；!?;\n") + 1
    left = max(left, text.rfind(". ", 0, start) + 2 if text.rfind(". ", 0, start) >= 0 else 0)
    rights = [i for i in (text.find(c, end) for c in "。！？；!?;\n") if i >= 0]
    dot = text.find(". ", end)
    if dot >= 0:
        rights.append(dot)
    right = min(rights) + 1 if rights else len(text)
    sentence = text[left:right].strip()
    if len(sentence) > limit:
        centre = start - left
        lo = max(0, centre - limit // 2)
        sentence = sentence[lo:lo + limit].strip()
    return sentence
