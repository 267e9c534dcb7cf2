"""One line a rep can read for each match, and the personalisation notice, in the HCP's language.

Reasons speak about the content (its tags, its words, where the passage is), never about the HCP: the
rep may show them, and an HCP must not learn from them what was recorded about them.
"""

from __future__ import annotations

from datetime import date

from service.matching.cards import AssetCard
from service.matching.schemas import Basis, MatchedTag, Passage

_TEXT = {
    "zh": {
        "tags": "符合：{items}",
        "terms": "提及“{terms}”",
        "page": "见第{n}页",
        "slide": "见第{n}张幻灯片",
        "external": "外部资讯（{days}天前发布）",
        "external_undated": "外部资讯",
        "similar": "内容与需求语义相近（相关度{relevance:.2f}）",
        "recent": "近期发布的已批准内容",
        "join": "；",
        "list": "、",
        "notice": {
            "need_tags": "个性化推荐：依据所选需求标签与内容的匹配程度排序。",
            "opted_out": "非个性化推荐：该医生已选择不接收个性化推荐，本列表未使用任何与其相关的信息。",
            "not_requested": "非个性化推荐：本列表未使用任何与该医生相关的信息，对所有医生相同。",
        },
    },
    "en": {
        "tags": "Matches {items}",
        "terms": "mentions \u201c{terms}\u201d",
        "page": "see page {n}",
        "slide": "see slide {n}",
        "external": "External news ({days} days old)",
        "external_undated": "External news",
        "similar": "Close in meaning to the need (relevance {relevance:.2f})",
        "recent": "Recently published approved content",
        "join": "; ",
        "list": ", ",
        "notice": {
            "need_tags": "Personalised: ranked by how well the content matches the chosen need-tags.",
            "opted_out": "Not personalised: this HCP opted out of personalised recommendations; nothing "
                         "about them was used.",
            "not_requested": "Not personalised: nothing about this HCP was used; every HCP gets this list.",
        },
    },
}


def notice(language: str, basis: Basis) -> str:
    return str(_TEXT.get(language, _TEXT["en"])["notice"][basis])  # type: ignore[index]


def reason(language: str, basis: Basis, asset: AssetCard, matched: list[MatchedTag], terms: list[str],
           passage: Passage | None, today: date, *, similar: float | None = None) -> str | None:
    """``terms``: the distinctive words the passage shares with the need (``distinctive.py``); ``similar``: the
    relevance of a result the dense channel found (None: it did not). None: a personalised result with no reason
    to give, which is not listed."""
    t = _TEXT.get(language, _TEXT["en"])
    parts: list[str] = []
    if basis == "need_tags" and not matched and not terms and similar is None:
        return None
    if asset.source == "external":
        parts.append(str(t["external"]).format(days=(today - asset.published_at).days) if asset.published_at
                     else str(t["external_undated"]))
    if basis != "need_tags":
        parts.append(str(t["recent"]))
    elif matched:
        parts.append(str(t["tags"]).format(items=str(t["list"]).join(m.label for m in matched[:3])))
    if basis == "need_tags" and terms:
        parts.append(str(t["terms"]).format(terms=str(t["list"]).join(terms[:3])))
    if basis == "need_tags" and not matched and not terms:
        parts.append(str(t["similar"]).format(relevance=similar))
    if passage is not None and passage.page:
        parts.append(str(t["page"]).format(n=passage.page))
    elif passage is not None and passage.slide:
        parts.append(str(t["slide"]).format(n=passage.slide))
    return str(t["join"]).join(parts)
