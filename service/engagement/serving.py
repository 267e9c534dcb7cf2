"""The learned ranker as the service runs it: fitted on every stored event, the current tags of every asset and the
HCP records, then asked per doctor. A fit builds a new state off to the side and swaps it in, so requests always
read one whole generation; `refit_if_changed` fits again only when events were added or erased since."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
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

    def scores(self, hcp_id: str, asset_ids: Sequence[str] | None = None) -> dict[str, float] | None:
        """The ranker's score of these assets (default: all) for this doctor; None when the doctor was not in the
        last fit. Assets the fit did not know are left out."""
        state = self.state
        if state is None or hcp_id not in state.doctors.index:
            return None
        index = state.catalogue.index
        known = list(state.catalogue.ids) if asset_ids is None else [a for a in asset_ids if a in index]
        if not known:
            return {}
        rows = np.array([index[a] for a in known])
        scored = state.ranker.score(np.array([state.doctors.index[hcp_id]]), rows)[0]
        return dict(zip(known, scored.tolist(), strict=True))

    def scores_many(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
        """scores() for many doctors at once (a panel): one model call over every (doctor, asset) pair."""
        state = self.state
        if state is None:
            return {}
        index, doctors = state.catalogue.index, state.doctors.index
        pairs = [(h, a) for h, assets in wanted.items() if h in doctors for a in assets if a in index]
        if not pairs:
            return {}
        scored = state.ranker.score_pairs(np.array([doctors[h] for h, _ in pairs]),
                                          np.array([index[a] for _, a in pairs]))
        out: dict[str, dict[str, float]] = {}
        for (h, a), value in zip(pairs, scored.tolist(), strict=True):
            out.setdefault(h, {})[a] = value
        return out

    def predicted(self, hcp_id: str, prior_events: float = 5.0, min_share: float = 0.3) -> list[PredictedTag]:
        """What the doctor is likely to engage with next, per dimension: their own decayed interests shrunk toward
        their segments' (a doctor with n events weighs their own n against the segments' `prior_events`), the
        values holding at least `min_share` of the dimension (the handbook's weekly prediction). Reads the last
        fit's arrays only: no scoring, no SQL."""
        state = self.state
        if state is None or state.ranker.signals is None or hcp_id not in state.doctors.index:
            return []
        signals = state.ranker.signals
        row = state.doctors.index[hcp_id]
        own = signals.affinity[row]
        tastes = [taste[group_of[row]] for group_of, taste, _ in signals.segments.values()]
        segment = np.mean(tastes, axis=0) if tastes else np.zeros_like(own)
        n = float(np.expm1(signals.user_events[row]))
        blend = (n * own + prior_events * segment) / (n + prior_events)
        out = []
        for dim in state.catalogue.dimensions():
            cols = state.catalogue.dimension_columns(dim)
            shares = np.clip(blend[cols], 0, None)
            total = shares.sum()
            for col in cols[np.argsort(-shares)]:
                share = float(shares[cols == col][0] / total) if total > 0 else 0.0
                if share < min_share:
                    break
                d, v = state.catalogue.vocabulary[col]
                out.append(PredictedTag(dimension=d, value=v, label=v, score=round(share, 2)))
        return sorted(out, key=lambda p: (-p.score, p.dimension, p.value))
