"""`hcp-content events import FILE`: a CRM or CDP export (CSV or JSON Lines) into the events table.

Good rows are kept and bad ones listed by row and field; `strict` refuses the whole file when any row is bad
(checked before anything is written). Each batch commits on its own and events are keyed by their id, so an
import killed at any moment and run again leaves the same table as one uninterrupted run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from service.core.taxonomy import Taxonomy
from service.engagement.events import EventIn, RowError, parse_row, read_export
from service.engagement.records import Recorded, check_events, record_events
from service.engagement.rules import EngagementRules
from service.store import hcps, opt_outs
from service.store.db import Database

BATCH = 5000


@dataclass
class ImportReport:
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    opted_out: int = 0
    expired: int = 0
    rejected: list[RowError] = field(default_factory=list)
    refused: bool = False  # strict, and a row was bad: nothing was written

    def add(self, batch: Recorded) -> None:
        self.stored += batch.stored
        self.duplicates += batch.duplicates
        self.opted_out += batch.opted_out
        self.expired += batch.expired


def _batches(path: Path) -> Iterator[tuple[list[tuple[int, EventIn]], list[RowError]]]:
    good: list[tuple[int, EventIn]] = []
    bad: list[RowError] = []
    for n, raw in read_export(path.read_bytes(), path.name):
        parsed = raw if isinstance(raw, RowError) else parse_row(n, raw)
        if isinstance(parsed, RowError):
            bad.append(parsed)
        else:
            good.append((n, parsed))
        if len(good) >= BATCH:
            yield good, bad
            good, bad = [], []
    if good or bad:
        yield good, bad


def import_events(db: Database, path: Path, taxonomy: Taxonomy, rules: EngagementRules, retention_days: int,
                  strict: bool = False) -> ImportReport:
    report = ImportReport()
    with db.session() as s:  # read once: an id lookup per batch cost more than the batch's insert
        assets = hcps.asset_ids(s)
        blocked = opt_outs.everyone(s)
    if strict:  # every row checked first: a strict import writes all or nothing
        for good, bad in _batches(path):
            with db.session() as s:
                _, unresolved = check_events(s, good, taxonomy, rules, assets)
            report.rows += len(good) + len(bad)
            report.rejected += bad + unresolved
        if report.rejected:
            report.refused = True
            return report
        report.rows = 0
    for good, bad in _batches(path):
        report.rows += len(good) + len(bad)
        with db.session() as s:
            checked, unresolved = check_events(s, good, taxonomy, rules, assets)
            report.rejected += bad + unresolved
            report.add(record_events(s, checked, retention_days, blocked=blocked))
    report.rejected.sort(key=lambda e: e.row)
    return report
