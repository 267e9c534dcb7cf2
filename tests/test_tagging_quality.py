"""Tagging quality on the project's own bilingual gold set: per-dimension macro-F1 floors.

Floors are the values measured on this set (embedding zero-shot; learned heads by 5-fold
cross-validation), less three points. Raise them when the engine improves; never lower them to
make a change pass.
"""

from pathlib import Path

import pytest

from eval.datasets import load_gold
from eval.tagging import cross_validate_baseline, prepare, report_run, run, score_dimensions, tag_cross_validated
from service.core.taxonomy import load_taxonomy
from service.reports.build import build_report
from service.tagging.engine import TaggingEngine

ROOT = Path(__file__).resolve().parent.parent

# measured: embedding zero-shot (no LLM), with format/source read from file metadata and tags held to the
# taxonomy's implications (a confident product brings its therapy area: therapy_area 0.782 -> 0.938)
EMBEDDING_FLOORS = {
    "therapy_area": 0.938, "disease": 0.891, "product": 0.933, "content_type": 0.637, "format": 1.0,
    "evidence_level": 0.339, "audience": 0.135, "value_driver": 0.672, "treatment_concept": 0.259,
    "customer_need": 0.303, "key_message": 0.565, "adoption_stage": 0.185, "source": 1.0,
}
# measured: both learned heads (embedding, TF-IDF lexical), the neighbour vote and the context head (what format
# and source say of the single-valued dimensions), stacked by the calibrator on out-of-fold signals (the compact
# feature set below 50 examples), tags held to the taxonomy's implications (a key message needs its product, a
# patient case is case-report evidence), 5-fold cross-validation over the 36 gold assets: mean 0.709, up from
# 0.690 without the implications (key_message 0.624 -> 0.689, evidence_level 0.393 -> 0.480; product 0.890 ->
# 0.958 once class names left the product synonyms)
LEARNED_CV_FLOORS = {
    "therapy_area": 0.931, "disease": 0.951, "product": 0.958, "content_type": 0.798, "format": 1.0,
    "evidence_level": 0.480, "audience": 0.635, "value_driver": 0.732, "treatment_concept": 0.385,
    "customer_need": 0.500, "key_message": 0.689, "adoption_stage": 0.151, "source": 1.0,
}
SLACK = 0.03


@pytest.fixture(scope="module")
def prepared(embedder):
    taxonomy = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")
    items = load_gold(ROOT / "samples" / "gold.yaml", taxonomy)
    assert len(items) == 36
    return taxonomy, prepare(items, embedder)


def test_embedding_zero_shot_reaches_its_floor_on_every_dimension(prepared, embedder):
    taxonomy, items = prepared
    report = run(TaggingEngine(taxonomy, embedder), items, "embedding")
    for dim, floor in EMBEDDING_FLOORS.items():
        assert report["dimensions"][dim]["macro_f1"] >= floor - SLACK, (dim, report["dimensions"][dim]["macro_f1"])


@pytest.fixture(scope="module")
def learned_cv(prepared, embedder):
    taxonomy, items = prepared
    pooled, results = tag_cross_validated(TaggingEngine(taxonomy, embedder), items, folds=5)
    return pooled, results


def test_learned_heads_reach_their_cross_validated_floor_on_every_dimension(prepared, learned_cv):
    taxonomy, _ = prepared
    pooled, results = learned_cv
    dimensions = score_dimensions(taxonomy, pooled, [{d.id: r.values(d.id) for d in taxonomy.dimensions}
                                                     for r in results])
    for dim, floor in LEARNED_CV_FLOORS.items():
        assert dimensions[dim]["macro_f1"] >= floor - SLACK, (dim, dimensions[dim]["macro_f1"])


def test_learned_beats_the_tfidf_baseline_on_the_same_folds_and_its_confidences_are_calibrated(prepared, learned_cv):
    taxonomy, items = prepared
    pooled, results = learned_cv
    report = build_report(taxonomy, report_run(taxonomy, pooled, results, mode="learned", source="gold.yaml",
                                               label="learned"))
    baseline = cross_validate_baseline(taxonomy, items, folds=5)
    assert baseline["items"] == len(pooled) == 36
    assert report.overall.macro_f1_mean >= baseline["macro_f1_mean"] + 0.02, (report.overall.macro_f1_mean,
                                                                            baseline["macro_f1_mean"])
    assert report.reliability.ece <= 0.05, report.reliability.ece
    assert report.overall.macro_f1_mean >= 0.70, report.overall.macro_f1_mean
