"""Reviewed examples as few-shot evidence for the LLM: the labelled items nearest to an asset, by embedding.

A small model judges better with two settled cases beside the question than with a longer definition, and
an example costs a line: its opening words and its settled value. Examples are data (reviewed tags), kept
with the heads they were fitted with, never written into a prompt template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.core.taxonomy import Taxonomy

SNIPPET_CHARS = 90
MAX_EXAMPLES = 2000  # a seeded sample beyond this: nearest-neighbour lookups stay a millisecond
SELF_SIMILARITY = 0.995  # as similar as this is the asset itself (re-tagging a reviewed one)


@dataclass
class FewShot:
    snippet: str
    labels: dict[str, set[str]]
    similarity: float


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


@dataclass
class ExampleBank:
    taxonomy_key: str
    vectors: np.ndarray  # (n, dim), L2-normalised
    snippets: list[str]
    labels: list[dict[str, set[str]]]

    @classmethod
    def build(cls, taxonomy: Taxonomy, items: Sequence[tuple[str, np.ndarray, dict[str, set[str]]]],
              seed: int = 5) -> ExampleBank:
        rows = list(range(len(items)))
        if len(rows) > MAX_EXAMPLES:
            rows = sorted(np.random.default_rng(seed).permutation(len(rows))[:MAX_EXAMPLES].tolist())
        vectors = np.vstack([items[i][1] for i in rows]).astype(np.float32) if rows else np.zeros((0, 1), np.float32)
        return cls(taxonomy.key, vectors, [snippet(items[i][0]) for i in rows], [items[i][2] for i in rows])

    def __len__(self) -> int:
        return len(self.snippets)

    def votes(self, vectors: np.ndarray, dimensions: Sequence[tuple[str, Sequence[str]]], k: int = 10
              ) -> list[dict[tuple[str, str], float]]:
        """The neighbour head: per item, per (dimension, value), the similarity-weighted share of its ``k``
        nearest examples (labelled on that dimension) that carry the value. With few reviews, what the most
        similar reviewed assets were tagged is the strongest evidence there is."""
        out: list[dict[tuple[str, str], float]] = [{} for _ in range(len(vectors))]
        if not len(self) or vectors.shape[-1] != self.vectors.shape[1]:
            return out
        sims = vectors @ self.vectors.T
        for dim_id, values in dimensions:
            labelled = np.asarray([dim_id in lab for lab in self.labels])
            if labelled.sum() < 2:
                continue
            rows = np.flatnonzero(labelled)
            member = np.asarray([[v in self.labels[r][dim_id] for v in values] for r in rows], dtype=np.float32)
            part = sims[:, rows]
            kk = min(k, len(rows))
            top = np.argpartition(-part, kk - 1, axis=1)[:, :kk]
            near = np.take_along_axis(part, top, axis=1)
            # the nearest count most; one as similar as the asset itself is the asset (re-tagging a reviewed
            # one): its own labels would only echo back
            weights = np.where(near >= SELF_SIMILARITY, 0.0, np.maximum(near, 0.0) ** 3)
            share = np.einsum("ik,ikv->iv", weights, member[top]) / np.maximum(weights.sum(axis=1, keepdims=True),
                                                                                1e-9)
            for i in range(len(vectors)):
                for j, v in enumerate(values):
                    out[i][(dim_id, v)] = float(share[i, j])
        return out

    def nearest(self, vector: np.ndarray, dimensions: Sequence[str], k: int = 2, skip_above: float = SELF_SIMILARITY
                ) -> list[FewShot]:
        """Up to ``k`` examples labelled on any of ``dimensions``, most similar first. An example as similar as
        ``skip_above`` is the asset itself (re-tagging a reviewed asset): it would give the answer away."""
        if not len(self) or vector.shape[-1] != self.vectors.shape[1]:
            return []
        sims = self.vectors @ vector
        out: list[FewShot] = []
        for i in np.argsort(-sims):
            if sims[i] >= skip_above:
                continue
            labels = {d: v for d, v in self.labels[i].items() if d in dimensions}
            if not labels:
                continue
            out.append(FewShot(self.snippets[i], labels, float(sims[i])))
            if len(out) == k:
                break
        return out
