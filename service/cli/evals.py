"""The eval commands: tagging against gold, matching against judged needs, reports and the learning curve.
What they run lives in ``eval/`` (``run_tagging``, ``run_matching``, ``learning_curve``); these parse options and
print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from eval.contract import EvalError
from service.cli.app import console, db_only, eval_app
from service.cli.eval_tables import (
    RichSteps,
    emit_tagging_reports,
    print_learning_curve,
    print_matching,
    print_mode_summary,
)
from service.settings import PROJECT_ROOT, get_settings


@contextmanager
def eval_errors() -> Iterator[None]:
    """An evaluation that cannot run as asked: its reason in red, and its exit code."""
    try:
        yield
    except EvalError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(err.exit_code) from err


@eval_app.command("matching")
def eval_matching(
    judged: Annotated[Path, typer.Option(help="Judged HCP needs over the sample content.")] = (
        PROJECT_ROOT / "samples" / "matching.yaml"),
    samples: Annotated[bool, typer.Option("--samples/--no-samples", help="Run the judged sample needs.")] = True,
    content: Annotated[Path, typer.Option(help="The content the judged needs refer to.")] = (
        PROJECT_ROOT / "samples" / "content"),
    kuake: Annotated[Path | None, typer.Option(help="KUAKE-QTR JSON (query → title graded 0–3), e.g. "
                                               "../shared/datasets/kuake-qtr/KUAKE-QTR_dev.json.")] = None,
    limit: Annotated[int | None, typer.Option(help="KUAKE-QTR: a seeded sample of N queries (the corpus is "
                                              "always every title).")] = None,
    k: Annotated[int, typer.Option(help="List length; recall is measured at k.")] = 10,
    fit: Annotated[int, typer.Option(help="Also fit the channel weights and the RRF constant per need kind on the "
                                     "judged needs: the sample needs (scored leave-one-need-out) and this many "
                                     "more KUAKE-QTR queries, disjoint from the --limit ones (scored on those). "
                                     "0: no fit.")] = 0,
    relevance_out: Annotated[Path | None, typer.Option(help="With --fit: write the fitted relevance model (JSON) "
                                                       "here; service/matching/relevance_model.json is the one the "
                                                       "service ships.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """nDCG@10 and recall@k of every variant (each channel alone, BM25 among them, their fusions, MMR) and the
    default configuration, measured in the same run, in a scratch store that leaves the service's data alone."""
    from rich.progress import Progress

    from eval.run_matching import evaluate_matching

    with Progress(console=console) as progress:
        evaluations = evaluate_matching(get_settings(), RichSteps(progress), judged=judged if samples else None,
                                        content=content, kuake=kuake, limit=limit, k=k, fit=fit,
                                        relevance_out=relevance_out)
    print_matching(evaluations, out)


