"""An HCP's need, checked against the taxonomy and rendered as the queries each retrieval channel runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.core.taxonomy import Taxonomy
from service.matching.schemas import MAX_VALUE_WEIGHT, NeedTags


class NeedError(ValueError):
    """A need the taxonomy does not know; ``code`` and ``details`` go to the API's 422."""

    def __init__(self, code: str, message: str, details: Any | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


@dataclass
class Need:
    """Validated need-tags (dimension → value → weight) and free text. ``profile``: the tags of dimensions
    that describe only the HCP (``applies_to: hcp``: channel preference, potential tier); no content carries
    them, so retrieval never reads them; a panel plan does (channel, priority)."""

    tags: dict[str, dict[str, float]] = field(default_factory=dict)
    text: str = ""
    profile: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.tags and not self.text.strip()

    def pairs(self) -> list[tuple[str, str, float]]:
        return [(d, v, w) for d, values in self.tags.items() for v, w in values.items()]


def parse_need(taxonomy: Taxonomy, raw: NeedTags, text: str | None) -> Need:
    """Check every dimension applies to HCPs and every value exists; refuse with the allowed ones otherwise."""
    allowed_dims = {d.id: d for d in taxonomy.for_hcp()}
    tags: dict[str, dict[str, float]] = {}
    for dim_id, values in raw.items():
        dim = allowed_dims.get(dim_id)
        if dim is None:
            raise NeedError("unknown_dimension", f"{dim_id!r} is not a need dimension of taxonomy {taxonomy.key}.",
                            {"dimension": dim_id, "allowed": sorted(allowed_dims)})
        weighted = values if isinstance(values, dict) else {v: 1.0 for v in values}
        for value, weight in weighted.items():
            if dim.value(value) is None:
                raise NeedError("unknown_value", f"{value!r} is not a value of {dim_id!r}.",
                                {"dimension": dim_id, "value": value, "allowed": dim.value_ids})
            if not 0 <= weight <= MAX_VALUE_WEIGHT:
                raise NeedError("invalid_weight", f"The weight of {dim_id}:{value} must be 0–{MAX_VALUE_WEIGHT:g}.",
                                {"dimension": dim_id, "value": value, "weight": weight})
        if weighted:
            tags[dim_id] = {v: float(w) for v, w in weighted.items() if w > 0}
    hcp_only = {d.id for d in taxonomy.dimensions if d.applies_to == "hcp"}
    return Need(tags={d: v for d, v in tags.items() if v and d not in hcp_only}, text=(text or "").strip(),
                profile={d: v for d, v in tags.items() if v and d in hcp_only})


def dense_query(taxonomy: Taxonomy, need: Need, language: str) -> str:
    """What the need is embedded as: the free text first (the HCP's own words), then each wanted value's
    label and definition, heaviest dimension first (e.5 reads 512 tokens at most)."""
    lines = [need.text] if need.text else []
    ranked = sorted(need.pairs(), key=lambda p: -taxonomy.dimension(p[0]).weight * p[2])
    for dim_id, value_id, _ in ranked:
        value = taxonomy.dimension(dim_id).value(value_id)
        assert value is not None  # parse_need checked it
        lines.append(f"{value.label.get(language)}: {value.definition.get(language)}")
    return "\n".join(lines)


def lexical_query(taxonomy: Taxonomy, need: Need) -> str:
    """The words BM25 looks for: each value's labels and synonyms in both languages (content in either
    language should match), plus the free text."""
    words: list[str] = [need.text] if need.text else []
    for dim_id, value_id, _ in need.pairs():
        value = taxonomy.dimension(dim_id).value(value_id)
        assert value is not None
        words += value.label.all() + value.synonyms.all()
    return " ".join(words)


def value_label(taxonomy: Taxonomy, dimension: str, value: str, language: str) -> str:
    """A need value's label in ``language``; the id itself for a value the taxonomy has since dropped."""
    return taxonomy.value_label(dimension, value, language)
