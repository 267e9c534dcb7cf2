"""Tags held to the taxonomy's implications (``service.tagging.coherence``), on hand-worked probabilities over the
shipped taxonomy: a key message implies its product, a product or a disease its therapy area."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from service.core.taxonomy import Dimension, load_taxonomy
from service.tagging.coherence import Coherence

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def coherence() -> Coherence:
    return Coherence(load_taxonomy(ROOT / "taxonomy" / "pharma.yaml"))


def at_half(dim: Dimension, probs: dict[str, float]) -> list[str]:
    ranked = sorted(probs, key=lambda v: -probs[v])
    return [v for v in (ranked[:1] if dim.cardinality == "single" else ranked) if probs[v] >= 0.5]


def probs(**dims: dict[str, float]) -> dict[str, dict[str, float]]:
    return {d: dict(v) for d, v in dims.items()}


def test_a_product_brings_its_therapy_area_when_that_dimension_is_silent(coherence):
    # hand-set prior: oncology at 0.06 only means no oncology word was found
    p = probs(product={"oncotinib": 0.85, "cardiovex": 0.05}, therapy_area={"oncology": 0.06, "cardiovascular": 0.1})
    chosen = coherence.resolve(p, at_half, fixed={})
    assert chosen == {"product": ["oncotinib"], "therapy_area": ["oncology"]}
    assert p["therapy_area"]["oncology"] == 0.85  # as probable as what argues for it


def test_a_calibrated_no_outweighs_a_weaker_yes(coherence):
    # calibrated: "oncology does not hold" at 1 - 0.06 = 0.94 beats "Oncotinib holds" at 0.85
    p = probs(product={"oncotinib": 0.85}, therapy_area={"oncology": 0.06})
    chosen = coherence.resolve(p, at_half, fixed={}, calibrated={"therapy_area"})
    assert chosen == {"product": [], "therapy_area": []}
    assert p["product"]["oncotinib"] == 0.06  # never more probable than what it implies


def test_two_values_arguing_for_one_area_count_together(coherence):
    # the area tags cardiovascular: a contradiction. Alone, Oncotinib (0.8) loses to "not oncology" (0.9);
    # with NSCLC (0.7) beside it, "one of them holds" is 1 - 0.2 * 0.3 = 0.94 and wins
    alone = probs(product={"oncotinib": 0.8}, disease={"nsclc": 0.2},
                  therapy_area={"oncology": 0.1, "cardiovascular": 0.9})
    assert coherence.resolve(alone, at_half, fixed={})["product"] == []
    both = probs(product={"oncotinib": 0.8}, disease={"nsclc": 0.7},
                 therapy_area={"oncology": 0.1, "cardiovascular": 0.9})
    chosen = coherence.resolve(both, at_half, fixed={})
    assert chosen["product"] == ["oncotinib"] and chosen["disease"] == ["nsclc"]
    assert set(chosen["therapy_area"]) == {"oncology", "cardiovascular"} and both["therapy_area"]["oncology"] == 0.8


def test_the_strongest_tag_settles_first_so_a_weak_one_cannot_claim_the_area(coherence):
    # a dosing page: Oncotinib 0.85; a stray diabetes 0.51. Taken in dimension order, the diabetes tag would claim
    # metabolism first and Oncotinib would then lose to that contradiction
    p = probs(therapy_area={"oncology": 0.06, "metabolism": 0.04}, disease={"type2_diabetes": 0.51, "nsclc": 0.08},
              product={"oncotinib": 0.85})
    chosen = coherence.resolve(p, at_half, fixed={})
    assert chosen == {"therapy_area": ["oncology"], "disease": [], "product": ["oncotinib"]}


def test_a_key_message_of_another_product_is_dropped_and_never_offered(coherence):
    p = probs(product={"cardiovex": 0.95, "oncotinib": 0.03},
              key_message={"cardiovex_low_bleeding": 0.7, "oncotinib_cns_activity": 0.6})
    chosen = coherence.resolve(p, at_half, fixed={}, calibrated={"product"})
    assert chosen["key_message"] == ["cardiovex_low_bleeding"] and p["key_message"]["oncotinib_cns_activity"] == 0.03
    assert coherence.ruled_out("key_message", "oncotinib_cns_activity", chosen, fixed={})
    assert not coherence.ruled_out("key_message", "cardiovex_once_daily", chosen, fixed={})
    # with no product tagged at all nothing is ruled out: silence contradicts nothing
    assert not coherence.ruled_out("key_message", "oncotinib_cns_activity", {"product": []}, fixed={})


def test_a_single_valued_dimension_whose_best_value_is_dropped_tags_its_next(coherence):
    # a patient case is case-report evidence; the evidence dimension is calibrated and sure it is a trial
    p = probs(content_type={"patient_case": 0.6, "clinical_study": 0.55},
              evidence_level={"randomized_trial": 0.9, "case_report": 0.05})
    chosen = coherence.resolve(p, at_half, fixed={}, calibrated={"evidence_level"})
    assert chosen == {"content_type": ["clinical_study"], "evidence_level": ["randomized_trial"]}


@pytest.mark.parametrize("name", ["hoc.yaml", "chip-ctc.yaml"])
def test_a_taxonomy_without_implications_keeps_the_policys_own_tags_and_probabilities(name):
    # the public benchmarks' label sets have no implications: their scores cannot move with coherence
    taxonomy = load_taxonomy(ROOT / "taxonomy" / name)
    coherence = Coherence(taxonomy)
    rng = random.Random(7)
    for _ in range(50):
        p = {d.id: {v.id: rng.random() for v in d.values} for d in taxonomy.dimensions}
        before = {d: dict(v) for d, v in p.items()}
        chosen = coherence.resolve(p, at_half, fixed={}, calibrated={d.id for d in taxonomy.dimensions})
        assert p == before
        assert chosen == {d.id: at_half(d, before[d.id]) for d in taxonomy.dimensions}
