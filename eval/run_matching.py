"""The matching evaluation the CLI runs: every variant on the judged sample needs and on KUAKE-QTR, each set in a
scratch store of its own (the service's data is left alone), and optionally the fusion fitted on them. It keeps
``eval.contract``'s contract: one ``Evaluation`` per judged set, plus one for the fit."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from eval import matching as em
from eval import relevance as er
from eval.contract import Evaluation, Steps, Task
from eval.tagging import VectorCache
from service.core.embeddings import CachedQueries, build_embedder
from service.runtime import Components, build_components
from service.settings import Settings

PRIMARY = "ndcg@10"


def evaluate_matching(settings: Settings, steps: Steps, *, judged: Path | None, content: Path,
                      kuake: Path | None = None, limit: int | None = None, k: int = 10,
                      fit: int = 0, relevance_out: Path | None = None) -> list[Evaluation]:
    """nDCG@10 and recall@k of every variant (each channel alone, BM25 among them, their fusions, MMR) and the
    default configuration, measured in the same run. ``judged``: the sample needs (None: skip them);
    ``fit``: also fit the channel weights and RRF constant on the sample needs (scored leave-one-need-out) and
    this many more KUAKE-QTR queries, disjoint from the ``limit`` ones (scored on those), and the relevance model on
    the same needs' judged pairs (its calibration measured on pairs it was not fitted on); ``relevance_out``: write
    the fitted relevance model there (service/matching/relevance_model.json is the one the service ships)."""
    evaluations: list[Evaluation] = []
    fit_sets: list[em.JudgedSet] = []
    held_out: dict[str, list[int]] = {}
    opened: list[Components] = []  # closed once the fit (which re-ranks in every store) is done
    embedder = CachedQueries(build_embedder(settings))
    with tempfile.TemporaryDirectory(prefix="hcp-eval-match-") as tmp:
        try:
            for name, path in (("samples", judged), ("kuake-qtr", kuake)):
                if path is None:
                    continue
                scratch = settings.model_copy(update={"data_dir": Path(tmp) / name, "llm_mode": "off",
                                                      "database_url": None, "qdrant_url": None,
                                                      "vector_backend": None, "worker_enabled": False})
                c = build_components(scratch, with_llm=False)
                opened.append(c)
                c.embedder = embedder
                if name == "samples":
                    items = em.load_judged(path, k)
                    task = steps.task("ingesting the samples")
                    key_of = em.index_samples(c, content)
                    items = em.by_family(items, c)
                    task.update(1, total=1)
                    variants = list(em.VARIANTS)
                else:
                    items, titles = em.load_kuake(path, limit, seed=13, k=k, fit=fit)
                    cache = VectorCache(settings.data_dir / "eval-cache" / "kuake-titles.npz", embedder.inner)
                    key_of = em.index_titles(c, titles, cache, progress=steps.task("indexing titles",
                                                                                   len(titles)).advance)
                    variants = [v for v in em.VARIANTS if v != "tags"]  # no tags there
                matcher = em.Matcher.from_settings(c.db, c.vectors, embedder, scratch)
                scored = items[:limit] if name == "kuake-qtr" and limit is not None else items
                ranking = steps.task(f"{name}: ranking", len(scored))

                def ranked(done: int, _total: int, task: Task = ranking) -> None:
                    task.update(done)

                report = em.run(matcher, c.tagger.taxonomy, scored, key_of, variants, k=k, progress=ranked)
                evaluations.append(Evaluation(name, PRIMARY, report["variants"].get("default", {}).get(PRIMARY),
                                              report))
                if fit:
                    task = steps.task(f"{name}: retrieving for the fit")
                    fit_sets.append(em.JudgedSet(name, matcher, c.tagger.taxonomy, items, key_of).prepare())
                    if len(items) > len(scored):
                        held_out[name] = list(range(len(scored)))
                    task.update(1, total=1)
            if fit_sets:
                task = steps.task("fitting the fusion")
                evaluations.append(Evaluation("fit", PRIMARY, None, em.fit_fusion(fit_sets, held_out)))
                task.update(1, total=1)
                task = steps.task("fitting the relevance")
                fitting = [(js, [i for i in range(len(js.judged)) if i not in set(held_out.get(js.name, []))])
                           for js in fit_sets]
                kept_out = [(js, held_out[js.name]) for js in fit_sets if held_out.get(js.name)]
                model, report = er.fit_relevance(fitting, kept_out, fit_sets[0].matcher.config.relevance)
                if relevance_out is not None:
                    relevance_out.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
                    report["written"] = str(relevance_out)
                evaluations.append(Evaluation("relevance", "ece", None, report))
                task.update(1, total=1)
        finally:
            for c in opened:
                c.close()
    return evaluations
