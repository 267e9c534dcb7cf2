"""The LLM cascade: confident dimensions are decided without the LLM, metadata dimensions never reach it, and an
asked call keeps to its token budget (the prompt gives up examples, then meanings, then sentences)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.datasets import load_gold
from eval.tagging import fit, prepare
from service.core.prompts import load_prompt
from service.core.taxonomy import load_taxonomy
from service.core.tokens import count_tokens
from service.llm.client import LLMClient
from service.llm.gateway import LLMGateway
from service.store.db import Database
from service.tagging.adjudicator import Adjudicator, Question
from service.tagging.cache import TagCache
from service.tagging.engine import TaggingEngine
from service.tagging.examples import FewShot

from .conftest import SMOLLM_ALIAS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(embedder, llm_server, tmp_path_factory):
    """An engine with heads and calibration fitted on the sample gold, talking to the real local server."""
    taxonomy = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")
    items = prepare(load_gold(ROOT / "samples" / "gold.yaml", taxonomy), embedder)
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('cascade') / 'cache.db'}")
    db.migrate()
    llm = LLMGateway(LLMClient(llm_server.base_url, SMOLLM_ALIAS, structured_mode="json_object", timeout_s=120,
                               max_retries=0), background_timeout_s=120)
    engine = TaggingEngine(taxonomy, embedder, llm=llm, prompt=load_prompt("tagging"), cache=TagCache(db))
    # the four longest English assets are held out: on its own training items a head is sure of everything
    held = sorted((p for p in items if p.item.language == "en"), key=lambda p: -count_tokens(p.item.text))[:4]
    fit(engine, [p for p in items if p not in held])
    yield engine, held
    db.dispose()


def _tag(engine: TaggingEngine, p, mode):
    return engine.tag(p.item.text, title=p.item.title, language=p.item.language, chunks=p.chunks,
                      chunk_vectors=p.vectors, content_hash=p.item.content_hash, metadata=p.item.metadata, mode=mode)


def test_the_cascade_asks_only_uncertain_open_dimensions_within_its_token_ratio(trained):
    engine, items = trained
    asked_any = False
    for p in items:
        result = _tag(engine, p, "cascade")
        signals = engine.proposer.signals(p.item.text, p.vectors, engine.heads)
        policy = engine.policy("cascade")
        uncertain = {d.id for d in engine.taxonomy.for_content() if d.id not in ("format", "source")
                     and policy.wants_llm(d, policy.prior(d, signals[d.id]))}
        assert set(result.asked) <= uncertain, (result.asked, uncertain)
        assert not {"format", "source"} & set(result.asked), "metadata dimensions never reach the LLM"
        hcp_only = {d.id for d in engine.taxonomy.dimensions if d.applies_to == "hcp"}
        assert not hcp_only & (set(result.asked) | {t.dimension for t in result.tags}), "they describe doctors"
        assert all(engine.taxonomy.has(t.dimension, t.value) for t in result.tags)
        if result.asked and result.status == "ok":
            asked_any = True
            own = count_tokens(p.item.text)
            # counted by the server's own tokenizer, which splits English a little finer than the budget's
            assert result.prompt_tokens + result.completion_tokens <= 1.5 * own * 1.15, (result.prompt_tokens,
                                                                                       result.completion_tokens, own)
        # confident dimensions keep the calibrated prior's tags: the same as never asking
        learned = _tag(engine, p, "learned")
        for dim in engine.taxonomy.dimensions:
            if dim.id not in result.asked:
                assert result.values(dim.id) == learned.values(dim.id), dim.id
        assert learned.llm_calls == 0 and learned.prompt_tokens == 0
    assert asked_any, "none of the longest English assets had an uncertain dimension: the band is not exercised"


def test_retagging_an_unchanged_asset_in_the_cascade_costs_no_tokens(trained):
    engine, items = trained
    p = max(items, key=lambda p: count_tokens(p.item.text))
    first, second = _tag(engine, p, "cascade"), _tag(engine, p, "cascade")
    assert second.prompt_tokens == second.completion_tokens == second.llm_calls == 0
    assert second.status in ("cached", "llm_off") and (first.status != "ok" or second.status == "cached")


def test_a_tight_budget_drops_examples_then_meanings_then_sentences_and_never_exceeds_it(trained):
    engine, items = trained
    adjudicator = engine.adjudicator
    assert isinstance(adjudicator, Adjudicator)
    taxonomy = engine.taxonomy
    p = max(items, key=lambda p: count_tokens(p.item.text))
    questions = [Question(taxonomy.dimension("value_driver"), ["safety", "efficacy", "convenience"]),
                 Question(taxonomy.dimension("customer_need"), taxonomy.dimension("customer_need").value_ids[:3])]
    shots = [FewShot("Cardiovex reduced major bleeding versus warfarin in the VIVA-AF trial",
                     {"value_driver": {"safety"}}, 0.9)]
    own = count_tokens(p.item.text)
    bare = count_tokens(str(adjudicator.prompt.messages("en", title=p.item.title, text="",
                                                        **adjudicator._context(questions, "en", [], False))))
    seen = []
    for room in (own + 400, bare + own - 5, bare + 30):
        plan = adjudicator._plan(p.item.text, own, p.item.title, "en", p.chunks, questions, shots, room, None, True)
        assert plan is not None
        windows, context = plan
        used = count_tokens(str(adjudicator.prompt.messages("en", title=p.item.title, text=windows[0], **context)))
        assert used <= room, (room, used)
        seen.append((bool(context["examples"]), bool(context["dimensions"][0]["candidates"][0]["meaning"]),
                     windows[0] == p.item.text))
    assert seen[0] == (True, True, True), "room for everything: everything goes"
    assert seen[1][:2] == (False, False), "a little short: examples and meanings go before the document does"
    assert seen[2] == (False, False, False), "30 tokens for the document: its most relevant sentences"
    assert adjudicator._plan(p.item.text, own, p.item.title, "en", p.chunks, questions, shots, bare + 5, None,
                             True) is None, "too little room to read anything: the LLM is not asked"
