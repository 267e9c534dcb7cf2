"""The panel part of bench/engagement.py: --panel doctors planned by id alone over a corpus of --panel-chunks
chunks (bench/matching.py's synthetic corpus), beside the same doctors with need-tags typed (the planner alone)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from matching import NEEDS, base_chunks, build_corpus

from service.engagement.events import EventIn
from service.engagement.records import check_events, record_events
from service.matching.schemas import PanelPlanRequest
from service.settings import Settings
from service.store import hcps


def time_panel_by_id(folder: Path, n: int, chunks: int) -> None:
    settings = Settings(data_dir=folder / "panel", llm_mode="off", worker_enabled=False)
    base, texts, c = base_chunks(settings)
    build_corpus(c, chunks, base, texts)
    rng = np.random.default_rng(3)
    now = datetime.now(UTC)
    assets = [f"b{a}" for a in range(chunks // 10)]
    doctors = [f"hcp-p{i:04d}" for i in range(n)]
    events = [(k, EventIn(id=f"pe{k}", hcp_id=doctors[k % n], asset_id=str(rng.choice(assets)),
                          action=str(rng.choice(["opened", "viewed", "sent"])), channel="online",
                          occurred_at=now - timedelta(days=float(rng.uniform(1, 80))))) for k in range(n * 40)]
    with c.db.session() as s:
        good, bad = check_events(s, events, c.tagger.taxonomy, c.engagement_rules)
        assert not bad, bad[:3]
        record_events(s, good, 3650)
        for d in doctors:
            hcps.put_record(s, d, {"department": [str(rng.choice(["cardiology", "oncology"]))]}, "bench", "admin")
    c.ranker.refit()
    by_id = PanelPlanRequest.model_validate({"hcps": [{"hcp_id": d, "k": 5} for d in doctors]})
    typed = PanelPlanRequest.model_validate({"hcps": [{"hcp_id": d, "k": 5, "need_tags": NEEDS[i % len(NEEDS)]}
                                                      for i, d in enumerate(doctors)]})
    taxonomy = c.tagger.taxonomy
    times = []
    for _ in range(2):
        started = time.perf_counter()
        plan = c.hcp_panels.plan(by_id, taxonomy)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    typed_plan = c.panels.plan(typed, taxonomy)
    planner = time.perf_counter() - started
    served = sum(1 for h in plan.hcps if h.suggestions)
    print(f"  panel of {n} doctors by id over {chunks:,} chunks: {times[0]:.2f} s first, {times[1]:.2f} s with "
          f"cached query vectors ({served} with suggestions, {plan.distinct_needs} distinct needs); the planner "
          f"alone with need-tags typed ({typed_plan.distinct_needs} distinct needs): {planner:.2f} s")
    c.close()
