"""A matching stage: an HCP's profile becomes the need. The doctor's strongest interests (the profile's dynamic
tags), their static attributes that describe content too, and their preferred channel become need-tags; the
need-tags a rep typed are added and win in every dimension they name. What the doctor was sent within the cooldown
or dismissed is excluded without the CRM listing it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.core.taxonomy import Taxonomy
from service.engagement.profile import CHANNEL_DIMENSION, Profile
from service.matching.schemas import MAX_EXCLUDED, MatchRequest, NeedTags

MAX_DIMENSIONS = 3  # a rep names two or three needs; so does the profile (more and nothing covers them all)
MAX_VALUES = 2
MIN_SHARE = 0.2  # a value below this share of its dimension is noise, not an interest
ANCHOR = "therapy_area"  # kept whenever the profile has it: a need without its area drifts to other areas


def need_from_profile(profile: Profile, taxonomy: Taxonomy) -> dict[str, list[str]]:
    """The profile's need-tags: values, not weights. Doctors with the same strongest interests then share one
    need, and a panel plan retrieves once for all of them (weights by share made every doctor's need distinct:
    a 200-doctor panel cost 200 retrievals)."""
    strongest: dict[str, list[tuple[str, float]]] = {}
    # a doctor with no engagement yet: what the ranker predicts (their segment's reading)
    interests = [(t.dimension, t.value, t.score) for t in profile.dynamic] or \
        [(t.dimension, t.value, t.score) for t in profile.predicted if taxonomy.dimension(t.dimension).applies_to
         == "both"]
    for dim, value, score in sorted(interests, key=lambda t: -t[2]):
        if score >= MIN_SHARE and len(strongest.setdefault(dim, [])) < MAX_VALUES:
            strongest[dim].append((value, score))
    order = sorted(strongest, key=lambda d: (d != ANCHOR, -strongest[d][0][1] * taxonomy.dimension(d).weight, d))
    need = {d: sorted(v for v, _ in strongest[d]) for d in order[:MAX_DIMENSIONS] if strongest[d]}
    for dim_id, values in profile.static.items():  # the CRM's attributes (the panel plan reads potential_tier)
        if taxonomy.has_dimension(dim_id) and dim_id not in need:
            need[dim_id] = list(values)
    if profile.channel_preference:
        need[CHANNEL_DIMENSION] = [profile.channel_preference[0].channel]
    return need


def merged(need_tags: NeedTags, excluded: list[str], profile: Profile | None, resting: Iterable[str],
           taxonomy: Taxonomy) -> dict[str, Any]:
    """need_tags and exclude_asset_ids: the profile's need under the rep's need-tags, the resting assets added."""
    need: NeedTags = dict(need_from_profile(profile, taxonomy)) if profile and profile.personalised else {}
    need.update(need_tags)  # the rep's word wins in every dimension they name
    return {"need_tags": need,
            "exclude_asset_ids": list(dict.fromkeys([*excluded, *sorted(resting)]))[:MAX_EXCLUDED]}


def personalise(request: MatchRequest, profile: Profile | None, resting: Iterable[str],
                taxonomy: Taxonomy) -> MatchRequest:
    """The request with the profile's need under the rep's need-tags and the resting assets excluded."""
    return request.model_copy(update=merged(request.need_tags, request.exclude_asset_ids, profile, resting,
                                            taxonomy))
