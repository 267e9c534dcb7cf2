from pathlib import Path

import pytest

from service.core.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = """id: t
version: "1"
name: {en: T}
dimensions:
  - id: value_driver
    label: {en: Value driver, zh: 价值驱动}
    kind: strategic
    values:
      - id: efficacy
        label: {en: Efficacy}
        definition: {en: Works.}
      - id: safety
        label: {en: Safety}
        definition: {en: Harms little.}
"""


def test_the_shipped_taxonomies_validate_and_cover_the_required_dimensions():
    pharma = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")
    dims = {d.id: d for d in pharma.dimensions}
    for required in ("therapy_area", "disease", "product", "content_type", "format", "evidence_level", "audience",
                     "value_driver", "treatment_concept", "customer_need", "key_message", "adoption_stage", "source"):
        assert required in dims
    assert set(dims["content_type"].value_ids) >= {
        "guideline", "clinical_study", "real_world_evidence", "patient_case", "mechanism_of_action",
        "dosing_administration", "safety_information", "congress_report", "policy_market_access",
        "disease_education", "news"}
    assert set(dims["value_driver"].value_ids) == {"efficacy", "safety", "onset_speed", "price_access", "convenience",
                                                   "guideline_endorsement"}
    assert dims["adoption_stage"].value_ids == ["aware", "trial", "adopter", "advocate"]
    assert dims["value_driver"].kind == "strategic" and dims["product"].kind == "factual"
    # HCP need-tags and content tags meet on one vocabulary.
    hcp_dims = {d.id for d in pharma.for_hcp()}
    assert {"value_driver", "therapy_area", "content_type", "format", "adoption_stage"} <= hcp_dims
    assert all(v.label.zh and v.label.en and v.definition.en for d in pharma.dimensions for v in d.values)
    hoc = load_taxonomy(ROOT / "taxonomy" / "hoc.yaml")
    chip = load_taxonomy(ROOT / "taxonomy" / "chip-ctc.yaml")
    assert len(hoc.dimensions[0].values) == 10 and len(chip.dimensions[0].values) == 44
    assert all(v.definition.en for v in hoc.dimensions[0].values + chip.dimensions[0].values)


def test_broken_yaml_names_the_line():
    broken = MINIMAL.replace("    kind: strategic", "    kind: [strategic")
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(broken, "mine.yaml")
    assert err.value.file == "mine.yaml"
    assert err.value.line in (7, 8)
    assert "invalid YAML" in str(err.value) and str(err.value).startswith("mine.yaml:")


def test_duplicate_value_id_is_refused_naming_line_and_field():
    dup = MINIMAL.replace("- id: safety", "- id: efficacy")
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(dup, "dup.yaml")
    assert err.value.line == 12
    assert err.value.field == "dimensions[0].values[1].id"
    assert "duplicate value id 'efficacy'" in err.value.message


def test_a_wrong_field_value_or_an_unknown_field_names_the_field_and_line():
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(MINIMAL.replace("kind: strategic", "kind: tactical"), "k.yaml")
    assert err.value.field == "dimensions[0].kind" and err.value.line == 7
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(MINIMAL.replace("        definition: {en: Works.}", "        definiton: {en: Works.}"), "u.yaml")
    assert "definiton" in err.value.field and err.value.line == 11


def test_duplicate_yaml_keys_and_bad_ids_are_refused():
    with pytest.raises(TaxonomyError, match="duplicate key 'kind'"):
        parse_taxonomy(MINIMAL.replace("    kind: strategic", "    kind: strategic\n    kind: factual"), "d.yaml")
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(MINIMAL.replace("- id: safety", "- id: Safety Value"), "i.yaml")
    assert err.value.field == "dimensions[0].values[1].id"


def test_lookup_helpers():
    t = parse_taxonomy(MINIMAL)
    assert t.has("value_driver", "safety") and not t.has("value_driver", "price")
    assert t.dimension("value_driver").value("efficacy").label.get("zh") == "Efficacy"  # falls back to en
    with pytest.raises(KeyError):
        t.dimension("nope")


def test_implications_that_go_round_in_a_circle_are_refused_naming_the_circle():
    # tagging decides an implied dimension before the dimensions that imply it: a circle would have no first
    circle = MINIMAL.replace("        definition: {en: Works.}", "        definition: {en: Works.}\n"
                             "        implies: {concern: [speed]}") + """  - id: concern
    label: {en: Concern}
    kind: strategic
    values:
      - id: speed
        label: {en: Speed}
        definition: {en: Fast.}
        implies: {value_driver: [efficacy]}
"""
    with pytest.raises(TaxonomyError, match="circle: value_driver -> concern -> value_driver") as err:
        parse_taxonomy(circle, "c.yaml")
    assert err.value.file == "c.yaml"
    one_way = circle.replace("        implies: {value_driver: [efficacy]}\n", "")
    taxonomy = parse_taxonomy(one_way)
    assert taxonomy.implications("value_driver", "efficacy") == [("concern", "speed")]
