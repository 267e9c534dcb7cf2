"""A need's candidates as arrays over the catalog's rows, and the few of them a response shows as objects.

Retrieval finds 300-500 assets per need at 100k chunks; building a ``Candidate`` object for each, with its own
dicts of ranks and chunk scores, and fusing, adjusting and sorting them one by one in Python cost more than
both vector searches together. So the pool keeps every candidate as one column entry (channel scores and ranks,
tag score, adjusters), fusion and sorting are array operations, and only the head of the ranking (what
near-duplicate folding and the internal/external mix look at) becomes ``Candidate`` objects, each built once per
pool and kept for the next ranking of the same pool (a panel plan ranks one pool for every HCP with the need,
the fusion fit hundreds of times).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from service.matching.cards import AssetCard, ChunkRow
from service.matching.catalog import CatalogSnapshot
from service.matching.config import Channel
from service.matching.relevance import Evidence
from service.store.vectors import VectorHit

CHANNELS: tuple[Channel, ...] = ("dense", "lexical", "tags")


@dataclass
class Candidate:
    asset_id: str
    dense: float | None = None
    lexical: float | None = None
    tags: float = 0.0
    chunk_score: dict[str, float] = field(default_factory=dict)  # chunk id → fused chunk-level score
    cosine: dict[str, float] = field(default_factory=dict)  # chunk id → the dense channel's score (its cosine)
    first_chunk: str | None = None  # the current version's first chunk (the passage when no chunk was hit)
    chunks: list[ChunkRow] = field(default_factory=list)  # as SQL read them for the response: its best, or all
    # the wanted (dimension, value) pairs it carries, weightiest first, with confidence and whether reviewed
    # (labelled only for the k answered: building hundreds of tag objects per request cost milliseconds)
    carried: list[tuple[str, str, float, bool]] = field(default_factory=list)
    fused: float = 0.0
    freshness: float = 1.0
    format_boost: float = 1.0
    mismatch: float = 1.0
    calibrated: float = 0.0  # the probability that it serves the need (the response's ``relevance``)
    asset: AssetCard | None = None
    vector: np.ndarray | None = None
    alternates: list[Candidate] = field(default_factory=list)  # near-duplicates collapsed into this one

    @property
    def family(self) -> str | None:
        return (self.asset.family or None) if self.asset is not None else None

    @property
    def relevance(self) -> float:
        return self.fused * self.freshness * self.format_boost * self.mismatch

    @property
    def best_chunk(self) -> str | None:
        return max(self.chunk_score, key=lambda c: self.chunk_score[c]) if self.chunk_score else None


# a hit as the roll-up keeps it: chunk id, position in the engine's answer, score
ChunkHit = tuple[str, int, float]


@dataclass(frozen=True)
class ChannelHits:
    """One chunk channel's hits rolled up to assets: asset rows in the order of their best chunk (an asset's rank in
    the channel is its place here), that chunk's score, and every hit of each row for its passage."""

    rows: np.ndarray
    scores: np.ndarray
    by_row: dict[int, list[ChunkHit]]

    @classmethod
    def roll_up(cls, hits: Sequence[VectorHit], points: Mapping[str, tuple[str, int]]) -> ChannelHits:
        """Hits come best first and carry no payload: ``points`` (the catalog's) maps a point to its chunk and row;
        a point it does not know (written after the catalog was read, or an old version's) is passed over."""
        by_row: dict[int, list[ChunkHit]] = {}
        for position, hit in enumerate(hits):
            known = points.get(hit.id)
            if known is None:
                continue
            chunk, row = known
            seen = by_row.get(row)
            if seen is None:
                by_row[row] = [(chunk, position, hit.score)]
            else:
                seen.append((chunk, position, hit.score))
        return cls(np.fromiter(by_row, dtype=np.int64, count=len(by_row)),
                   np.fromiter((found[0][2] for found in by_row.values()), dtype=np.float64, count=len(by_row)),
                   by_row)


