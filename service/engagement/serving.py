"""The learned ranker as the service runs it: fitted on every stored event, the current tags of every asset and the
HCP records, then asked per doctor. A fit builds a new state off to the side and swaps it in, so requests always
read one whole generation; `refit_if_changed` fits again only when events were added or erased since."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select

from service.engagement.hybrid import LearnedRanker
from service.engagement.interactions import Catalogue, Doctors, Interactions
from service.engagement.profile import PredictedTag
from service.engagement.rules import EngagementRules
from service.store import hcps
from service.store.db import Database
from service.store.hcp_models import HcpEvent

log = logging.getLogger(__name__)
DAY = 86400.0


def _days(when: datetime) -> float:
    return when.timestamp() / DAY


@dataclass(frozen=True)
class RankerState:
    generation: int
    fitted_at: datetime
    watermark: tuple[int, str | None]  # (events, newest event time) the fit saw
    ranker: LearnedRanker
    catalogue: Catalogue
    doctors: Doctors
    seconds: float


class ServedRanker:
    def __init__(self, db: Database, rules: EngagementRules) -> None:
        self.db, self.rules = db, rules
        self.state: RankerState | None = None
        self._lock = threading.Lock()

    def watermark(self) -> tuple[int, str | None]:
        with self.db.session() as s:
            count, newest = s.execute(select(func.count(), func.max(HcpEvent.occurred_at))).one()
        return int(count), None if newest is None else str(newest)

    def refit_if_changed(self) -> bool:
        mark = self.watermark()
        if self.state is not None and self.state.watermark == mark:
            return False
        self.refit(mark)
        return True

    def refit(self, mark: tuple[int, str | None] | None = None) -> RankerState | None:
        """Fit on everything stored; None (and the previous state kept) when there is nothing to fit on."""
        with self._lock:  # one fit at a time; requests go on with the current state meanwhile
            started = time.perf_counter()
            mark = mark or self.watermark()
            with self.db.session() as s:
                events = hcps.all_events(s)
                tags = hcps.current_tags(s)
                records = hcps.records(s)
                published = hcps.published_days(s)
            if not events or not tags:
                return None
            catalogue = Catalogue.build([(asset, t, _days(datetime(p.year, p.month, p.day, tzinfo=UTC))
                                          if (p := published.get(asset)) else None)
                                         for asset, t in sorted(tags.items())])
            ids = sorted(set(records) | {e.hcp_id for e in events})
            doctors = Doctors(ids, [{d: v[0] for d, v in records.get(i, {}).items() if v} for i in ids])
            rows = [(doctors.index[e.hcp_id], catalogue.index[e.asset_id], e.action, _days(e.occurred_at),
                     e.dwell_seconds, None) for e in events if e.asset_id in catalogue.index]
            history = Interactions.build(rows, self.rules)
            ranker = LearnedRanker(self.rules)
            now = datetime.now(UTC)
            ranker.fit(history, catalogue, doctors, _days(now))
            previous = self.state.generation if self.state else 0
            self.state = RankerState(previous + 1, now, mark, ranker, catalogue, doctors,
                                     time.perf_counter() - started)
            log.info("engagement ranker generation %d: %d events, %d doctors, %d assets, %.1f s",
                     self.state.generation, len(history), len(ids), len(catalogue.ids), self.state.seconds)
            return self.state

    def scores(self, hcp_id: str) -> dict[str, float] | None:
        """The ranker's score of every asset for this doctor; None when the doctor was not in the last fit."""
        state = self.state
        if state is None or hcp_id not in state.doctors.index:
            return None
        row = state.ranker.score(np.array([state.doctors.index[hcp_id]]))[0]
        return dict(zip(state.catalogue.ids, row.tolist(), strict=True))

    def predicted(self, hcp_id: str, visible: set[str] | None = None, top: int = 5) -> list[PredictedTag]:
        """The tags of the doctor's top `top` assets a rep may send (`visible`) by the ranker: what they are likely
        to engage with next (the handbook's weekly prediction)."""
        scores = self.scores(hcp_id)
        state = self.state
        if scores is None or state is None:
            return []
        ranked = [a for a, _ in sorted(scores.items(), key=lambda kv: -kv[1]) if visible is None or a in visible]
        counts: Counter[tuple[str, str]] = Counter()
        for asset in ranked[:top]:
            row = state.catalogue.tags[state.catalogue.index[asset]]
            for col in row.indices:
                counts[state.catalogue.vocabulary[col]] += 1
        n = min(top, len(ranked)) or 1
        return [PredictedTag(dimension=d, value=v, label=v, score=round(c / n, 2))
                for (d, v), c in counts.most_common() if c / n >= 0.3]
