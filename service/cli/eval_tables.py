"""How the eval commands print their results: rich tables on stderr, and the JSON report with --out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from eval.contract import Evaluation
from service.cli.app import console


class _RichTask:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.id = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.id, n)

    def update(self, completed: int, total: int | None = None) -> None:
        if total is None:
            self.progress.update(self.id, completed=completed)
        else:
            self.progress.update(self.id, completed=completed, total=total)


class RichSteps:
    """``eval.contract.Steps`` as rich progress bars (use inside ``with Progress(console=console)``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def task(self, description: str, total: int | None = None) -> _RichTask:
        return _RichTask(self.progress, self.progress.add_task(description, total=total))

    def note(self, text: str) -> None:
        console.print(text)


def print_matching(evaluations: list[Evaluation], out: Path | None) -> None:
    """One table per judged set (every variant's metrics), the fitted fusion's tables; the JSON with --out."""
    for evaluation in evaluations:
        result = evaluation.report
        if evaluation.name == "fit":
            for kind, fitted in result["fitted"].items():
                console.print(f"fusion fitted for {kind} needs on {fitted['needs']} judged needs over {fitted['grid']} "
                              f"settings: {fitted['method']}, weights {fitted['weights']}, rrf_k {fitted['rrf_k']} "
                              f"(nDCG@10 {fitted['fit_ndcg@10']} on the needs it was fitted on)")
            table = Table(title="the fitted fusion on needs it was not fitted on")
            for column in ("judged set", "protocol", "needs scored", "settings' fusion", "fitted fusion"):
                table.add_column(column, justify="left" if column in ("judged set", "protocol") else "right")
            for set_name, row in result["sets"].items():
                table.add_row(set_name, row["protocol"], str(row["held_out_needs"]), str(row["settings_ndcg@10"]),
                              str(row["fitted_ndcg@10"]))
            console.print(table)
            continue
        if evaluation.name == "relevance":
            print_relevance(result)
            continue
        table = Table(title=f"{evaluation.name}: {result['needs']} judged needs")
        table.add_column("variant")
        metrics = list(next(iter(result["variants"].values())))
        for metric in metrics:
            table.add_column(metric, justify="right")
        for variant, values in result["variants"].items():
            table.add_row(variant, *(str(values[m]) for m in metrics))
        console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {e.name: e.report for e in evaluations}
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


def print_relevance(result: dict[str, Any]) -> None:
    """The relevance model's fit, and its calibration on pairs it was not fitted on (a reliability table per set)."""
    for kind, fitted in result["kinds"].items():
        console.print(f"relevance fitted for {kind} needs on {fitted['pairs']} pairs of {fitted['needs']} needs "
                      f"({fitted['relevant']} relevant): {fitted['coef']}")
    for name, calibration in result["sets"].items():
        table = Table(title=f"relevance calibration, {name}: ECE {calibration['ece']} over {calibration['pairs']} "
                      f"pairs ({calibration['relevant']} relevant)")
        for column in ("bin", "pairs", "predicted", "observed"):
            table.add_column(column, justify="right")
        for row in calibration["table"]:
            table.add_row(row["bin"], str(row["pairs"]), f"{row['predicted']:.3f}", f"{row['observed']:.3f}")
        console.print(table)
    if "written" in result:
        console.print(f"relevance model written to {result['written']}")


def print_learning_curve(curve: Any) -> None:
    table = Table(title=f"learning curve: {curve.source}, {curve.evaluated_on}")
    for column in ("examples", "draws", "macro-F1", "±", "TF-IDF+SVM", "ECE", f"precision ≥ {curve.threshold:g}",
                   "auto-accepted"):
        table.add_column(column, justify="right")
    for p in curve.points:
        table.add_row(str(p.size), str(p.draws), f"{p.macro_f1:.4f}", f"{p.macro_f1_sd:.4f}",
                      "" if p.baseline_macro_f1 is None else f"{p.baseline_macro_f1:.4f}", f"{p.ece:.4f}",
                      "—" if p.precision_at_threshold is None else f"{p.precision_at_threshold:.4f}",
                      f"{p.accepted_share:.3f}")
    console.print(table)


def print_mode_summary(reports: list[dict[str, Any]]) -> None:
    """One line per mode, each against the baseline of the same run."""
    base = next((r["macro_f1_mean"] for r in reports if str(r["mode"]).startswith("baseline")), None)
    table = Table(title="mean macro-F1 over dimensions, same items and splits")
    for column in ("mode", "macro-F1", "vs baseline", "items", "seconds", "LLM calls", "LLM tokens/asset"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in reports:
        tokens = r["tokens"]
        per_asset = (tokens["prompt"] + tokens["completion"]) / r["items"] if r["items"] else 0.0
        delta = "" if base is None or str(r["mode"]).startswith("baseline") else f"{r['macro_f1_mean'] - base:+.4f}"
        table.add_row(str(r["mode"]), f"{r['macro_f1_mean']:.4f}", delta, str(r["items"]), str(r["seconds"]),
                      str(tokens["calls"]), f"{per_asset:.0f}")
    console.print(table)


def emit_tagging_reports(reports: list[dict[str, object]], out: Path | None) -> None:
    for report in reports:
        print_tagging_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2, ensure_ascii=False),
                       encoding="utf-8")
        typer.echo(f"report written to {out}")


def print_tagging_report(report: dict[str, object]) -> None:
    dimensions = report["dimensions"]
    assert isinstance(dimensions, dict)
    for dim_id, dim in dimensions.items():
        table = Table(title=f"{dim_id}: macro-F1 {dim['macro_f1']:.3f}  micro-F1 {dim['micro_f1']:.3f}")
        for column in ("label", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, s in sorted(dim["per_label"].items()):
            table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
        console.print(table)
    tokens = report["tokens"]
    assert isinstance(tokens, dict)
    typer.echo(f"mode {report['mode']}: mean macro-F1 over dimensions {report['macro_f1_mean']:.4f} on "
               f"{report['items']} items ({report['seconds']}s; LLM tokens {tokens['prompt']}+{tokens['completion']}, "
               f"{tokens['llm_unavailable']} unavailable)")
