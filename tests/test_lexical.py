"""The lexical head: TF-IDF words (English) and characters (Chinese), learned from labelled examples and kept with
the other heads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.core.taxonomy import load_taxonomy
from service.tagging.learned import LearnedHeads
from service.tagging.lexical import LexicalHeads, analyze
from service.tagging.proposer import Heads, load_heads, save_heads

ROOT = Path(__file__).resolve().parent.parent
CHIP = load_taxonomy(ROOT / "taxonomy" / "chip-ctc.yaml")
DIM = CHIP.dimensions[0].id

AGE = ["年龄18-65岁", "年龄大于18岁的患者", "年龄≥75岁", "入组时年龄小于70岁", "年龄在40至80岁之间", "18岁以上的成年人"]
DISEASE = ["有高血压病史", "患有糖尿病", "合并严重肝病者", "既往有心肌梗死病史", "确诊为慢性肾病", "患有精神疾病的患者"]


def _fitted() -> LexicalHeads:
    texts = AGE + DISEASE
    labels = [{DIM: {"age"}}] * len(AGE) + [{DIM: {"disease"}}] * len(DISEASE)
    return LexicalHeads(CHIP).fit(texts, labels)


def test_the_analyzer_reads_english_words_and_chinese_characters_with_their_symbols():
    features = analyze("HbA1c ≥7% 的患者 with Type-2 diabetes")
    assert {"hba1c", "type-2", "type-2 diabetes"} <= set(features)
    assert {"患", "患者", "的患者", "≥7%"} <= set(features), "characters, digits and symbols of Chinese text"
    assert not any("患" in f for f in analyze("only english here")), "no character grams without Chinese"


def test_a_lexical_head_learns_which_words_mean_which_value():
    heads = _fitted()
    assert set(heads.heads[DIM].values) == {"age", "disease"}
    new = heads.predict_many(["年龄大于60岁", "既往有糖尿病病史"])
    assert new[0][(DIM, "age")] > new[0][(DIM, "disease")]
    assert new[1][(DIM, "disease")] > new[1][(DIM, "age")]
    # the sentence the head weighs most for a value is the one that argues for it (the cascade's passage choice)
    scores = heads.heads[DIM].sentence_scores(["患者签署知情同意书", "年龄不超过65岁"], "age")
    assert scores[1] > scores[0]


def test_heads_are_saved_together_and_refused_for_another_taxonomy(tmp_path):
    lexical = _fitted()
    vectors = np.random.default_rng(1).normal(size=(len(AGE) + len(DISEASE), 8)).astype(np.float32)
    labels = [{DIM: {"age"}}] * len(AGE) + [{DIM: {"disease"}}] * len(DISEASE)
    heads = Heads(LearnedHeads(CHIP).fit(vectors, labels), lexical)
    path = tmp_path / "heads.joblib"
    save_heads(heads, path)
    loaded = load_heads(CHIP, path)
    assert loaded is not None and loaded.lexical is not None and loaded.embedding is not None
    assert loaded.lexical.predict_many(["年龄18岁"]) == lexical.predict_many(["年龄18岁"])
    assert load_heads(load_taxonomy(ROOT / "taxonomy" / "hoc.yaml"), path) is None
    path.write_bytes(b"not a joblib file")
    assert load_heads(CHIP, path) is None, "an unreadable file means retraining, not a failed start"
