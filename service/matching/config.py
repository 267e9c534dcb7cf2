"""What matching needs from the settings, as one small typed value: how channels fuse (fitted per need kind),
how many candidates each channel reads, and how the pick is diversified and boosted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from service.matching.distinctive import GenericTerms, load_generic_terms
from service.matching.relevance import NeedKind, RelevanceModel, load_model
from service.settings import Settings

Channel = Literal["dense", "lexical", "tags"]
Diversity = Literal["duplicates", "mmr", "none"]


@dataclass(frozen=True)
class Fusion:
    """How the channels combine: reciprocal rank with constant ``rrf_k``, or a weighted sum of normalised scores."""

    weights: Mapping[str, float]
    rrf_k: int = 60
    method: Literal["rrf", "weighted"] = "rrf"


@dataclass(frozen=True)
class MatchConfig:
    """Built from the settings by ``MatchConfig.of`` (no defaults of its own, so the two cannot drift apart)."""

    tag_fusion: Fusion  # for needs with tags
    text_fusion: Fusion  # for free-text-only needs
    candidates: int  # chunks (dense, lexical) or assets (tags) each channel reads
    external_share: float  # the default share of external content
    diversity: Diversity
    duplicate_similarity: float  # passage cosine at which two results are near-duplicates
    mmr_lambda: float
    news_half_life_days: float
    format_boost: float  # for a preferred format
    context_sentences: int  # the most source sentences a talking-point draft is given
    relevance: RelevanceModel  # candidate → the probability that it serves the need
    min_relevance: float  # the floor: below it a result is not listed
    served_relevance: float  # a need with need-tags whose best result is below it lists nothing
    text_served_relevance: float  # the same for a free-text need
    generic_terms: GenericTerms  # words a reason never rests on
    partial_results: int = 3  # the closest partial matches offered when a need is not fully served

    def fusion(self, kind: NeedKind) -> Fusion:
        """The fusion fitted for a need of ``kind``."""
        return self.text_fusion if kind == "text" else self.tag_fusion

    @classmethod
    def of(cls, settings: Settings) -> MatchConfig:
        return cls(tag_fusion=Fusion(dict(settings.match_channel_weights), settings.match_rrf_k,
                                     settings.match_fusion),
                   text_fusion=Fusion(dict(settings.match_text_channel_weights), settings.match_text_rrf_k,
                                      settings.match_text_fusion),
                   candidates=settings.match_candidates, external_share=settings.match_external_share,
                   diversity=settings.match_diversity, duplicate_similarity=settings.match_duplicate_similarity,
                   mmr_lambda=settings.match_mmr_lambda, news_half_life_days=settings.match_news_half_life_days,
                   format_boost=settings.match_format_boost,
                   context_sentences=settings.talking_points_context_sentences,
                   relevance=load_model(settings.match_relevance_model), min_relevance=settings.match_min_relevance,
                   served_relevance=settings.match_served_relevance,
                   text_served_relevance=settings.match_text_served_relevance,
                   generic_terms=load_generic_terms(settings.match_generic_terms_path))
