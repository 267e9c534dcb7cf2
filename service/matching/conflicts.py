"""Where a candidate contradicts the need: for each need dimension, content confidently tagged with other values of
it and none of the wanted ones (an oncology deck for a cardiologist's need, a Cardiovex price sheet for a Glucora
price question). Untagged content contradicts nothing.

Two stages read it: the mismatch penalty (dimensions whose taxonomy entry has a ``mismatch_penalty``, such as the
therapy area, score such content down) and the relevance model (the share of the need's dimensions contradicted).
"""

from __future__ import annotations

import numpy as np

from service.core.taxonomy import Taxonomy
from service.matching.catalog import CatalogSnapshot
from service.matching.need import Need


def conflicts(rows: np.ndarray, wanted_values: dict[str, set[str]], taxonomy: Taxonomy,
              catalog: CatalogSnapshot) -> np.ndarray:
    """Wanted dimensions (sorted) x ``rows``: True where the row carries another value of the dimension confidently
    and no wanted one, directly or through a value that implies it (a product its therapy area)."""
    dims = sorted(wanted_values)
    out = np.zeros((len(dims), len(rows)), dtype=bool)
    if not len(rows):
        return out
    for i, dim in enumerate(dims):
        wanted = wanted_values[dim]
        reads = implying(taxonomy, dim)
        tagged = np.zeros(len(rows), dtype=bool)
        fits = np.zeros(len(rows), dtype=bool)
        for value, mask in catalog.confident_values(dim, reads, taxonomy).items():
            tagged |= mask[rows]
            if value in wanted:
                fits |= mask[rows]
        out[i] = tagged & ~fits
    return out


def implying(taxonomy: Taxonomy, dimension: str) -> list[str]:
    """The dimensions whose tags can show a value of ``dimension``: itself, and those with values implying one."""
    return sorted({dimension} | {d.id for d in taxonomy.dimensions for v in d.values if dimension in v.implies})


def wanted(need: Need) -> dict[str, set[str]]:
    return {d: set(values) for d, values in need.tags.items()}


def implied_penalised(need: Need, taxonomy: Taxonomy) -> dict[str, set[str]]:
    """The penalised dimensions the need names only by implication (a need for Glucora is a need in metabolism),
    with the values implied."""
    out: dict[str, set[str]] = {}
    for d, v, _ in need.pairs():
        for target_dim, target in taxonomy.implications(d, v):
            if target_dim not in need.tags and taxonomy.dimension(target_dim).mismatch_penalty < 1:
                out.setdefault(target_dim, set()).add(target)
    return out


def contradicts(rows: np.ndarray, need: Need, taxonomy: Taxonomy, catalog: CatalogSnapshot,
                own: np.ndarray) -> np.ndarray:
    """Per row, whether it contradicts a penalised dimension of the need, named (``own``: ``conflicts`` of the
    need's dimensions) or implied (a Cardiovex deck for a Glucora need contradicts its therapy area)."""
    penalised = [i for i, d in enumerate(sorted(need.tags)) if taxonomy.dimension(d).mismatch_penalty < 1]
    out = np.asarray(own[penalised].any(axis=0)) if penalised else np.zeros(len(rows), dtype=bool)
    implied = implied_penalised(need, taxonomy)
    if implied:
        out = out | conflicts(rows, implied, taxonomy, catalog).any(axis=0)
    return out


def mismatch_penalty(conflict: np.ndarray, need: Need, taxonomy: Taxonomy) -> np.ndarray:
    """Per row, the product of the penalties of the dimensions it contradicts that carry one (1 = none)."""
    out = np.ones(conflict.shape[1])
    for i, dim in enumerate(sorted(need.tags)):
        penalty = taxonomy.dimension(dim).mismatch_penalty
        if penalty < 1:
            out[conflict[i]] *= penalty
    return out
