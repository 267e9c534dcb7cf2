"""The context head: what an asset's metadata facts (its format, its source) say about its other dimensions,
counted from reviewed examples (a news-feed item is news before a word of it is read)."""

from __future__ import annotations

import math
from pathlib import Path

from service.core.taxonomy import load_taxonomy
from service.tagging.context import ContextHead, facts_from_metadata, facts_of

ROOT = Path(__file__).resolve().parent.parent
PHARMA = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")
DIMS = [(d.id, d.value_ids) for d in PHARMA.dimensions]


def test_metadata_facts_follow_the_taxonomy_rules_and_labels_stand_in_for_missing_metadata():
    assert facts_from_metadata(PHARMA, {"format": "pptx", "source": "internal", "owner": "x"}) == \
        {"format": "slide_deck", "source": "internal"}
    assert facts_from_metadata(PHARMA, {"format": "exe"}) == {}, "a value no rule names is no fact"
    assert facts_of(PHARMA, {}, {"format": {"news_item"}, "content_type": {"news"}}) == {"format": "news_item"}


def test_the_head_gives_the_smoothed_likelihood_ratio_worked_by_hand():
    facts = [{"format": "news_item"}, {"format": "news_item"}, {"format": "document"}, {"format": "document"}]
    labels = [{"content_type": {"news"}}, {"content_type": {"news"}},
              {"content_type": {"clinical_study"}}, {"content_type": {"clinical_study"}}]
    head = ContextHead.fit(PHARMA, facts, labels)
    [news_item], [document], [nothing] = (head.predict_many([f], DIMS) for f in
                                          ({"format": "news_item"}, {"format": "document"}, {}))
    # format has 5 values; P(news_item | news) = (2+1)/(2+5), P(news_item | not news) = (0+1)/(2+5)
    assert math.isclose(news_item[("content_type", "news")], math.log(3), rel_tol=1e-9)
    assert math.isclose(document[("content_type", "news")], -math.log(3), rel_tol=1e-9)
    assert news_item[("content_type", "news")] > news_item[("content_type", "clinical_study")]
    # a value no example carried: only the smoothing speaks, mildly (news items were seen, none with it)
    assert math.isclose(news_item[("content_type", "patient_case")], math.log((0 + 1) / 5) - math.log((2 + 1) / 9))
    assert nothing == {}, "an asset without facts gets no context signal"
    assert not any(d == "format" for d, _ in news_item), "a fact dimension is read, never predicted"
