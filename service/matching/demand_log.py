"""What reps asked for, counted for the content-gap report: each need value of a personalised match or panel row,
and whether anything listed covered it. Counts only (``store.demand``): never the HCP, never the need's free text.

Counting must not slow or fail a match: counts gather in memory and are written every ``flush_seconds`` by a
background thread (and when the report is read, and at shutdown). A write that fails is logged and its counts are
kept for the next try; a process killed outright loses at most its last interval's counts, which are statistics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import date

from service.matching.need import Need
from service.matching.schemas import Uncovered
from service.store import demand
from service.store.db import Database
from service.store.demand import DemandKey
from service.store.visibility import Scope

log = logging.getLogger(__name__)
MAX_KEYS = 100_000  # counts kept while the database refuses them; beyond, new keys are dropped (and logged)


class DemandLog:
    def __init__(self, db: Database, flush_seconds: float) -> None:
        self.db, self.flush_seconds = db, flush_seconds
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._asked: Counter[DemandKey] = Counter()
        self._unserved: Counter[DemandKey] = Counter()
        self._last = time.monotonic()

    def note(self, need: Need, status: str | None, uncovered: Iterable[Uncovered], language: str,
             scope: Scope | None, source: str, today: date | None = None) -> None:
        """Count one answer: ``status`` its coverage's (None: not personalised, nothing to count)."""
        if status is None or not need.tags:
            return
        missing = {(u.dimension, u.value) for u in uncovered}
        scope_key = ";".join(scope.tokens) if scope is not None else ""
        day = today or date.today()
        with self._lock:
            for d, v, _ in need.pairs():
                key = DemandKey(day, d, v, language, scope_key, source)
                if key not in self._asked and len(self._asked) >= MAX_KEYS:
                    log.warning("demand counts not written yet exceed %d keys; dropping new ones", MAX_KEYS)
                    continue
                self._asked[key] += 1
                if status == "none" or (d, v) in missing:
                    self._unserved[key] += 1
            due = time.monotonic() - self._last >= self.flush_seconds
        if due and not self._flushing.locked():
            threading.Thread(target=self.flush, name="demand-flush", daemon=True).start()

    def flush(self) -> None:
        """Write what was counted since the last flush; on failure keep it for the next."""
        with self._flushing:
            with self._lock:
                asked, unserved = self._asked, self._unserved
                self._asked, self._unserved = Counter(), Counter()
                self._last = time.monotonic()
            if not asked:
                return
            try:
                demand.add(self.db, {key: (n, unserved[key]) for key, n in asked.items()})
            except Exception:  # statistics must never take a request down; the counts wait for the next flush
                log.exception("writing %d demand counts failed; keeping them for the next flush", len(asked))
                with self._lock:
                    self._asked.update(asked)
                    self._unserved.update(unserved)
