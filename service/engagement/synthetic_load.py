"""The samples' SYNTHETIC engagement (eval/synthetic_engagement.py's folder) into the service, so `make run` shows
profiles and suggestions by id: each synthetic doctor's attributes, and their events on the sample content (the
synthetic-only items exist in the evaluation folder alone), moved in time so that the window ends days before today.
Idempotent: event ids are fixed and a record is rewritten only when it changed."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from service.core.taxonomy import Taxonomy
from service.engagement.events import EventIn
from service.engagement.records import check_attributes, check_events, record_events
from service.engagement.rules import EngagementRules
from service.store import hcps
from service.store.db import Database

ACTOR = "synthetic-engagement"


def load_synthetic(db: Database, folder: Path, taxonomy: Taxonomy, rules: EngagementRules, retention_days: int,
                   today: date | None = None) -> dict[str, int]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    last_day = date.fromisoformat(manifest["start"]) + timedelta(days=manifest["days"] - 1)
    # a response comes up to two days after its send: the window's last day is three days ago, so none is ahead
    shift = (today or date.today()) - timedelta(days=3) - last_day
    users = [json.loads(line) for line in (folder / "users.jsonl").open(encoding="utf-8")]
    with db.session() as s:
        held = hcps.records(s)
        for u in users:
            attrs = check_attributes({k: [v] for k, v in u["attributes"].items()}, taxonomy)
            if held.get(u["id"]) != attrs:
                hcps.put_record(s, u["id"], attrs, ACTOR, "admin")
    stored = 0
    batch: list[tuple[int, EventIn]] = []
    with (folder / "events.jsonl").open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            e = json.loads(line)
            if e["item"].startswith("synthetic-"):
                continue
            when = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) + shift
            batch.append((n, EventIn(id=e["id"], hcp_id=e["user"], url=e["item"], action=e["action"],
                                     channel=e.get("channel"), dwell_seconds=e.get("dwell_seconds"),
                                     occurred_at=when)))
            if len(batch) >= 5000:
                stored += _store(db, batch, taxonomy, rules, retention_days)
                batch = []
    stored += _store(db, batch, taxonomy, rules, retention_days)
    return {"doctors": len(users), "events": stored}


def _store(db: Database, batch: list[tuple[int, EventIn]], taxonomy: Taxonomy, rules: EngagementRules,
           retention_days: int) -> int:
    with db.session() as s:
        good, _ = check_events(s, batch, taxonomy, rules)  # a sample piece not ingested here: its events are left
        return record_events(s, good, retention_days).stored
