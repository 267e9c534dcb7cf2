"""Tagging quality on the project's own bilingual gold set: per-dimension macro-F1 floors.

Floors are the values measured on this set (embedding zero-shot; learned heads by 5-fold
cross-validation), less three points. Raise them when the engine improves; never lower them to
make a change pass.
"""

from pathlib import Path

import pytest

from eval.datasets import load_gold
from eval.tagging import cross_validate, prepare, run
from service.core.taxonomy import load_taxonomy
from service.tagging.engine import TaggingEngine

ROOT = Path(__file__).resolve().parent.parent

# measured: embedding zero-shot (no LLM), with format/source read from file metadata
EMBEDDING_FLOORS = {
    "therapy_area": 0.782, "disease": 0.885, "product": 0.929, "content_type": 0.637, "format": 1.0,
    "evidence_level": 0.317, "audience": 0.135, "value_driver": 0.672, "treatment_concept": 0.259,
    "customer_need": 0.303, "key_message": 0.531, "adoption_stage": 0.185, "source": 1.0,
}
# measured: learned heads + calibration fitted on out-of-fold signals, 5-fold cross-validation over the 36
# gold assets (mean 0.645, up from 0.501 with the hand-set blend; product and adoption_stage lost a little)
LEARNED_CV_FLOORS = {
    "therapy_area": 0.931, "disease": 0.921, "product": 0.891, "content_type": 0.567, "format": 1.0,
    "evidence_level": 0.320, "audience": 0.692, "value_driver": 0.709, "treatment_concept": 0.343,
    "customer_need": 0.323, "key_message": 0.519, "adoption_stage": 0.157, "source": 1.0,
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


def test_learned_heads_reach_their_cross_validated_floor_on_every_dimension(prepared, embedder):
    taxonomy, items = prepared
    report = cross_validate(taxonomy, lambda: TaggingEngine(taxonomy, embedder), items, folds=5)
    for dim, floor in LEARNED_CV_FLOORS.items():
        assert report["dimensions"][dim]["macro_f1"] >= floor - SLACK, (dim, report["dimensions"][dim]["macro_f1"])
