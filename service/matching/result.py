"""One listed item as the response shows it: card, passage, matched tags, relevance in words, and a reason that is
a reason (a tag of the need, a distinctive shared word, or closeness in meaning with the relevance), or nothing
when a personalised result has none to give."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from service.core.taxonomy import Taxonomy
from service.matching.catalog import CatalogSnapshot
from service.matching.config import MatchConfig
from service.matching.distinctive import Distinctive
from service.matching.need import value_label
from service.matching.pool import Candidate
from service.matching.reasons import reason
from service.matching.schemas import Alternate, Basis, MatchedTag, MatchRequest, MatchResult, Passage, ScoreParts

PASSAGE_CHARS = 600


class ResultWriter:
    def __init__(self, config: MatchConfig, terms: Callable[[str], Sequence[str]], distinctive: Distinctive) -> None:
        self.config, self.terms, self.distinctive = config, terms, distinctive

    def result(self, c: Candidate, request: MatchRequest, taxonomy: Taxonomy, basis: Basis,
                query_terms: set[str], catalog: CatalogSnapshot | None) -> MatchResult | None:
        """One listed item, or None when a personalised one has no reason to give (no tag of the need, no
        distinctive shared word, not found by meaning)."""
        asset = c.asset
        assert asset is not None
        chunk = next((ch for ch in c.chunks if ch.id == c.best_chunk), None)
        passage = Passage(chunk_id=chunk.id, text=_trim(chunk.text), page=chunk.page,
                          slide=chunk.slide) if chunk else None
        terms: list[str] = []
        if chunk is not None and query_terms and catalog is not None:
            shared = [t for t in self.terms(chunk.text) if t in query_terms]
            terms = self.distinctive.words(shared, asset.language, catalog.key, catalog.sample_chunks) if shared else []
        matched = [MatchedTag(dimension=d, value=v, label=value_label(taxonomy, d, v, request.language),
                              confidence=round(conf, 4), reviewed=reviewed) for d, v, conf, reviewed in c.carried]
        personal = basis == "need_tags"
        said = reason(request.language, basis, asset, matched, terms, passage, date.today(),
                      similar=c.calibrated if personal and c.dense is not None else None)
        if said is None:
            return None
        return MatchResult(
            asset_id=asset.id, title=asset.title, source=asset.source, format=asset.format,
            language=asset.language, product=asset.product, published=asset.published_at,
            valid_until=asset.valid_until, score=round(c.relevance, 6),
            relevance=round(c.calibrated, 4) if personal else 0.0,
            strength=self.config.relevance.strength(c.calibrated) if personal else None,
            score_parts=ScoreParts(dense=_round(c.dense), lexical=_round(c.lexical), tags=round(c.tags, 4),
                                   fused=round(c.fused, 6), freshness=round(c.freshness, 4),
                                   format=round(c.format_boost, 4), mismatch=round(c.mismatch, 4)),
            matched_tags=matched, passage=passage,
            alternates=[Alternate(asset_id=a.asset_id, title=a.asset.title, language=a.asset.language,
                                  format=a.asset.format) for a in c.alternates if a.asset is not None],
            reason=said)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _trim(text: str) -> str:
    return text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rstrip() + "…"
