"""What of a need the listed results cover, and for each part they do not, why: the key's scope, the language, no
content at all, or content that covers it but fits the rest of the need too poorly to list.

A rep told "nothing in your products covers metabolism" knows to look elsewhere; a rep given three anticoagulant
decks for a diabetologist stops trusting the list. The causes are read from the catalog (what carries each wanted
value confidently, visible with and without the key's scope and the language filter), so they name the actual
reason, not a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from service.core.taxonomy import Taxonomy
from service.matching.catalog import CatalogSnapshot
from service.matching.conflicts import implying
from service.matching.need import Need, value_label
from service.matching.pool import Candidate
from service.matching.schemas import Coverage, MatchRequest, NeedValue, Uncovered
from service.store.visibility import Scope

_TEXT = {
    "zh": {"scope": "您负责的产品范围内没有涵盖{items}的内容", "language": "没有{language}内容涵盖{items}",
           "content": "没有已批准的内容涵盖{items}", "combination": "涵盖{items}的内容与需求的其他部分不符",
           "text": "没有与该需求足够相关的已批准内容", "text_scope": "您负责的产品范围内没有与该需求足够相关的内容",
           "covered": "已涵盖：{items}", "list": "、", "join": "；",
           "together": "没有同时涵盖{items}的内容", "words": "需求原文", "end": "。", "quote": "“{}”",
           "languages": {"zh": "中文", "en": "英文"}},
    "en": {"scope": "Nothing in your products covers {items}", "language": "No {language} content covers {items}",
           "content": "No approved content covers {items}",
           "combination": "Content on {items} does not fit the rest of the need",
           "text": "No approved content is close enough to this need",
           "text_scope": "Nothing within your products is close enough to this need", "covered": "Covers {items}",
           "list": ", ",
           "together": "No content covers {items} together", "words": "the need in words", "join": "; ", "end": ".",
           "quote": "{}",
           "languages": {"zh": "Chinese", "en": "English"}},
}
CAUSES = ("scope", "language", "content", "combination")


def coverage(need: Need, taxonomy: Taxonomy, catalog: CatalogSnapshot, request: MatchRequest, scope: Scope | None,
             listed: Sequence[Candidate]) -> Coverage:
    """The coverage of ``need`` by ``listed`` (loaded: their ``carried`` tags are SQL's)."""
    language = request.language
    carried = {(d, v) for c in listed for d, v, conf, reviewed in c.carried
               if reviewed or conf >= taxonomy.dimension(d).threshold}
    covered, uncovered = [], []
    for d, v, _ in need.pairs():
        label = value_label(taxonomy, d, v, language)
        if (d, v) in carried:
            covered.append(NeedValue(dimension=d, value=v, label=label))
        else:
            uncovered.append(Uncovered(dimension=d, value=v, label=label,
                                       cause=_cause(d, v, taxonomy, catalog, request, scope)))
    if not need.tags and not listed:
        # for words, no tag says whether content outside the scope would serve them: the cause stays "content";
        # the words themselves are not echoed back (the caller has them, and a response should not repeat input)
        uncovered.append(Uncovered(dimension=None, value=None, label=str(_TEXT.get(language, _TEXT["en"])["words"]),
                                   cause="content"))
    status = "none" if not listed else "partial" if uncovered else "full"
    return Coverage(status=status, covered=covered, uncovered=uncovered,
                    message=message(language, status, covered, uncovered, bool(need.tags), scope is not None))


def carriers(catalog: CatalogSnapshot, taxonomy: Taxonomy, dimension: str, value: str) -> np.ndarray:
    """Rows carrying (dimension, value) confidently, directly or through a value that implies it."""
    mask = catalog.confident_values(dimension, implying(taxonomy, dimension), taxonomy).get(value)
    return mask if mask is not None else np.zeros(len(catalog.ids), dtype=bool)


def _cause(dimension: str, value: str, taxonomy: Taxonomy, catalog: CatalogSnapshot, request: MatchRequest,
           scope: Scope | None) -> str:
    rows = carriers(catalog, taxonomy, dimension, value)
    language = request.language if request.only_language else None
    if (rows & catalog.visible(language, scope)).any():
        return "combination"
    if scope is not None and (rows & catalog.visible(language, None)).any():
        return "scope"
    if language is not None and (rows & catalog.visible(None, scope)).any():
        return "language"
    return "content"


def message(language: str, status: str, covered: list[NeedValue], uncovered: list[Uncovered],
            tagged: bool, scoped: bool = False) -> str | None:
    """One sentence per cause, in the rep's language; None when the need is fully served."""
    if status == "full":
        return None
    t = _TEXT.get(language, _TEXT["en"])
    if not tagged:
        return str(t["text_scope" if scoped else "text"]) + str(t["end"])
    if status == "none" and all(u.cause == "combination" for u in uncovered):
        return str(t["together"]).format(items=_items(t, [u.label for u in uncovered])) + str(t["end"])
    parts = []
    if status == "partial" and covered:
        parts.append(str(t["covered"]).format(items=_items(t, [c.label for c in covered])))
    for cause in CAUSES:
        labels = [u.label for u in uncovered if u.cause == cause]
        if labels:
            languages: dict[str, str] = t["languages"]  # type: ignore[assignment]
            parts.append(str(t[cause]).format(items=_items(t, labels), language=languages.get(language, language)))
    if language != "zh":  # one sentence: the parts after the first start in lower case
        parts = parts[:1] + [p[:1].lower() + p[1:] for p in parts[1:]]
    return str(t["join"]).join(parts) + str(t["end"])


def _items(t: Mapping[str, object], labels: list[str]) -> str:
    return str(t["list"]).join(str(t["quote"]).format(label) for label in labels[:4])
