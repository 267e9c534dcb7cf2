"""The tagging evaluations the CLI runs: gold-file modes beside the TF-IDF baseline, the service's own tagger on
reviewed tags, and the runs an eval report is built from. Each keeps ``eval.contract``'s contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.contract import EvalError, Evaluation, Steps
from eval.datasets import load_gold
from eval.tagging import (
    VectorCache,
    cross_validate_baseline,
    fit,
    prepare,
    report_run,
    reviewed_items,
    run,
    run_baseline,
    score_cross_validated,
    tag_all,
    tag_cross_validated,
)
from service.core.embeddings import Embedder, build_embedder
from service.core.taxonomy import Taxonomy, load_taxonomy
from service.reports.runs import Run
from service.settings import Settings
from service.tagging.engine import TaggingEngine
from service.tagging.result import LLM_MODES, MODES

PRIMARY = "macro_f1_mean"


def _evaluation(report: dict[str, Any]) -> Evaluation:
    return Evaluation(f"tagging:{report['mode']}", PRIMARY, float(report[PRIMARY]), report)


def parse_modes(text: str, *, baseline: bool = True) -> list[str]:
    """``learned,baseline`` → the modes, each checked (``baseline`` is the TF-IDF + linear SVM run)."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    allowed = (*MODES, "baseline") if baseline else MODES
    if not modes or any(m not in allowed for m in modes):
        raise EvalError(f"unknown mode in {text!r}")
    return modes


@contextmanager
def eval_engine(settings: Settings, tax: Taxonomy, embedder: Embedder, modes: list[str]) -> Iterator[TaggingEngine]:
    """A tagging engine for an evaluation; with an LLM (and the local server, stopped after) when a mode needs
    one. The LLM's answers are cached in the database, so a rerun of the same evaluation costs no tokens."""
    from service.core.prompts import load_prompt
    from service.runtime import build_llm, start_local_llm
    from service.store.db import Database
    from service.tagging.cache import TagCache

    if not set(LLM_MODES) & set(modes):
        yield TaggingEngine(tax, embedder, prompt=load_prompt("tagging"))
        return
    if settings.effective_llm_mode == "off":
        raise EvalError("modes cascade and full need an LLM (HCP_LLM_MODE is off)")
    server = start_local_llm(settings) if settings.effective_llm_mode == "local" else None
    try:
        cache_db = Database(settings.resolved_database_url)
        cache_db.migrate()
        yield TaggingEngine(tax, embedder, llm=build_llm(settings, server.base_url if server else None),
                            prompt=load_prompt("tagging"), cache=TagCache(cache_db))
    finally:
        if server is not None:
            server.stop()


def gold_file_runs(settings: Settings, tax: Taxonomy, gold: Path, modes: list[str], train: Path | None,
                   folds: int, limit: int | None) -> list[Run]:
    """Tag the gold file's items in each mode (embedded once) and return one run per mode (an eval report's)."""
    if any(m not in MODES for m in modes):
        raise EvalError(f"unknown mode in {modes}")
    embedder = build_embedder(settings)
    items = prepare(load_gold(gold, tax, limit=limit), embedder,
                    cache=VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder))
    with eval_engine(settings, tax, embedder, modes) as engine:
        if train is not None:
            fit(engine, prepare(load_gold(train, tax), embedder))
        runs = []
        for m in modes:
            if m == "learned" and train is None:
                pooled, results = tag_cross_validated(engine, items, folds=folds)
                label, scored = f"learned (cv{folds}) · {embedder.name}", pooled
            else:
                results, scored = tag_all(engine, items, m), items  # type: ignore[arg-type]
                llm = engine.llm if m in LLM_MODES else None
                label = f"{m} · {embedder.name}" + (f" · {llm.model}" if llm else "")
            runs.append(report_run(tax, scored, results, mode=m, source=gold.name, label=label))
        return runs


def evaluate_tagging(settings: Settings, gold: Path, taxonomy: Path, modes: list[str], steps: Steps, *,
                     train: Path | None = None, limit: int | None = None, train_limit: int | None = None,
                     folds: int = 5, calibrate_llm: int = 0) -> list[Evaluation]:
    """Each mode on the same embedded items and splits, against gold labels; ``baseline`` is TF-IDF + linear SVM."""
    tax = load_taxonomy(taxonomy)
    embedder = build_embedder(settings)
    items = load_gold(gold, tax, limit=limit)
    cache = VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder)
    prepared = prepare(items, embedder, progress=steps.task("embedding test items", len(items)).advance,
                       cache=cache)
    train_prepared = None
    if train is not None:
        train_items = load_gold(train, tax, limit=train_limit)
        train_prepared = prepare(train_items, embedder, cache=cache,
                                 progress=steps.task("embedding training items", len(train_items)).advance)
    evaluations = []
    with eval_engine(settings, tax, embedder, modes) as engine:
        llm = engine.llm
        fit_seconds = None
        if train_prepared is not None and any(m != "baseline" and m != "embedding" for m in modes):
            n_llm = calibrate_llm if llm is not None else 0
            fitted = fit(engine, train_prepared, llm_items=n_llm,
                         progress=steps.task("LLM on training items", n_llm).advance if n_llm else None)
            fit_seconds = round(fitted.seconds, 1)
            steps.note(f"fitted heads and calibration on {len(train_prepared)} training items in "
                       f"{fitted.seconds:.1f}s ({fitted.heads.count} heads)")
        for m in modes:
            if m == "baseline":
                report = run_baseline(tax, train_prepared, prepared) if train_prepared is not None \
                    else cross_validate_baseline(tax, prepared, folds)
            elif m != "embedding" and train_prepared is None:
                report = score_cross_validated(engine, prepared, folds, m)  # type: ignore[arg-type]
            else:
                task = steps.task(f"tagging ({m})", len(prepared))
                report = run(engine, prepared, m, progress=task.advance)  # type: ignore[arg-type]
            report.update({"taxonomy": tax.key, "gold": str(gold), "train": str(train) if train else None,
                           "embedder": embedder.name,
                           "fit_seconds": fit_seconds if m not in ("baseline", "embedding") else None,
                           "llm": llm.model if llm and m in LLM_MODES else None})
            evaluations.append(_evaluation(report))
    return evaluations


def evaluate_reviewed(settings: Settings, modes: list[str]) -> list[Evaluation]:
    """The service's own tagger (heads and calibration trained on reviews) scored on the reviewed tags."""
    from service.runtime import build_components

    components = build_components(settings, with_llm=bool(set(LLM_MODES) & set(modes)))
    try:
        items = reviewed_items(components.db, components.vectors, components.embedder)
        if not items:
            raise EvalError("no reviewed tags in the database yet", exit_code=1)
        engine = components.tagger.engine
        evaluations = []
        for m in modes:
            report = run(engine, items, m)  # type: ignore[arg-type]
            report.update({"taxonomy": engine.taxonomy.key, "gold": "reviewed",
                           "heads": engine.heads.count if engine.heads else 0,
                           "embedder": components.embedder.name,
                           "llm": components.llm.model if components.llm and m in LLM_MODES else None})
            evaluations.append(_evaluation(report))
        return evaluations
    finally:
        components.close()
