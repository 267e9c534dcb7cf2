"""Matching an HCP's need to approved content: three retrieval channels, fused, diversified, mixed.

Channels, each returning its own ranking:
- dense: the need (tag definitions + free text) embedded, nearest chunk vectors;
- lexical: BM25 over the chunks' words (jieba for Chinese), with the values' labels and synonyms in
  both languages as the query;
- tags: assets carrying the need's tags, scored by the dimension weights of the taxonomy (strategic
  dimensions such as value driver weigh more) times the tag's confidence (1 when a reviewer accepted it).

Chunks roll up to assets (best chunk per channel; that chunk is the passage shown). The channels fuse by
reciprocal rank (default) or by weighted normalised scores, with weights fitted on judged needs
(``hcp-content eval matching --fit``); external news decays with age; preferred formats get a small boost.
Near-duplicates (one content family, such as the zh and en copies of a deck, or passages near-identical by
vector) collapse into the best of them, the others listed as its alternates; general MMR is an option, not
the default (it pushes down relevant documents for resembling each other, which medical ones do). The
internal/external mix is honoured.

What ranking reads about assets and tags comes from the in-memory catalog (``catalog.py``), current to the
store's change counter; what a response shows is loaded by one SQL query that re-checks it (approved, not
expired, in scope) whatever the catalog or the vector payloads say, with its tags and passages.

Two stages, so that fitting the fusion re-ranks without re-retrieving: ``candidates`` (retrieval, the catalog's
visibility, tag scores, the penalties and boosts that do not depend on the fusion, as the arrays of a ``Pool``)
and ``rank`` (fusion and sorting over the arrays, then duplicates and mix over the head as objects); ``answer``
checks the picked in SQL and builds the response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import Executable, and_, bindparam, select
from sqlalchemy.orm import aliased

from service.core.embeddings import Embedder
from service.core.lexical import LexicalEncoder, default_encoder, query_vector
from service.core.taxonomy import Taxonomy
from service.matching.cards import CARD_COLUMNS, AssetCard, ChunkRow
from service.matching.catalog import Catalog, CatalogSnapshot
from service.matching.config import Channel, Diversity, Fusion, MatchConfig, NeedKind
from service.matching.conflicts import conflicts, contradicts, mismatch_penalty, wanted
from service.matching.coverage import coverage
from service.matching.distinctive import Distinctive
from service.matching.floor import partial_matches, served
from service.matching.need import Need, NeedError, dense_query, lexical_query, parse_need
from service.matching.pool import CHANNELS, Candidate, ChannelHits, Pool
from service.matching.reasons import notice
from service.matching.relevance import dimension_cover
from service.matching.result import ResultWriter
from service.matching.schemas import (
    Basis,
    Coverage,
    MatchRequest,
    MatchResponse,
    MatchResult,
)
from service.settings import Settings
from service.store import opt_outs
from service.store.db import Database
from service.store.models import Asset, AssetTag, Chunk
from service.store.points import day_number
from service.store.vectors import VectorStore, Where, point_id
from service.store.visibility import ACTIVE_TAG, Scope, rep_visible

TagRow = tuple[str, str, str, float, str]  # asset id, dimension, value, confidence, status


def need_kind(need: Need) -> NeedKind:
    """Need-tags (BM25 then reads the values' labels and synonyms) or free text only (the HCP's own words)."""
    return "tags" if need.tags else "text"


def usable_channels(need: Need, channels: Iterable[Channel] = CHANNELS) -> list[Channel]:
    """The channels that can score a need: the tag channel only when it has need-tags of content dimensions."""
    return [c for c in channels if c != "tags" or need.tags]


@dataclass
class Ranking:
    """What a personalised answer is built from: the picked candidates (cards, every current chunk as SQL loaded
    it, the dense channel's chunk scores) and the need's query vector, so that talking points read nothing again."""

    picked: list[Candidate]
    vector: np.ndarray | None


class Matcher:
    """Stateless over the stores; one instance serves every request."""

    def __init__(self, db: Database, vectors: VectorStore, embedder: Embedder, config: MatchConfig,
                 encoder: LexicalEncoder | None = None) -> None:
        self.db, self.vectors, self.embedder, self.config = db, vectors, embedder, config
        self.encoder = encoder or default_encoder()
        # jieba is the dearest step of a response after SQL; needs and passages repeat all day, so their
        # terms are remembered (bounded: a few thousand short texts)
        self.terms = lru_cache(maxsize=8192)(lambda text: tuple(self.encoder.terms(text)))
        self.catalog = Catalog(db)
        self.results = ResultWriter(config, self.terms, Distinctive(db, config.generic_terms, self.terms))

    @classmethod
    def from_settings(cls, db: Database, vectors: VectorStore, embedder: Embedder, settings: Settings) -> Matcher:
        return cls(db, vectors, embedder, MatchConfig.of(settings))

    # --- entry point -----------------------------------------------------------------------------
    def match(self, request: MatchRequest, taxonomy: Taxonomy, *, scope: Scope | None = None,
              channels: Iterable[Channel] = CHANNELS, diversity: Diversity | None = None,
              fusion: Fusion | None = None, floored: bool = True) -> MatchResponse:
        """``scope``: the caller key's products and therapy areas (None: unscoped); every channel is filtered
        by it before ranking, so a scoped top-k is as full as an unscoped one.
        ``channels`` / ``diversity`` / ``fusion`` / ``floored``: for evaluation (each channel alone, MMR, fitted
        weights, the list without the relevance floor); the API uses all channels and the settings."""
        need = parse_need(taxonomy, request.need_tags, request.need_text)
        basis = self.basis(request.personalized, request.hcp_id)
        if basis != "need_tags":
            return self.non_personalised(request, taxonomy, basis, self.by_recency(request, scope))
        if need.empty:
            raise NeedError("empty_need", "Give need_tags of content dimensions or need_text (the HCP-only "
                            "dimensions describe the doctor, not content), or ask for a non-personalised list "
                            "(personalized: false).")
        channel_set = set(channels)
        candidates = self.candidates(request, need, taxonomy, channel_set, scope)
        return self.answer(request, need, candidates, taxonomy, scope=scope, channels=channel_set,
                           diversity=diversity, fusion=fusion, floored=floored)

    def ranking(self, request: MatchRequest, need: Need, taxonomy: Taxonomy, *,
                scope: Scope | None = None) -> Ranking:
        """What the personalised answer to a non-empty ``need`` picks, every current chunk of the picked assets
        loaded (talking points draw on them), without building the response. The caller has checked the HCP may
        get one (``basis``)."""
        candidates, vector = self.retrieve(request, need, taxonomy, set(CHANNELS), scope)
        picked, _ = self._pick(request, need, candidates, taxonomy, scope, CHANNELS, None, None, all_chunks=True)
        return Ranking(picked, vector)

    def answer(self, request: MatchRequest, need: Need, candidates: Pool, taxonomy: Taxonomy, *,
               scope: Scope | None = None, channels: Iterable[Channel] = CHANNELS,
               diversity: Diversity | None = None, fusion: Fusion | None = None,
               floored: bool = True) -> MatchResponse:
        """The personalised response from ``candidates`` (``candidates()``'s; a panel plan retrieves them once
        for every HCP with the same need and answers each with its own exclusions and k)."""
        picked, partial = self._pick(request, need, candidates, taxonomy, scope, channels, diversity, fusion,
                                     floored=floored)
        return self._response(request, picked, taxonomy, "need_tags", self.external_share(request), need=need,
                              scope=scope, partial=partial, catalog=candidates.catalog)

    def floor(self, need: Need, channels: Iterable[Channel]) -> float:
        """The relevance below which nothing is listed: the setting's, when every channel the need can use ranks
        (the relevance model reads them all); 0 for an evaluation's single channel."""
        return self.config.min_relevance if set(channels) >= set(usable_channels(need)) else 0.0

    def _pick(self, request: MatchRequest, need: Need, candidates: Pool, taxonomy: Taxonomy,
              scope: Scope | None, channels: Iterable[Channel], diversity: Diversity | None,
              fusion: Fusion | None, *, all_chunks: bool = False, floored: bool = True
              ) -> tuple[list[Candidate], list[Candidate]]:
        """The ranked pick above the floor and the closest partial matches below it, each one (and its alternates)
        confirmed and loaded by SQL (``_load``)."""
        fusion = fusion or self.config.fusion(need_kind(need))
        diversity = diversity or self.config.diversity
        floor = self.floor(need, channels) if floored else 0.0
        pool = candidates
        while True:
            fits = floor <= 0 or served(pool.without(request.exclude_asset_ids), need_kind(need), self.config)
            picked = self.rank(pool, request, set(channels), fusion, diversity, min_relevance=floor) if fits else []
            partial = partial_matches(pool, request.exclude_asset_ids, need, taxonomy, floor if fits else 1.0,
                                      self.config.partial_results)
            shown = [c for p in picked for c in (p, *p.alternates)] + partial
            loaded = self._load(shown, need, taxonomy, scope, all_chunks=all_chunks)
            gone = {c.asset_id for c in shown} - loaded
            if not gone:
                break
            # the catalog lagged a withdrawal by a moment: SQL is the truth, the next best take their place
            pool = pool.without(gone)
        return picked, partial

    def non_personalised(self, request: MatchRequest, taxonomy: Taxonomy, basis: Basis,
                         pool: list[Candidate]) -> MatchResponse:
        """The list that uses nothing about the HCP, from ``pool`` (``by_recency``; a panel plan loads it once
        for all its HCPs), less the request's excluded assets."""
        excluded = set(request.exclude_asset_ids)
        pool = [c for c in pool if c.asset_id not in excluded]
        share = self.external_share(request)
        return self._response(request, self._mix(pool, request.k, share, mmr=False), taxonomy, basis, share, need=None)

    def external_share(self, request: MatchRequest) -> float | None:
        return self.config.external_share if request.external_share is None else request.external_share

    def candidates(self, request: MatchRequest, need: Need, taxonomy: Taxonomy, channels: set[Channel],
                   scope: Scope | None = None) -> Pool:
        """Every channel's hits rolled up to the assets the catalog shows as visible, tag-scored, with the
        fusion-independent adjustments (mismatch penalty, news freshness, preferred format) applied."""
        return self.retrieve(request, need, taxonomy, channels, scope)[0]

    def retrieve(self, request: MatchRequest, need: Need, taxonomy: Taxonomy, channels: set[Channel],
                 scope: Scope | None = None) -> tuple[Pool, np.ndarray | None]:
        """``candidates()`` with the need's query vector (None without the dense channel)."""
        catalog = self.catalog.current(taxonomy)
        visible = catalog.visible(request.language if request.only_language else None, scope)
        hits, vector = self._retrieve(request, need, taxonomy, channels, scope, catalog)
        weight = _weights(need, taxonomy)
        score, tag_rows = None, None
        best: dict[tuple[str, str], np.ndarray] = {}
        if weight:
            score, carried, best = catalog.tag_scores(weight, _sources(weight, taxonomy))
            if "tags" in channels:
                tag_rows = catalog.top_rows(score, carried, visible, self.config.candidates)
        pool = Pool.gather(catalog, hits, tag_rows, visible, self.config.tag_fusion.rrf_k)
        if score is not None:
            pool.tags = score[pool.rows] / (sum(weight.values()) or 1.0)
        pool.conflict = conflicts(pool.rows, wanted(need), taxonomy, catalog)
        pool.mismatch = mismatch_penalty(pool.conflict, need, taxonomy)
        pool.contradicts = contradicts(pool.rows, need, taxonomy, catalog, pool.conflict)
        pool.freshness, pool.format_boost = self._adjustments(pool.rows, request, taxonomy, catalog)
        pool.dims = dimension_cover(need.tags, best, pool.rows)
        pool.relevance = self.config.relevance.relevance(pool.evidence(), need_kind(need))
        return pool, vector

    def rank(self, candidates: Pool, request: MatchRequest, channels: set[Channel], fusion: Fusion,
             diversity: Diversity, min_relevance: float = 0.0) -> list[Candidate]:
        """The ``request.k`` picked: fused, sorted, near-duplicates collapsed (or MMR), mixed. The request's
        excluded assets and what is below ``min_relevance`` are dropped first, so they are not even alternates."""
        pool = candidates.without(request.exclude_asset_ids)
        if min_relevance > 0:
            pool = pool.subset(pool.relevance >= min_relevance)
        fused = self._fuse(pool, channels, fusion)
        order = np.lexsort((pool.rows, -(fused * pool.freshness * pool.format_boost * pool.mismatch)))
        head = max(3 * request.k, 30)
        if diversity != "mmr":  # what folding and the mix can reach (MMR looks at every candidate)
            order = _reachable(order, head, request.k, pool.external())
        ranked = []
        for i in order:
            c = pool.candidate(i)
            c.fused, c.alternates = float(fused[i]), []
            ranked.append(c)
        if diversity != "none":
            self._attach_vectors(ranked[:head])
        if diversity == "duplicates":
            ranked = self._collapse(ranked[:head]) + ranked[head:]
        return self._mix(ranked, request.k, self.external_share(request), mmr=diversity == "mmr")

    def basis(self, personalized: bool, hcp_id: str | None) -> Basis:
        """What a list for this request may be based on: an opted-out HCP never gets a personalised one."""
        if hcp_id and self.is_opted_out(hcp_id):
            return "opted_out"
        return "need_tags" if personalized else "not_requested"

    def is_opted_out(self, hcp_id: str) -> bool:
        return bool(self.opted_out([hcp_id]))

    def opted_out(self, hcp_ids: Iterable[str]) -> set[str]:
        """Which of these HCPs are on the opt-out list (one query for a whole panel)."""
        with self.db.session() as s:
            return opt_outs.opted_out(s, hcp_ids)

    # --- retrieval -------------------------------------------------------------------------------
    def _where(self, request: MatchRequest, scope: Scope | None) -> Where:
        equals: dict[str, str | int | float | list[str | int | float]] = {"approval_status": "approved"}
        if request.only_language:
            equals["language"] = request.language
        if scope is not None:  # the payload's scope tokens (see service.store.visibility.scope_tokens)
            tokens: list[str | int | float] = [*scope.tokens]
            equals["scope"] = tokens
        return Where(equals=equals, ranges={"valid_until": (day_number(date.today(), 0), None)})

    def _retrieve(self, request: MatchRequest, need: Need, taxonomy: Taxonomy, channels: set[Channel],
                  scope: Scope | None, catalog: CatalogSnapshot
                  ) -> tuple[dict[Channel, ChannelHits], np.ndarray | None]:
        """The chunk channels' hits rolled up to assets, and the need's query vector. Hits carry no payload: the
        catalog knows each current chunk's point id (a hit it does not know is a chunk written after it was read,
        or an old version's, and is passed over as an invisible asset's would be)."""
        n = self.config.candidates
        where = self._where(request, scope)
        found: dict[Channel, ChannelHits] = {}
        vector = None
        if "dense" in channels:
            vector = self.embedder.embed_query(dense_query(taxonomy, need, request.language))
            found["dense"] = ChannelHits.roll_up(self.vectors.search(vector, n, where, fields=()), catalog.points)
        if "lexical" in channels:
            query = query_vector(self.terms(lexical_query(taxonomy, need)))
            found["lexical"] = ChannelHits.roll_up(self.vectors.search_lexical(query, n, where, fields=()),
                                                   catalog.points)
        return found, vector

    def _load(self, shown: list[Candidate], need: Need | None, taxonomy: Taxonomy, scope: Scope | None, *,
              all_chunks: bool = False) -> set[str]:
        """One query for the assets a response shows: which of them SQL shows as approved, unexpired and in scope
        (the truth the catalog and the vector payloads can lag behind for a moment), their current tags of the
        need's pairs (their explanation), and their passages (``all_chunks``: every current chunk, for talking
        points). Returns the ids SQL shows."""
        if not shown:
            return set()
        self._default_to_first_chunk(shown)
        weight = _weights(need, taxonomy) if need is not None else {}
        sources = _sources(weight, taxonomy)
        dims = sorted({d for d, _, _ in sources})
        passages = [c.best_chunk for c in shown if c.best_chunk]
        query = _load_query(tuple(dims), all_chunks, scope, date.today())
        params = {"ids": sorted({c.asset_id for c in shown}), "passages": passages}
        found: set[str] = set()
        chunks: dict[str, dict[str, ChunkRow]] = {}
        tags: list[TagRow] = []
        row: Any
        with self.db.engine.connect() as conn:  # rows, not objects: a bare connection is enough
            for row in conn.execute(query, params):
                found.add(row[0])
                if row[1] is not None and row[1] not in chunks.setdefault(row[0], {}):
                    chunks[row[0]][row[1]] = ChunkRow(*row[1:8])
                if dims and row[8] is not None:
                    tags.append((row[0], *row[8:]))
        carried = _carried(taxonomy, tags, keep=set(weight)) if weight else {}
        for c in shown:
            c.chunks = sorted(chunks.get(c.asset_id, {}).values(), key=lambda chunk: chunk.ordinal)
            c.carried = [(d, v, conf, reviewed) for (d, v), (conf, reviewed)
                         in sorted(carried.get(c.asset_id, {}).items(), key=lambda kv: -weight[kv[0]])]
        return found

    # --- scoring ---------------------------------------------------------------------------------
    def fused(self, pool: Pool, channels: set[Channel], fusion: Fusion) -> np.ndarray:
        """What the ranking sorts by: the fused score times the adjusters."""
        return self._fuse(pool, channels, fusion) * pool.freshness * pool.format_boost * pool.mismatch

    @staticmethod
    def _fuse(pool: Pool, channels: set[Channel], fusion: Fusion) -> np.ndarray:
        """Each candidate's fused score: Σ weight / (k + rank + 1) over the channels that found it (rrf), or the
        weighted sum of the channels' scores normalised over the pool (dense min-max, lexical by its top)."""
        weights = fusion.weights
        fused = np.zeros(len(pool))
        if fusion.method == "rrf":
            for ch, ranks in zip(CHANNELS, pool.ranks, strict=True):
                fused += np.where(ranks >= 0, weights.get(ch, 1.0) / (fusion.rrf_k + ranks + 1), 0.0)
            return fused
        found = ~np.isnan(pool.dense)
        lo, hi = (pool.dense[found].min(), pool.dense[found].max()) if found.any() else (0.0, 1.0)
        lexical = np.nan_to_num(pool.lexical, nan=0.0)
        top_lex = lexical.max() if len(lexical) else 0.0
        parts = {"dense": np.where(found, (pool.dense - lo) / (hi - lo) if hi > lo else 1.0, 0.0),
                 "lexical": lexical / top_lex if top_lex else np.zeros(len(pool)),
                 "tags": pool.tags}
        for ch in CHANNELS:
            if ch in channels:
                fused += weights.get(ch, 1.0) * parts[ch]
        return fused

    def _adjustments(self, rows: np.ndarray, request: MatchRequest, taxonomy: Taxonomy,
                     catalog: CatalogSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the freshness factor (external news halves every ``news_half_life_days``) and the preferred
        format's boost."""
        age = np.maximum(0, date.today().toordinal() - catalog.published[rows])
        dated = catalog.external[rows] & (catalog.published[rows] >= 0)
        freshness = np.where(dated, 0.5 ** (age / self.config.news_half_life_days), 1.0)
        preferred = {f.lower() for f in request.formats}
        boost = np.ones(len(rows))
        if preferred:
            format_value = format_values(taxonomy)
            formats = catalog.formats[rows]
            wanted = [f for f in set(formats) if {f.lower(), format_value.get(f, "")} & preferred]
            boost[np.isin(formats, wanted)] = 1.0 + self.config.format_boost
        return freshness, boost

    @staticmethod
    def _default_to_first_chunk(candidates: list[Candidate]) -> None:
        """A candidate no chunk-level channel found (tag channel, non-personalised list) gets its first
        current chunk as its passage: which of its chunks is nearest the need is not known."""
        for c in candidates:
            if c.best_chunk is None and c.first_chunk is not None:
                c.chunk_score[c.first_chunk] = 0.0

    def _attach_vectors(self, ranked: list[Candidate]) -> None:
        """Each candidate's passage vector, for near-duplicates and MMR."""
        missing = [c for c in ranked if c.vector is None]  # re-ranking the same candidates fetches nothing
        self._default_to_first_chunk(missing)
        ids = {point_id(c.best_chunk): c for c in missing if c.best_chunk is not None}
        for pid, vector in self.vectors.dense_vectors(list(ids)).items():
            ids[pid].vector = vector

    def _collapse(self, ranked: list[Candidate]) -> list[Candidate]:
        """Near-duplicates fold into the best-ranked of them: one content family (translations and versions
        declared in the asset's metadata), or passages whose vectors are near-identical. The multilingual
        embedder does not find translations by itself (on the samples the zh and en detail aids' vectors are
        further apart than thirty pairs of different assets), so a translation needs its family."""
        if not ranked:
            return []
        threshold = self.config.duplicate_similarity
        # every pair's passage cosine in one product (pairwise in Python it cost a millisecond per request)
        dim = next((len(c.vector) for c in ranked if c.vector is not None), 0)
        matrix = np.zeros((len(ranked), dim), dtype=np.float32)
        for i, c in enumerate(ranked):
            if c.vector is not None:
                matrix[i] = c.vector
        near = (matrix @ matrix.T) >= threshold
        has_vector = np.asarray([c.vector is not None for c in ranked])
        near &= has_vector[:, None] & has_vector[None, :]
        kept: list[int] = []
        for i, c in enumerate(ranked):
            twin = next((j for j in kept if near[i, j] or (c.family is not None and c.family == ranked[j].family)),
                        None)
            if twin is None:
                kept.append(i)
            else:
                ranked[twin].alternates.append(c)
        return [ranked[i] for i in kept]

    def _mmr(self, pool: list[Candidate], count: int, chosen: list[Candidate]) -> list[Candidate]:
        """Maximal marginal relevance: each pick trades relevance against similarity to what is chosen."""
        lam = self.config.mmr_lambda
        top = max((c.relevance for c in pool), default=0.0) or 1.0
        picked: list[Candidate] = []
        remaining = list(pool)
        while remaining and len(picked) < count:
            def gain(c: Candidate) -> float:
                sims = [float(np.dot(c.vector, o.vector)) for o in chosen + picked
                        if c.vector is not None and o.vector is not None]
                return lam * c.relevance / top - (1 - lam) * max(sims, default=0.0)
            best = max(remaining, key=gain)
            picked.append(best)
            remaining.remove(best)
        return picked

    def _mix(self, ranked: list[Candidate], k: int, share: float | None, *, mmr: bool) -> list[Candidate]:
        """Pick ``k`` honouring the external share (the other pool fills a short one), then order by relevance."""
        def take(pool: list[Candidate], count: int, chosen: list[Candidate]) -> list[Candidate]:
            return self._mmr(pool, count, chosen) if mmr else pool[:count]

        if share is None:
            return take(ranked, k, [])
        external = [c for c in ranked if c.asset is not None and c.asset.source == "external"]
        internal = [c for c in ranked if c.asset is None or c.asset.source != "external"]
        want_ext = round(k * share)
        picked = take(external, want_ext, [])
        picked += take(internal, k - len(picked), picked)
        if len(picked) < k:  # internal ran short: more external rather than a short list
            rest = [c for c in external if c not in picked]
            picked += take(rest, k - len(picked), picked)
        return sorted(picked, key=lambda c: (-c.relevance, c.asset_id))

    # --- the non-personalised list ----------------------------------------------------------------
    def by_recency(self, request: MatchRequest, scope: Scope | None, limit: int | None = None) -> list[Candidate]:
        """Approved, unexpired content, newest first: the same list for every HCP (it uses nothing about
        them), mixed and explained like the personalised one. ``limit`` per source (internal, external);
        unset: enough for ``request.k`` after its exclusions."""
        limit = limit or recency_limit(request.k, len(request.exclude_asset_ids))
        first = aliased(Chunk)
        query = (select(*CARD_COLUMNS, first.id).outerjoin(first, and_(
            first.asset_id == Asset.id, first.version == Asset.current_version, first.ordinal == 0))
            .where(rep_visible(scope)))
        if request.only_language:
            query = query.where(Asset.language == request.language)
        out: list[Candidate] = []
        with self.db.session() as s:
            row: Any
            for source_is_external in (False, True):
                pool = query.where((Asset.source == "external") if source_is_external else (Asset.source != "external"))
                rows = s.execute(pool.order_by(Asset.published_at.desc().nulls_last(), Asset.id).limit(limit)).all()
                for rank, row in enumerate(rows):
                    out.append(Candidate(row.id, asset=AssetCard(*row[:-1]), first_chunk=row[-1],
                                         fused=1.0 / (self.config.tag_fusion.rrf_k + rank + 1)))
        out.sort(key=lambda c: (-c.relevance, c.asset_id))
        return out

    # --- response --------------------------------------------------------------------------------
    def _response(self, request: MatchRequest, picked: list[Candidate], taxonomy: Taxonomy, basis: Basis,
                  share: float | None, need: Need | None, scope: Scope | None = None,
                  partial: list[Candidate] | None = None, catalog: CatalogSnapshot | None = None) -> MatchResponse:
        """``catalog``: the snapshot the candidates came from (a personalised list's reasons and coverage read it;
        reading the current one again would cost a query)."""
        if basis != "need_tags":  # the personalised list's passages came with its SQL check
            self._load(picked, None, taxonomy, None)
        query_terms = set(self.terms(lexical_query(taxonomy, need))) if need else set()
        results = [r for r in (self.results.result(c, request, taxonomy, basis, query_terms, catalog) for c in picked)
                   if r is not None]  # a result with nothing to say for itself is not listed
        covered: Coverage | None = None
        offered: list[MatchResult] = []
        if need is not None and basis == "need_tags" and catalog is not None:
            kept = {r.asset_id for r in results}
            covered = coverage(need, taxonomy, catalog, request, scope, [c for c in picked if c.asset_id in kept])
            if covered.status != "full":
                offered = [r for r in (self.results.result(c, request, taxonomy, basis, query_terms, catalog)
                                       for c in partial or []) if r is not None]
        external = sum(1 for r in results if r.source == "external")
        return MatchResponse(personalized=basis == "need_tags", basis=basis, notice=notice(request.language, basis),
                             k=request.k, external_share_requested=share,
                             external_share=round(external / len(results), 4) if results else 0.0,
                             fusion=self.config.fusion(need_kind(need)).method if need is not None else "recency",
                             min_relevance=self.config.min_relevance, coverage=covered, results=results,
                             partial_results=offered)

def _sources(weight: Mapping[tuple[str, str], float], taxonomy: Taxonomy) -> list[tuple[str, str, tuple[str, str]]]:
    """Each (dimension, value) whose tag counts for a wanted pair: the pair itself, or a value that implies it
    (the product Cardiovex implies the cardiovascular area), with the wanted pair it counts for."""
    return [(sd, sv, (d, v)) for (d, v) in weight for sd, sv in [(d, v), *taxonomy.implied_by(d, v)]]


def _weights(need: Need, taxonomy: Taxonomy) -> dict[tuple[str, str], float]:
    """Each wanted (dimension, value) pair's weight: its dimension's times the need's own."""
    return {(d, v): taxonomy.dimension(d).weight * w for d, v, w in need.pairs()}


@lru_cache(maxsize=256)
def _load_query(dims: tuple[str, ...], all_chunks: bool, scope: Scope | None, today: date) -> Executable:
    """``Matcher._load``'s statement for the need's dimensions, built once per day and scope (building it took as
    long as running it); the assets (``ids``) and passages (``passages``) are bound per request."""
    which = Chunk.version == Asset.current_version if all_chunks else Chunk.id.in_(bindparam("passages",
                                                                                             expanding=True))
    query = (select(Asset.id, Chunk.id, Chunk.ordinal, Chunk.text, Chunk.page, Chunk.slide, Chunk.section, Chunk.kind,
                    *((AssetTag.dimension, AssetTag.value, AssetTag.confidence, AssetTag.status) if dims else ()))
             .select_from(Asset)
             .outerjoin(Chunk, and_(Chunk.asset_id == Asset.id, which)))
    if dims:
        query = query.outerjoin(AssetTag, and_(AssetTag.asset_id == Asset.id,
                                               AssetTag.version == Asset.current_version,
                                               AssetTag.status.in_(ACTIVE_TAG), AssetTag.dimension.in_(dims)))
    return query.where(Asset.id.in_(bindparam("ids", expanding=True)), rep_visible(scope, today))


def _reachable(order: np.ndarray, head: int, k: int, external: np.ndarray) -> np.ndarray:
    """Of a ranking (``order``), what folding and the mix can reach: the head (near-duplicates fold within it), and
    after it the first ``k`` of each source (the mix takes at most ``k`` of either)."""
    tail = order[head:]
    from_tail = external[tail]
    keep = np.zeros(len(tail), dtype=bool)
    keep[np.flatnonzero(from_tail)[:k]] = True
    keep[np.flatnonzero(~from_tail)[:k]] = True
    return np.concatenate([order[:head], tail[keep]])


def recency_limit(k: int, excluded: int) -> int:
    """How many of the newest assets per source the non-personalised list reads: room to mix ``k`` after
    ``excluded`` assets are dropped."""
    return max(5 * k, 50) + excluded


def _carried(taxonomy: Taxonomy, rows: Iterable[Any], *,
             keep: set[tuple[str, str]] | None = None, confident_only: bool = False,
             ) -> dict[str, dict[tuple[str, str], tuple[float, bool]]]:
    """Per asset, each (dimension, value) it carries, directly or by implication, with the best confidence
    (1 when a reviewer accepted it) and whether a reviewer did. ``confident_only``: tags at or above their
    dimension's review threshold only. ``keep``: only these pairs."""
    out: dict[str, dict[tuple[str, str], tuple[float, bool]]] = {}
    # thousands of rows name a few dozen (dimension, value) pairs: look each one's targets and threshold up once
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    thresholds: dict[str, float] = {}
    for asset_id, dim, value, confidence, status in rows:
        reviewed = status == "accepted"
        conf = 1.0 if reviewed else float(confidence)
        if confident_only and not reviewed:
            if dim not in thresholds:
                thresholds[dim] = taxonomy.dimension(dim).threshold
            if conf < thresholds[dim]:
                continue
        key = (dim, value)
        pairs = targets.get(key)
        if pairs is None:
            pairs = targets[key] = [p for p in [key, *taxonomy.implications(dim, value)] if keep is None or p in keep]
        seen = out.setdefault(asset_id, {})
        for pair in pairs:
            if conf > seen.get(pair, (-1.0, False))[0]:
                seen[pair] = (conf, reviewed)
    return out


def format_values(taxonomy: Taxonomy) -> dict[str, str]:
    """File format → the taxonomy's ``format`` value (pptx → slide_deck), when the taxonomy maps one."""
    dim = taxonomy.metadata_dimension("format")
    return {k: v.lower() for k, v in dim.from_metadata.values.items()} if dim and dim.from_metadata else {}
