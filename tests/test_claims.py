"""The claim checker, worked by hand on the sample content's own sentences, and its eval on the perturbation set."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.claims import evaluate_claims, exact_text_linked
from service.claims.check import ClaimChecker
from service.claims.draft import unbalanced
from service.claims.numbers import numbers, ratios
from service.core.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
BLEEDING = ("The principal safety endpoint was ISTH major bleeding. Major bleeding occurred at 3.1% per year with "
            "Cardiovex and 3.8% per year with warfarin (HR 0.81; 95% CI 0.71-0.93). Intracranial haemorrhage was "
            "reduced by 46% (0.4% vs 0.8% per year). Gastrointestinal bleeding was similar in both arms (1.5% vs "
            "1.4% per year).")
PHASE3 = ("主要疗效终点为卒中或全身性栓塞。卡迪维组年发生率为1.6%，华法林组为2.0%，"
          "风险降低21%（HR 0.79），同时达到非劣效和优效。"
          "全因死亡率卡迪维组有降低趋势（HR 0.90）。")


@pytest.fixture(scope="module")
def checker() -> ClaimChecker:
    return ClaimChecker(load_taxonomy(ROOT / "taxonomy" / "pharma.yaml"))


def kinds(checker: ClaimChecker, text: str, source: str) -> list[str]:
    return [f.kind for f in checker.check(text, [source]).flags]


def test_numbers_are_read_with_units_and_names_are_not_numbers():
    text = "14,200例患者，3.1%/年，GLP-1受体激动剂，CHA2DS2-VASc评分5分，T790M，52周"
    found = {(n.value, n.unit) for n in numbers(text)}
    assert found == {(14200.0, "count"), (3.1, "percent"), (5.0, None), (52.0, "weeks")}
    assert [(r.name, r.value, r.low, r.high, r.direction) for r in ratios("HR 0.81; 95% CI 0.71-0.93", ["HR"])] == \
        [("HR", 0.81, 0.71, 0.93, "lower")]
    assert ratios("HR 0.95 (95% CI 0.80–1.12)", ["HR"])[0].direction == "similar"


def test_the_reported_misstatement_is_contradicted_by_the_interval(checker):
    result = checker.check("ISTH major bleeding was similar in both arms.", [BLEEDING])
    assert [f.kind for f in result.flags] == ["contradicts_source"]
    assert "0.71-0.93" in (result.flags[0].quote or "")  # the sentence it failed on, shown to the reviewer
    # the faithful sentences of the same passage stand, and say which sentence supports them
    ok = checker.check("Gastrointestinal bleeding was similar in both arms (1.5% vs 1.4% per year).", [BLEEDING])
    assert ok.ok and ok.support[0].quote.startswith("Gastrointestinal bleeding")
    assert checker.check("Major bleeding was lower with Cardiovex (HR 0.81).", [BLEEDING]).ok


def test_numbers_must_occur_in_the_source_in_either_language(checker):
    assert kinds(checker, "Major bleeding occurred at 3.5% per year with Cardiovex.", BLEEDING) == \
        ["unsupported_number"]
    assert checker.check("卡迪维组大出血年发生率为3.1%，华法林组为3.8%。", [BLEEDING]).ok  # translated: same numbers
    assert kinds(checker, "卡迪维组大出血年发生率为3.1%，华法林组为4.8%。", BLEEDING) == ["unsupported_number"]


def test_directions_are_held_to_the_clause_they_come_from(checker):
    assert kinds(checker, "Intracranial haemorrhage was increased by 46%.", BLEEDING) == ["contradicts_source"]
    assert kinds(checker, "卡迪维组风险增加21%（HR 0.79）。", PHASE3) == ["contradicts_source"]
    assert checker.check("风险降低21%（HR 0.79），同时达到非劣效和优效。", [PHASE3]).ok
    # a trend is not a reduction; said as a trend it stands
    assert kinds(checker, "全因死亡率卡迪维组显著降低（HR 0.90）。", PHASE3) == ["contradicts_source"]
    assert checker.check("All-cause mortality showed a trend towards reduction with Cardiovex (HR 0.90).", [PHASE3]).ok


def test_superlatives_and_indications(checker):
    assert kinds(checker, "Cardiovex is the safest anticoagulant: major bleeding 3.1% vs 3.8%.", BLEEDING) == \
        ["unsupported_superlative"]
    assert kinds(checker, "卡迪维是唯一降低颅内出血的药物。", BLEEDING) == ["unsupported_superlative"]
    assert kinds(checker, "Cardiovex is indicated for non-small cell lung cancer.", BLEEDING) == ["off_label"]
    assert kinds(checker, "卡迪维用于2型糖尿病患者。", BLEEDING) == ["off_label"]
    assert "off_label" not in kinds(checker, "Cardiovex prevents stroke in atrial fibrillation.", BLEEDING)
    # a trial's name is no superlative ("ONCO-FIRST")
    assert checker.check("ONCO-FIRST enrolled patients.", ["ONCO-FIRST enrolled patients."]).ok


def test_fair_balance_needs_a_safety_statement_somewhere_in_the_piece(checker):
    efficacy = ["Stroke or systemic embolism reduced by 21% (HR 0.79).", "One tablet a day."]
    assert unbalanced(efficacy, checker.lexicon) == efficacy[0]
    assert unbalanced([*efficacy, "Major bleeding 3.1%/year vs 3.8%/year."], checker.lexicon) is None
    assert unbalanced(["One tablet a day, with food."], checker.lexicon) is None  # no efficacy claim


def test_exact_text_linking_is_the_baseline_as_described():
    assert exact_text_linked("Major bleeding occurred at 3.5% per year", BLEEDING)  # 20 chars verbatim suffice
    assert not exact_text_linked("大出血年发生率为3.1%", BLEEDING)


def test_eval_claims_meets_the_issue_bars_beside_the_baseline():
    report = evaluate_claims(ROOT / "samples" / "claims", ROOT / "samples" / "content",
                             load_taxonomy(ROOT / "taxonomy" / "pharma.yaml"))
    assert report.counts["faithful"] >= 150 and report.counts["flipped_comparison"] >= 20
    assert report.recall["altered_number"] >= 0.95 and report.recall["swapped_indication"] >= 0.95
    assert report.recall["flipped_comparison"] >= 0.80 and report.recall["added_superlative"] >= 0.90
    assert report.fair_balance_found == 1.0 and report.fair_balance_false == 0.0
    assert report.false_flag_rate <= 0.05
    # the checker beats exact-text linking on every kind, and flags fewer faithful (translated) claims
    assert all(report.recall[k] > report.baseline_recall[k] for k in report.recall)
    assert report.false_flag_rate < report.baseline_false_flag_rate
