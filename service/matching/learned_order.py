"""A matching stage: the learned ranker orders an HCP's results. The matcher's relevance still decides what is
listed at all (the floor) and its strength band stays first (a strong match above a partial one, whatever the
doctor's habits); within a band, what this doctor is most likely to engage with comes first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from service.matching.schemas import MatchResponse, MatchResult

_BAND = {"strong": 0, "partial": 1, "weak": 2, None: 3}
Result = TypeVar("Result", bound=MatchResult)


def ordered(results: Sequence[Result], scores: Mapping[str, float] | None) -> list[Result]:
    """The results by (band, learned score); the matcher's order where no score is known."""
    if scores is None:
        return list(results)
    floor = min(scores.values(), default=0.0) - 1.0
    ranked = sorted(enumerate(results), key=lambda nr: (_BAND[nr[1].strength], -scores.get(nr[1].asset_id, floor),
                                                        nr[0]))
    return [r for _, r in ranked]


def learned_order(response: MatchResponse, scores: Mapping[str, float] | None, k: int) -> MatchResponse:
    """The response's results ordered and cut to `k`."""
    return response.model_copy(update={"results": ordered(response.results, scores)[:k]})
