"""A matching stage: the results for an HCP become suggestions. Each gets an id (what feedback names) and the
evidence behind it in words the rep reads ("opened 3 pieces on Safety in the last 30 days"). The evidence is for
the rep only: it is never part of the content's `reason`, and talking points never see it (handbook: a customer is
never told what was recorded about them)."""

from __future__ import annotations

import uuid

from service.engagement.profile import RECENT_DAYS, DynamicTag, Profile
from service.matching.schemas import MatchResponse, MatchResult

_TEXT = {
    "zh": {"notice": "个性化推荐：依据该医生的互动画像（以及您选择的需求标签）排序；推荐依据仅供您参考。",
           "recent": "近{days}天参与了{n}篇“{label}”相关内容",
           "earlier": "曾关注“{label}”相关内容（最近一次：{day}）",
           "asked": "代表指定的需求：{label}",
           "segment": "同类医生近期关注的内容"},
    "en": {"notice": "Personalised from this doctor's engagement (and any need-tags you chose); the evidence is for "
                     "you only.",
           "recent": "Engaged with {n} piece{s} on {label} in the last {days} days",
           "earlier": "Has engaged with {label} before (last on {day})",
           "asked": "The need the rep named: {label}",
           "segment": "What similar doctors engaged with recently"},
}


def new_id() -> str:
    return uuid.uuid4().hex


def evidence(result: MatchResult, profile: Profile | None, rep_dimensions: set[str], language: str) -> str:
    """The doctor's strongest profile tag this result carries, said with its evidence."""
    text = _TEXT.get(language, _TEXT["en"])
    carried = {(t.dimension, t.value): t.label for t in result.matched_tags}
    tags: list[DynamicTag] = [t for t in (profile.dynamic if profile else []) if (t.dimension, t.value) in carried
                              and t.dimension not in rep_dimensions]
    if tags:
        best = max(tags, key=lambda t: (t.evidence.recent_pieces > 0, t.score))
        label = carried[(best.dimension, best.value)]
        if best.evidence.recent_pieces:
            n = best.evidence.recent_pieces
            return text["recent"].format(n=n, s="" if n == 1 else "s", label=label, days=RECENT_DAYS)
        return text["earlier"].format(label=label, day=best.evidence.last_seen.date().isoformat())
    asked = [label for (dim, _), label in carried.items() if dim in rep_dimensions]
    if asked:
        return text["asked"].format(label=asked[0])
    return text["segment"]


def profile_notice(language: str) -> str:
    return _TEXT.get(language, _TEXT["en"])["notice"]


def as_suggestions(response: MatchResponse, hcp_id: str, profile: Profile | None, rep_dimensions: set[str],
                   language: str) -> tuple[MatchResponse, list[tuple[str, str, str]]]:
    """The response with ids and evidence on its results, and the (suggestion id, hcp id, asset id) rows to keep."""
    rows, results = [], []
    for result in response.results:
        sid = new_id()
        rows.append((sid, hcp_id, result.asset_id))
        results.append(result.model_copy(update={"suggestion_id": sid,
                                                  "evidence": evidence(result, profile, rep_dimensions, language)}))
    return response.model_copy(update={"results": results, "notice": profile_notice(language)}), rows
