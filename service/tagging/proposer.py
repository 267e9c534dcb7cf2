"""The proposer: every non-LLM signal for every (dimension, value) of an asset, in one pass.

Signals are the embedding's similarity to the value's prototypes (as a z-score within the dimension),
keyword hits, and, once reviewed examples exist, the two learned heads: a logistic regression on the
asset embedding and a TF-IDF linear model on its words and characters. The decision policy turns them
into probabilities; the proposer never decides.

``signals_many`` scores a batch at once (fitting calibration scores thousands of held-out items: one
matrix call per head instead of one per item).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from service.core.embeddings import Embedder
from service.core.taxonomy import Taxonomy
from service.tagging import model_bytes
from service.tagging.context import ContextHead, Facts
from service.tagging.examples import ExampleBank
from service.tagging.learned import LearnedHeads
from service.tagging.lexical import LexicalHeads
from service.tagging.signals import KeywordHit, KeywordMatcher, PrototypeIndex, standardise

log = logging.getLogger(__name__)


class Signal(NamedTuple):
    embedding_z: float
    keyword_hits: int
    embedding_head: float | None = None  # the embedding head's probability
    lexical_head: float | None = None  # the lexical head's margin
    neighbours: float | None = None  # share of the nearest reviewed examples with the value
    context: float | None = None  # what the asset's facts (format, source) say of the value: log likelihood ratio


Signals = dict[str, dict[str, Signal]]  # dimension -> value -> signal


@dataclass
class Heads:
    """What reviewed examples taught: both learned heads (either may be missing on a new taxonomy)."""

    embedding: LearnedHeads | None = None
    lexical: LexicalHeads | None = None
    neighbours: ExampleBank | None = None
    context: ContextHead | None = None

    @property
    def count(self) -> int:
        return len(self.embedding.models if self.embedding else {}) + len(self.lexical.models if self.lexical else {})


def asset_vector(chunk_vectors: np.ndarray) -> np.ndarray:
    v = chunk_vectors.mean(axis=0) if chunk_vectors.ndim == 2 else chunk_vectors
    return np.asarray(v / (np.linalg.norm(v) or 1.0), dtype=np.float32)


class Proposer:
    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, prototypes: PrototypeIndex | None = None) -> None:
        self.taxonomy = taxonomy
        self.prototypes = prototypes if prototypes is not None and prototypes.taxonomy is taxonomy \
            else PrototypeIndex(taxonomy, embedder)
        self.keywords = KeywordMatcher(taxonomy)

    def signals(self, text: str, chunk_vectors: np.ndarray, heads: Heads | None = None,
                hits: dict[tuple[str, str], KeywordHit] | None = None, facts: Facts | None = None) -> Signals:
        return self.signals_many([text], [chunk_vectors], heads, [hits] if hits is not None else None,
                                 [facts or {}])[0]

    def signals_many(self, texts: Sequence[str], chunk_vectors: Sequence[np.ndarray], heads: Heads | None = None,
                     hits: Sequence[dict[tuple[str, str], KeywordHit]] | None = None,
                     facts: Sequence[Facts] | None = None) -> list[Signals]:
        """``facts``: per text, the values its metadata decides (the context head reads them)."""
        hits = [self.keywords.hits(t) for t in texts] if hits is None else hits
        embedded: list[dict[tuple[str, str], float]] = [{} for _ in texts]
        lexical: list[dict[tuple[str, str], float]] = [{} for _ in texts]
        assets = np.vstack([asset_vector(v) for v in chunk_vectors]) if heads is not None and texts else None
        if heads is not None and heads.embedding is not None and assets is not None:
            embedded = heads.embedding.predict_many(assets)
        if heads is not None and heads.lexical is not None and texts:
            lexical = heads.lexical.predict_many(texts)
        dimensions = [(d.id, d.value_ids) for d in self.taxonomy.dimensions]
        votes: list[dict[tuple[str, str], float]] = [{} for _ in texts]
        if heads is not None and heads.neighbours is not None and assets is not None:
            votes = heads.neighbours.votes(assets, dimensions)
        context: list[dict[tuple[str, str], float]] = [{} for _ in texts]
        if heads is not None and heads.context and facts is not None:
            context = heads.context.predict_many(facts, dimensions)
        out: list[Signals] = []
        for i, vectors in enumerate(chunk_vectors):
            sims = self.prototypes.scores(vectors)
            item: Signals = {}
            for dim in self.taxonomy.dimensions:
                z = standardise(sims[dim.id])
                item[dim.id] = {}
                for j, value in enumerate(dim.values):
                    key = (dim.id, value.id)
                    hit = hits[i].get(key)
                    item[dim.id][value.id] = Signal(float(z[j]), hit.count if hit else 0, embedded[i].get(key),
                                                    lexical[i].get(key), votes[i].get(key), context[i].get(key))
            out.append(item)
        return out


def dump_heads(heads: Heads) -> bytes:
    """The heads as model bytes (with the neighbour bank, which is also the few-shot bank)."""
    owner = heads.embedding or heads.lexical
    return model_bytes.dumps({"taxonomy": owner.taxonomy_key if owner is not None else None,
                              "embedding": heads.embedding, "lexical": heads.lexical, "neighbours": heads.neighbours,
                              "context": heads.context})


def parse_heads(taxonomy: Taxonomy, raw: bytes) -> Heads | None:
    """Heads from :func:`dump_heads` bytes; None when they are unreadable (an older release's pickles, a type
    not trusted) or belong to another taxonomy version."""
    try:
        data = model_bytes.loads(raw)
    except model_bytes.UnreadableModel as exc:  # retrain rather than fail to start
        log.warning("stored heads not loaded (%s); tagging runs without learned heads until a retrain", exc)
        return None
    if not isinstance(data, dict) or data.get("taxonomy") != taxonomy.key or "lexical" not in data:
        return None  # heads of another taxonomy version would map to the wrong values
    for head_set in (data["embedding"], data["lexical"]):
        if head_set is not None:
            head_set.taxonomy = taxonomy  # not stored: the taxonomy of the key checked above
    return Heads(data["embedding"], data["lexical"], data.get("neighbours"), data.get("context"))


def save_heads(heads: Heads, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_heads(heads))


def load_heads(taxonomy: Taxonomy, path: Path) -> Heads | None:
    return parse_heads(taxonomy, path.read_bytes()) if path.exists() else None
