"""The engagement commands: `eval recommend` (every ranker on one temporal split of an engagement folder) and
`events import` (a CRM or CDP export into the events table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from service.cli.app import app, console, db_only, eval_app
from service.cli.evals import eval_errors
from service.settings import PROJECT_ROOT

SYNTHETIC = PROJECT_ROOT / "var" / "engagement"  # the evaluation's world: sample and synthetic pieces
SYNTHETIC_SAMPLES = PROJECT_ROOT / "var" / "engagement-samples"  # the service's: the sample content alone


def synthetic_folder(folder: Path = SYNTHETIC, doctors: int = 2000, days: int = 90, seed: int = 7,
                     synthetic_items: int | None = None) -> Path:
    """The samples' synthetic engagement, generated (seeded, so always the same files) the first time it is asked."""
    from eval.synthetic_engagement import SYNTHETIC_ITEMS, generate

    items = SYNTHETIC_ITEMS if synthetic_items is None else synthetic_items
    manifest = folder / "manifest.json"
    wanted = {"seed": seed, "doctors": doctors, "days": days, "synthetic_items": items}
    if not manifest.is_file() or any(json.loads(manifest.read_text(encoding="utf-8")).get(k) != v
                                     for k, v in wanted.items()):
        generate(folder, doctors, days, seed, items)
    return folder


def _cell(entry: dict[str, Any], metric: str) -> str:
    value = entry.get(metric)
    if value is None:
        return "–"
    low, high = entry["ci95"][metric]
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def print_recommend(report: dict[str, Any]) -> None:
    console.print(f"cutoff {report['cutoff']}: {report['events_train']} events before, {report['events_test']} "
                  f"after; {report['evaluated_doctors']} of {report['doctors']} doctors engaged with something new; "
                  f"{report['items']} items; 95% bootstrap intervals over doctors")
    for part in ("overall", "cold_doctors", "new_items", "rest"):
        table = Table(title=f"{part}" if part != "overall" else "overall (default: " + report["default"] + ")")
        for col in ("ranker", "doctors", "HR@10", "nDCG@10", "coverage"):
            table.add_column(col, no_wrap=True)
        for name, entry in report["rankers"].items():
            row = entry if part == "overall" else entry["slices"][part]
            table.add_row(name + (" *" if name == report["default"] else ""), str(row["doctors"]),
                          _cell(row, "hr@10"), _cell(row, "ndcg@10"), _cell(row, "coverage"))
        console.print(table)


@eval_app.command("recommend")
def eval_recommend(
    folder: Annotated[Path | None, typer.Argument(help="items.jsonl, users.jsonl, events.jsonl (default: the "
                                                  "samples' SYNTHETIC engagement, generated into var/engagement)")]
    = None,
    cutoff: Annotated[str | None, typer.Option(help="ISO date or timestamp: every event from it on is test.")] = None,
    test_days: Annotated[float, typer.Option(help="Without --cutoff: the last N days of events are test.")] = 14,
    rankers: Annotated[str | None, typer.Option(help="Comma-separated rankers (default: all).")] = None,
    rounds: Annotated[int, typer.Option(min=10, help="Bootstrap rounds for the 95% intervals.")] = 1000,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """HR@10, nDCG@10 and catalogue coverage of the service's ranker beside popularity (global, recent, segment),
    the matcher fed the profile's tags, a decayed tag-affinity profile and implicit ALS, on one temporal split."""
    from eval.recommend import default_cutoff, evaluate, load_folder, parse_cutoff
    from service.engagement.rules import default_rules

    with eval_errors():
        data = load_folder(folder or synthetic_folder(), default_rules())
        cut = parse_cutoff(cutoff) if cutoff else default_cutoff(data, test_days)
        report = evaluate(data, cut, rankers.split(",") if rankers else None, rounds=rounds,
                          progress=lambda name: console.print(f"fitting {name}…", style="dim"))
    print_recommend(report)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


events_app = typer.Typer(help="Engagement events.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("import")
def events_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV (header row) or JSON Lines (.jsonl) "
                                         "export: id, hcp_id, asset_id or url, action, channel, dwell_seconds, "
                                         "occurred_at.")],
    strict: Annotated[bool, typer.Option(help="Refuse the whole file when any row is bad.")] = False,
) -> None:
    """Import engagement events: good rows are kept, bad ones listed by row and field (exit code 1 when any)."""
    from service.engagement.importer import import_events
    from service.engagement.rules import default_rules
    from service.store.taxonomies import activate_from_file

    settings, db = db_only()
    taxonomy = activate_from_file(db, settings.taxonomy_path).taxonomy
    report = import_events(db, file, taxonomy, default_rules(settings.engagement_rules_path),
                           settings.event_retention_days, strict)
    for err in report.rejected[:50]:
        console.print(f"row {err.row}: {err.field}: {err.message}", markup=False, style="red")
    if len(report.rejected) > 50:
        console.print(f"… and {len(report.rejected) - 50} more bad rows", style="red")
    if report.refused:
        console.print(f"refused: {len(report.rejected)} bad rows of {report.rows}; nothing was imported (--strict)",
                      style="red")
        raise typer.Exit(1)
    typer.echo(json.dumps({"rows": report.rows, "stored": report.stored, "duplicates": report.duplicates,
                           "opted_out": report.opted_out, "expired": report.expired,
                           "rejected": len(report.rejected)}))
    if report.rejected:
        raise typer.Exit(1)


@events_app.command("samples")
def events_samples() -> None:
    """Load the samples' SYNTHETIC engagement (2,000 synthetic doctors, 90 days) onto the ingested sample content."""
    from service.engagement.rules import default_rules
    from service.engagement.synthetic_load import load_synthetic
    from service.store.taxonomies import activate_from_file

    settings, db = db_only()
    taxonomy = activate_from_file(db, settings.taxonomy_path).taxonomy
    folder = synthetic_folder(SYNTHETIC_SAMPLES, synthetic_items=0)
    loaded = load_synthetic(db, folder, taxonomy, default_rules(settings.engagement_rules_path),
                            settings.event_retention_days)
    typer.echo(json.dumps({"synthetic": True, **loaded}))
