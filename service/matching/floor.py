"""The floor, a stage between ranking and the response: what is good enough to list, whether anything serves the
need at all, and which candidates below the floor are offered as partial matches.

Calibrated relevance (``relevance.py``) makes these decisions read the same for every need: nothing below
``min_relevance`` is listed, and a need whose best candidate does not reach the served relevance of its kind lists
nothing (weak results beside a good one are leads; weak results alone are filler)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from service.core.taxonomy import Taxonomy
from service.matching.config import MatchConfig, NeedKind
from service.matching.need import Need
from service.matching.pool import Candidate, Pool


def served(pool: Pool, kind: NeedKind, config: MatchConfig) -> bool:
    """Whether anything serves the need: its best candidate reaches the served relevance of its kind."""
    bar = config.served_relevance if kind == "tags" else config.text_served_relevance
    return bool(len(pool)) and float(pool.relevance.max()) >= bar


def partial_matches(pool: Pool, excluded: Iterable[str], need: Need, taxonomy: Taxonomy, below: float,
                    count: int) -> list[Candidate]:
    """The closest candidates below ``below`` (1 when nothing is listed) that carry a wanted value of the need
    confidently and contradict none of its therapy areas or diseases (an anticoagulant deck is no partial match
    for a diabetologist), most relevant first."""
    if below <= 0 or not need.tags or not len(pool):
        return []
    pool = pool.without(excluded)
    thresholds = np.asarray([taxonomy.dimension(d).threshold for d in sorted(need.tags)])[:, None]
    fits = ((pool.dims >= thresholds).any(axis=0) & ~pool.contradicts & (pool.relevance < below)
            & (pool.relevance > 0))
    out = []
    for i in [i for i in np.lexsort((pool.rows, -pool.relevance)) if fits[i]][:count]:
        c = pool.candidate(int(i))
        c.alternates = []
        out.append(c)
    return out