@eval_app.command("report")
def eval_report(
    gold: Annotated[str, typer.Option(help="`reviewed` (the reviewers' decisions in the database, scoring the stored "
                                      "proposals) or a gold file (the project's YAML, HoC TSV, CHIP-CTC JSON).")] = (
        "reviewed"),
    taxonomy: Annotated[Path | None, typer.Option(help="Taxonomy for a gold file (default: the service's).")] = None,
    mode: Annotated[str, typer.Option(help="With a gold file: embedding | learned | cascade | full. `learned` "
                                      "without --train is cross-validated over the gold file.")] = "embedding",
    baseline_mode: Annotated[str | None, typer.Option(help="With a gold file: also run this mode on the same items "
                                                      "and compare (A = baseline mode, B = --mode).")] = None,
    baseline: Annotated[str | None, typer.Option(help="Compare with a saved report: its JSON file, or the id of a "
                                                 "report stored in the database.")] = None,
    train: Annotated[Path | None, typer.Option(help="Training split for `learned` (same format as --gold).")] = None,
    folds: Annotated[int, typer.Option(min=2, help="Folds for cross-validated `learned`.")] = 5,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N gold items.")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Auto-accept threshold to cost out.")] = 0.8,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    lang: Annotated[str, typer.Option(help="Language of the page: en | zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path("var/reports"),
    save: Annotated[bool, typer.Option(help="Also store it in the database (listed by GET /v1/eval/reports).")] = False,
) -> None:
    """A tagging-accuracy report for marketing: JSON plus a self-contained HTML page with its charts."""
    from eval.run_tagging import gold_file_runs
    from service.reports.build import build_report
    from service.reports.render import render_html
    from service.reports.schema import EvalReport
    from service.reports.stored import get_report, save_report

    if lang not in ("en", "zh"):
        console.print(f"[red]--lang is en or zh, not {lang!r}[/red]")
        raise typer.Exit(2)
    settings, db = db_only()
    base: EvalReport | None = None
    base_id: str | None = None
    if baseline is not None:
        if Path(baseline).is_file():
            base = EvalReport.model_validate_json(Path(baseline).read_text(encoding="utf-8"))
            base_id = base.id
        else:
            with db.session() as s:
                base, base_id = get_report(s, baseline), baseline
            if base is None:
                console.print(f"[red]{baseline!r} is neither a report file nor a stored report id[/red]")
                raise typer.Exit(2)
    if gold == "reviewed":
        from service.reports.runs import run_from_reviews
        from service.store.taxonomies import activate_from_file

        tax = activate_from_file(db, settings.taxonomy_path).taxonomy
        with db.session() as s:
            run = run_from_reviews(s, tax)
        if not run.gold:
            console.print("[red]no reviewed tags in the database yet[/red]")
            raise typer.Exit(1)
    else:
        from service.core.taxonomy import load_taxonomy

        tax = load_taxonomy(taxonomy or settings.taxonomy_path)
        with eval_errors():
            runs = gold_file_runs(settings, tax, Path(gold), [m for m in (baseline_mode, mode) if m], train, folds,
                                  limit)
        if baseline_mode:
            base = build_report(tax, runs[0], threshold=threshold)
        run = runs[-1]
    report = build_report(tax, run, title=title, threshold=threshold, baseline=base, baseline_id=base_id)
    if save:
        with db.session() as s:
            report = save_report(s, report, "cli", "admin", base_id)
        typer.echo(f"stored as {report.id}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, lang), encoding="utf-8")  # type: ignore[arg-type]
    typer.echo(f"{report.title}: F1 {report.overall.f1:.3f}, mean macro-F1 {report.overall.macro_f1_mean:.3f}, "
               f"ECE {report.reliability.ece:.3f}; auto-accept at {threshold:g}: {report.auto_accept.accepted} tags, "
               f"{report.auto_accept.wrong} wrong")
    typer.echo(f"written {out / 'report.html'} and {out / 'report.json'}")


@eval_app.command("tagging")
def eval_tagging(
    gold: Annotated[Path, typer.Option(help="Gold labels: the project's gold YAML, HoC TSV, CHIP-CTC JSON, or "
                                       "`reviewed` for the tags reviewers settled in the database.")],
    taxonomy: Annotated[Path | None, typer.Option(help="Taxonomy YAML (taxonomy/pharma.yaml, taxonomy/hoc.yaml, "
                                                  "...); with `--gold reviewed`, the service's active one.")] = None,
    train: Annotated[Path | None, typer.Option(help="Training split for the learned heads and the baseline (same "
                                               "format). Without it, trained modes are cross-validated over "
                                               "--gold.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N items.")] = None,
    train_limit: Annotated[int | None, typer.Option(help="Fit on a seeded sample of N training items.")] = None,
    mode: Annotated[str, typer.Option(help="embedding | learned | cascade | full | baseline (TF-IDF + linear SVM); "
                                      "several comma-separated run on the same embedded items and splits")] = (
        "learned,baseline"),
    folds: Annotated[int, typer.Option(min=2, help="Folds when cross-validating (no --train).")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write the full report as JSON here.")] = None,
    calibrate_llm: Annotated[int, typer.Option(help="Put this many training items to the LLM too, so the "
                                               "calibration learns how far to trust it (needs --train).")] = 0,
) -> None:
    """Tagging accuracy against gold labels: per-label P/R/F1, macro-F1 per dimension, and the plain TF-IDF
    baseline beside the engine in the same run."""
    from rich.progress import Progress

    from eval.run_tagging import evaluate_reviewed, evaluate_tagging, parse_modes

    settings = get_settings()
    with eval_errors():
        modes = parse_modes(mode)
        if str(gold) == "reviewed":
            emit_tagging_reports([e.report for e in evaluate_reviewed(settings, [m for m in modes
                                                                                 if m != "baseline"])], out)
            return
        if taxonomy is None:
            raise EvalError("--taxonomy is needed with a gold file")
        with Progress(console=console) as progress:
            evaluations = evaluate_tagging(settings, gold, taxonomy, modes, RichSteps(progress), train=train,
                                           limit=limit, train_limit=train_limit, folds=folds,
                                           calibrate_llm=calibrate_llm)
    reports = [e.report for e in evaluations]
    emit_tagging_reports(reports, out)
    print_mode_summary(reports)


@eval_app.command("learning-curve")
def eval_learning_curve(
    gold: Annotated[Path, typer.Option(help="Gold labels: the project's gold YAML, HoC TSV, CHIP-CTC JSON.")],
    taxonomy: Annotated[Path, typer.Option(help="Taxonomy YAML of the gold file.")],
    train: Annotated[Path | None, typer.Option(help="Training pool to draw from (same format); without it the "
                                               "curve is cross-validated over --gold.")] = None,
    sizes: Annotated[str, typer.Option(help="Comma-separated numbers of labelled examples; the whole pool is "
                                       "always added.")] = "10,25,50,100,250,500,1000",
    draws: Annotated[int, typer.Option(min=1, help="Seeded draws per size.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the draws and folds.")] = 17,
    folds: Annotated[int, typer.Option(min=2, help="Folds when cross-validating.")] = 5,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Auto-accept threshold.")] = 0.8,
    lang: Annotated[str, typer.Option(help="Language of the page: en | zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path(
        "var/reports/learning-curve"),
    save: Annotated[bool, typer.Option(help="Also store it in the database: the console's Reports page lists it "
                                       "with its plot.")] = False,
) -> None:
    """How many reviews until tags can be trusted: macro-F1, ECE and auto-accept precision against the number of
    labelled examples, with the TF-IDF baseline on the same draws; written as an eval report with its plot."""
    from eval.datasets import load_gold
    from eval.learning_curve import learning_curve
    from eval.tagging import VectorCache, prepare, report_run, tag_all, tag_cross_validated
    from service.core.embeddings import build_embedder
    from service.core.taxonomy import load_taxonomy
    from service.reports.build import build_report
    from service.reports.render import render_html
    from service.tagging.engine import TaggingEngine

    if lang not in ("en", "zh"):
        console.print(f"[red]--lang is en or zh, not {lang!r}[/red]")
        raise typer.Exit(2)
    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        console.print(f"[red]--sizes is comma-separated whole numbers, not {sizes!r}[/red]")
        raise typer.Exit(2) from None
    settings = get_settings()
    tax = load_taxonomy(taxonomy)
    embedder = build_embedder(settings)
    cache = VectorCache(settings.data_dir / "eval-cache" / "vectors.npz", embedder)
    items = prepare(load_gold(gold, tax), embedder, cache=cache)
    pool = prepare(load_gold(train, tax), embedder, cache=cache) if train is not None else items
    engine = TaggingEngine(tax, embedder)
    curve = learning_curve(engine, pool, test=items if train is not None else None, sizes=size_list, draws=draws,
                           seed=seed, folds=folds, threshold=threshold, source=gold.name, progress=console.print)
    # the report's other sections describe the largest size (the whole pool), as `eval report` would
    if train is not None:
        scored, results = items, tag_all(engine, items, "learned")
    else:
        scored, results = tag_cross_validated(engine, items, folds=folds, seed=seed)
    run = report_run(tax, scored, results, mode="learned", source=gold.name,
                     label=f"learned · {embedder.name} · {curve.points[-1].size} examples")
    report = build_report(tax, run, title=f"Learning curve: {gold.name}", threshold=threshold)
    report.learning_curve = curve
    if save:
        from service.reports.stored import save_report

        with db_only()[1].session() as s:
            report = save_report(s, report, "cli", "admin")
        typer.echo(f"stored as {report.id}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, lang), encoding="utf-8")  # type: ignore[arg-type]
    print_learning_curve(curve)
    typer.echo(f"written {out / 'report.html'} and {out / 'report.json'}")


@eval_app.command("claims")
def eval_claims(
    folder: Annotated[Path, typer.Option(help="The perturbation set (claims.jsonl, pieces.jsonl), made by "
                                         "samples/claims/build.py.")] = PROJECT_ROOT / "samples" / "claims",
    content: Annotated[Path, typer.Option(help="The files its claims cite.")] = PROJECT_ROOT / "samples" / "content",
    taxonomy: Annotated[Path, typer.Option(help="The taxonomy with each product's approved indications.")] = (
        PROJECT_ROOT / "taxonomy" / "pharma.yaml"),
    max_false_flags: Annotated[float, typer.Option(help="Recall is reported at the lowest score threshold whose "
                                                   "false-flag rate on faithful claims is at most this.")] = 0.05,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """The claim checker's recall per kind of misstatement and its false-flag rate on faithful claims
    (translations included), beside exact-text linking (20 characters verbatim), in one run."""
    import json

    from rich.table import Table

    from eval.claims import evaluate_claims
    from service.core.taxonomy import load_taxonomy

    report = evaluate_claims(folder, content, load_taxonomy(taxonomy), max_false_flags)
    table = Table(title=f"claim checks: {report.claims} claims, {report.pieces} pieces "
                        f"(checker's threshold {report.threshold})")
    for column in ("kind", "items", "checker", "exact text (20 chars)"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, value in report.recall.items():
        table.add_row(f"recall: {kind}", str(report.counts[kind]), f"{value:.3f}",
                      f"{report.baseline_recall[kind]:.3f}")
    table.add_row("false flags: faithful claims", str(report.counts["faithful"]), f"{report.false_flag_rate:.3f}",
                  f"{report.baseline_false_flag_rate:.3f}")
    pieces = report.pieces // 2
    table.add_row("missing fair balance found", str(pieces), f"{report.fair_balance_found:.3f}", "-")
    table.add_row("fair balance flagged as written", str(pieces), f"{report.fair_balance_false:.3f}", "-")
    console.print(table)
    for item in report.false_flags:
        console.print(f"false flag {item['id']}: {item['text']} {item['flags']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