@dataclass
class Pool:
    """Every candidate of one need, one entry per asset, entries in catalog row order (asset id order).

    ``dense`` / ``lexical``: the channel's score (its best chunk's), NaN where the channel did not find the asset;
    ``ranks``: one row per channel of ``CHANNELS``, -1 where not found; ``tags``: the tag channel's score, read for
    every candidate whichever channel found it; ``mismatch`` / ``freshness`` / ``format_boost``: the adjusters that
    do not depend on the fusion; ``dims``: each need dimension's best carried confidence (dimensions x entries);
    ``conflict``: where it contradicts a need dimension (``conflicts.py``); ``contradicts``: whether it contradicts
    a penalised one, named or implied; ``relevance``: the calibrated probability that the entry serves the need
    (``relevance.py``)."""

    catalog: CatalogSnapshot
    rows: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    ranks: np.ndarray
    tags: np.ndarray
    mismatch: np.ndarray
    freshness: np.ndarray
    format_boost: np.ndarray
    hits: Mapping[Channel, ChannelHits]
    rrf_k: int
    dims: np.ndarray
    conflict: np.ndarray
    contradicts: np.ndarray
    relevance: np.ndarray  # the chunk-level fusion's constant (which chunk is an asset's passage)
    made: dict[int, Candidate] = field(default_factory=dict)  # row → its object, shared by the pool's copies

    @classmethod
    def gather(cls, catalog: CatalogSnapshot, hits: Mapping[Channel, ChannelHits], tag_rows: np.ndarray | None,
               visible: np.ndarray, rrf_k: int) -> Pool:
        """The union of what the channels found, less what the catalog does not show (``visible``), unadjusted."""
        found = [h.rows for h in hits.values()] + ([tag_rows] if tag_rows is not None else [])
        rows = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        rows = rows[visible[rows]]
        size = len(rows)
        scores = {ch: np.full(size, np.nan) for ch in ("dense", "lexical")}
        ranks = np.full((len(CHANNELS), size), -1, dtype=np.int64)
        channel_rows = {ch: h.rows for ch, h in hits.items()}
        if tag_rows is not None:
            channel_rows["tags"] = tag_rows
        for ch, found_rows in channel_rows.items():
            inside = visible[found_rows]  # a channel's rank counts what it found, shown or not
            at = np.searchsorted(rows, found_rows[inside])
            ranks[CHANNELS.index(ch), at] = np.flatnonzero(inside)
            if ch in scores:
                scores[ch][at] = hits[ch].scores[inside]
        ones = np.ones(size)
        return cls(catalog, rows, scores["dense"], scores["lexical"], ranks, np.zeros(size), ones, ones.copy(),
                   ones.copy(), hits, rrf_k, dims=np.zeros((0, size)), conflict=np.zeros((0, size), dtype=bool),
                   contradicts=np.zeros(size, dtype=bool), relevance=ones.copy())

    def __len__(self) -> int:
        return len(self.rows)

    def without(self, asset_ids: Iterable[str]) -> Pool:
        """The pool less these assets (a request's exclusions, or what SQL no longer shows)."""
        drop = [self.catalog.row_of[a] for a in asset_ids if a in self.catalog.row_of]
        if not drop:
            return self
        return self.subset(~np.isin(self.rows, drop))

    def subset(self, keep: np.ndarray) -> Pool:
        """The entries where ``keep`` (a boolean mask over the entries) holds."""
        if keep.all():
            return self
        return replace(self, rows=self.rows[keep], dense=self.dense[keep], lexical=self.lexical[keep],
                       ranks=self.ranks[:, keep], tags=self.tags[keep], mismatch=self.mismatch[keep],
                       freshness=self.freshness[keep], format_boost=self.format_boost[keep],
                       dims=self.dims[:, keep], conflict=self.conflict[:, keep], contradicts=self.contradicts[keep],
                       relevance=self.relevance[keep])

    def evidence(self) -> Evidence:
        """What the relevance model reads of the entries."""
        return Evidence(self.dense, self.lexical, self.tags, self.dims, self.conflict, self.contradicts)

    def external(self) -> np.ndarray:
        return self.catalog.external[self.rows]

    def candidate(self, i: int) -> Candidate:
        """Entry ``i`` as an object: its scores, card, and its chunks' scores for the passage (each chunk
        gains its reciprocal rank in each chunk channel; the dense channel's score is its cosine)."""
        row = int(self.rows[i])
        made = self.made.get(row)
        if made is not None:
            return made
        catalog = self.catalog
        dense, lexical = float(self.dense[i]), float(self.lexical[i])
        c = Candidate(catalog.ids[row], dense=None if np.isnan(dense) else dense,
                      lexical=None if np.isnan(lexical) else lexical, tags=float(self.tags[i]),
                      first_chunk=catalog.first_chunk[row], freshness=float(self.freshness[i]),
                      format_boost=float(self.format_boost[i]), mismatch=float(self.mismatch[i]),
                      calibrated=float(self.relevance[i]), asset=catalog.cards[row])
        for ch, found in self.hits.items():
            for chunk, position, score in found.by_row.get(row, ()):
                if ch == "dense":
                    c.cosine[chunk] = score
                c.chunk_score[chunk] = c.chunk_score.get(chunk, 0.0) + 1.0 / (self.rrf_k + position + 1)
        self.made[row] = c
        return c
