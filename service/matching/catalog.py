"""What ranking reads about content, in memory: every asset's card and current tags as arrays, re-read only when
the store changed.

Loading a few hundred candidates' rows and tags from SQL on every request cost more than both vector searches
together (8 ms of a 30 ms request at 100k chunks), and ranking by tags in SQL aggregated thousands of rows
(14 ms). The catalog is the store's copy, not a second truth:
- it is current: each request reads the store's change counter (:mod:`service.store.changes`, bumped by database
  triggers on every write to assets and tags, from any process); a new value re-reads the tables, once, while
  concurrent requests go on with the previous copy for that moment;
- what a request answers is still checked by SQL: the picked assets are loaded with the compliance check and
  their tags (``Matcher``), and one that SQL no longer shows is replaced, as a lagging vector payload's hit is.

Visibility is applied as masks at query time (approved, unexpired today, language, a key's scope tokens by the rule
of :mod:`service.store.visibility`), so a new day or a scoped key needs no rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import and_, select

from service.core.taxonomy import Taxonomy
from service.matching.cards import CARD_COLUMNS, AssetCard
from service.store.changes import generation
from service.store.db import Database
from service.store.models import Asset, AssetTag, Chunk
from service.store.points import NO_EXPIRY, day_number
from service.store.vectors import point_id
from service.store.visibility import ACTIVE_TAG, Scope, tokens_of

Pair = tuple[str, str]


@dataclass(frozen=True)
class PairRows:
    """The assets carrying one (dimension, value) as a current active tag: rows, best confidence (accepted: 1),
    and whether a reviewer accepted it."""

    rows: np.ndarray
    confidence: np.ndarray
    reviewed: np.ndarray


@dataclass(frozen=True)
class CatalogSnapshot:
    """The tables at one generation. Rows are assets in id order, so ties break by id, as in SQL."""

    key: tuple[int, str]  # (store generation, taxonomy key)
    ids: list[str]
    row_of: dict[str, int]
    cards: list[AssetCard]
    first_chunk: list[str | None]  # the current version's first chunk
    approved: np.ndarray  # bool per row
    valid_until: np.ndarray  # yyyymmdd per row, NO_EXPIRY when none
    language: np.ndarray  # str per row
    external: np.ndarray  # bool per row: external content (news), which decays with age
    published: np.ndarray  # the publication date's ordinal per row, -1 when none
    formats: np.ndarray  # the file format (str) per row
    tokens: dict[str, np.ndarray]  # scope token → rows carrying it
    pairs: dict[Pair, PairRows]
    # the vector store's point id of every current chunk → (chunk id, row): a search asks for no payload (reading
    # two payload fields of 200 hits cost the engine 2 ms at 100k chunks, half its time) and rolls its hits up here
    points: dict[str, tuple[str, int]]
    versions: list[tuple[str, int]]  # (asset id, current version) per row: the chunks' fingerprint
    # confident_values' answers, worked out once per snapshot and taxonomy: the mismatch penalty, the contradiction
    # features and coverage ask them for every need dimension of every request, and they change only with the tables
    _confident: dict[tuple[str, str, tuple[str, ...]], dict[str, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False)

    def visible(self, language: str | None, scope: Scope | None, today: date | None = None) -> np.ndarray:
        """Rows a rep may be shown (approved, unexpired ``today``, within ``scope``), in ``language`` if given."""
        mask = self.approved & (self.valid_until >= day_number(today or date.today(), 0))
        if language is not None:
            mask &= self.language == language
        if scope is not None:
            allowed = np.zeros(len(self.ids), dtype=bool)
            for token in scope.tokens:
                if token in self.tokens:
                    allowed |= self.tokens[token]
            mask &= allowed
        return mask

    def pair_confidence(self, targets: Iterable[Pair], sources: Sequence[tuple[str, str, Pair]]
                        ) -> tuple[dict[Pair, np.ndarray], np.ndarray]:
        """Per target pair, every row's best confidence of it (by the best of its ``sources``: the pair itself or a
        value that implies it; accepted: 1, absent: 0), and whether a row carries any of them."""
        size = len(self.ids)
        best = {target: np.zeros(size) for target in targets}
        carried = np.zeros(size, dtype=bool)
        for sd, sv, target in sources:
            found = self.pairs.get((sd, sv))
            if found is not None:
                column = best[target]
                column[found.rows] = np.maximum(column[found.rows], found.confidence)  # a pair's rows are distinct
                carried[found.rows] = True
        return best, carried

    def tag_scores(self, targets: Mapping[Pair, float], sources: Sequence[tuple[str, str, Pair]]
                   ) -> tuple[np.ndarray, np.ndarray, dict[Pair, np.ndarray]]:
        """Per row, Σ weight × best confidence over ``targets`` (each target pair counted once), whether it carries
        any of them, and each target's confidences (``pair_confidence``)."""
        best, carried = self.pair_confidence(targets, sources)
        score = np.zeros(len(self.ids))
        for target, weight in targets.items():
            score += weight * best[target]
        return score, carried, best

    def top_rows(self, score: np.ndarray, carried: np.ndarray, visible: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` visible carrying rows, highest score first (ties by id)."""
        rows = np.flatnonzero(carried & visible)
        if len(rows) > n:  # the n best and their ties at the cut, before the exact sort (thousands carry a value)
            cut = -np.partition(-score[rows], n - 1)[n - 1]
            rows = rows[score[rows] >= cut]
        order = np.lexsort((rows, -score[rows]))[:n]
        return rows[order]

    def sample_chunks(self, n: int) -> list[str]:
        """At most ``n`` current chunk ids, spread evenly over the content (the reasons' word statistics)."""
        chunks = [chunk for chunk, _ in self.points.values()]
        step = max(1, len(chunks) // n) if n else len(chunks) + 1
        return chunks[::step][:n]

    def confident_values(self, dimension: str, read: Sequence[str], taxonomy: Taxonomy) -> dict[str, np.ndarray]:
        """Per value of ``dimension``, the rows carrying it at or above their tag's review threshold (or accepted),
        directly or through a value of the ``read`` dimensions that implies it (read-only: shared by requests)."""
        key = (taxonomy.key, dimension, tuple(read))
        known = self._confident.get(key)
        if known is None:  # two threads may both work it out; either answer is the same
            known = self._confident[key] = self._confident_values(dimension, read, taxonomy)
        return known

    def _confident_values(self, dimension: str, read: Sequence[str], taxonomy: Taxonomy) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        thresholds = {d: taxonomy.dimension(d).threshold for d in read}
        for (dim, value), found in self.pairs.items():
            if dim not in thresholds:
                continue
            rows = found.rows[found.reviewed | (found.confidence >= thresholds[dim])]
            if not len(rows):
                continue
            for target_dim, target in [(dim, value), *taxonomy.implications(dim, value)]:
                if target_dim == dimension:
                    mask = out.setdefault(target, np.zeros(len(self.ids), dtype=bool))
                    mask[rows] = True
        return out


def read_snapshot(db: Database, taxonomy: Taxonomy, point_ids: dict[str, str] | None = None,
                  previous: CatalogSnapshot | None = None) -> CatalogSnapshot:
    """Every asset's card, first chunk, current chunks' point ids and current active tags, in one transaction with
    the generation they are at. ``point_ids``: chunk id → point id, as a previous snapshot computed them (a UUID
    each; at 100k chunks computing them all again took a third of a second); it is brought up to date.
    ``previous``: the snapshot before; when every asset is at the version it was (a review, a metadata edit), the
    chunks are the same and its point map is kept: reading 100k chunk ids took a second at each write."""
    first = select(Chunk.asset_id, Chunk.id).join(Asset, and_(Asset.id == Chunk.asset_id,
                                                             Chunk.version == Asset.current_version)).where(
        Chunk.ordinal == 0).subquery()
    with db.session() as s:
        gen = generation(s)
        # sorted here, not by the database's collation: ties break by id as Python compares ids
        assets = sorted(s.execute(select(*CARD_COLUMNS, first.c.id, Asset.approval_status, Asset.current_version)
                                  .outerjoin(first, first.c.asset_id == Asset.id)).all(), key=lambda row: row[0])
        width = len(CARD_COLUMNS)
        # an asset's chunks are written with its version, in one transaction (service.ingest): same versions,
        # same chunks
        versions = [(row[0], row[width + 2]) for row in assets]
        same_chunks = previous is not None and previous.versions == versions
        tags = s.execute(select(AssetTag.asset_id, AssetTag.dimension, AssetTag.value, AssetTag.confidence,
                                AssetTag.status)
                         .join(Asset, Asset.id == AssetTag.asset_id)
                         .where(AssetTag.status.in_(ACTIVE_TAG), AssetTag.version == Asset.current_version)).all()
        chunks = [] if same_chunks else s.execute(select(Chunk.id, Chunk.asset_id).join(Asset, and_(
            Asset.id == Chunk.asset_id, Chunk.version == Asset.current_version))).all()
    cards = [AssetCard(*row[:width]) for row in assets]
    row_of = {card.id: i for i, card in enumerate(cards)}
    best: dict[Pair, dict[int, tuple[float, bool]]] = {}
    per_asset: dict[int, list[tuple[str, str, str]]] = {}
    for asset_id, dim, value, confidence, status in tags:
        row = row_of[asset_id]
        reviewed = status == "accepted"
        conf = 1.0 if reviewed else float(confidence)
        seen = best.setdefault((dim, value), {})
        if conf > seen.get(row, (-1.0, False))[0]:
            seen[row] = (conf, reviewed)
        per_asset.setdefault(row, []).append((dim, value, status))
    token_rows: dict[str, list[int]] = {}
    for i, card in enumerate(cards):
        for token in tokens_of(card.product, per_asset.get(i, []), taxonomy):
            token_rows.setdefault(token, []).append(i)
    size = len(cards)
    points = previous.points if previous is not None and same_chunks else _points(chunks, row_of, point_ids)

    def mask(rows: list[int]) -> np.ndarray:
        out = np.zeros(size, dtype=bool)
        out[rows] = True
        return out

    return CatalogSnapshot(
        key=(gen, taxonomy.key), ids=[c.id for c in cards], row_of=row_of, cards=cards,
        first_chunk=[row[width] for row in assets],
        approved=np.asarray([row[width + 1] == "approved" for row in assets], dtype=bool),
        valid_until=np.asarray([day_number(c.valid_until, NO_EXPIRY) for c in cards], dtype=np.int64),
        language=np.asarray([c.language for c in cards], dtype=object),
        external=np.asarray([c.source == "external" for c in cards], dtype=bool),
        published=np.asarray([c.published_at.toordinal() if c.published_at else -1 for c in cards], dtype=np.int64),
        formats=np.asarray([c.format for c in cards], dtype=object),
        tokens={token: mask(rows) for token, rows in token_rows.items()},
        pairs={pair: PairRows(np.fromiter(rows, dtype=np.int64, count=len(rows)),
                              np.asarray([conf for conf, _ in rows.values()], dtype=np.float64),
                              np.asarray([reviewed for _, reviewed in rows.values()], dtype=bool))
               for pair, rows in best.items()},
        points=points, versions=versions)


def _points(chunks: Sequence[Any], row_of: Mapping[str, int], point_ids: dict[str, str] | None
            ) -> dict[str, tuple[str, int]]:
    """Point id → (chunk id, row) of these (chunk id, asset id) rows; ``point_ids`` (chunk id → point id) is reused
    and brought up to date."""
    known = point_ids if point_ids is not None else {}
    current = {chunk_id for chunk_id, _ in chunks}
    for gone in [chunk_id for chunk_id in known if chunk_id not in current]:
        del known[gone]
    points: dict[str, tuple[str, int]] = {}
    for chunk_id, asset_id in chunks:
        pid = known.get(chunk_id)
        if pid is None:
            pid = known[chunk_id] = point_id(chunk_id)
        points[pid] = (chunk_id, row_of[asset_id])
    return points


class Catalog:
    """The current :class:`CatalogSnapshot`, re-read when the store's generation or the taxonomy moved on."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._snapshot: CatalogSnapshot | None = None
        self._lock = threading.Lock()
        self._point_ids: dict[str, str] = {}  # kept between snapshots (see read_snapshot); under the lock
        self.rebuilds = 0

    def current(self, taxonomy: Taxonomy) -> CatalogSnapshot:
        with self.db.engine.connect() as conn:  # a bare connection: an ORM session cost five times as much
            key = (generation(conn), taxonomy.key)
        snapshot = self._snapshot
        if snapshot is not None and _covers(snapshot, key):
            return snapshot
        # one request re-reads; the others keep to the previous copy meanwhile (SQL re-checks what is answered)
        if snapshot is not None and not self._lock.acquire(blocking=False):
            return snapshot
        if snapshot is None:
            self._lock.acquire()
        try:
            current = self._snapshot
            if current is None or not _covers(current, key):
                current = self._snapshot = read_snapshot(self.db, taxonomy, self._point_ids, current)
                self.rebuilds += 1
            return current
        finally:
            self._lock.release()


def _covers(snapshot: CatalogSnapshot, key: tuple[int, str]) -> bool:
    """The snapshot is at this taxonomy and at this generation or later (it may have read a write made since)."""
    return snapshot.key[1] == key[1] and snapshot.key[0] >= key[0]
