"""The shared rate limit: each key's requests counted per minute in SQL, so N API replicas allow a key its limit
once, not N times.

A sliding window by the usual two-bucket estimate: the current minute's count plus the previous minute's,
weighted by how much of it still lies within the last 60 s. The check and the count are one conditional UPDATE
of the key's row, so concurrent requests on any replica cannot both take the last place."""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.store.db import Database
from service.store.models import RateLimitWindow

WINDOW_S = 60.0


def take(db: Database, key_id: str, per_minute: int, now: float | None = None) -> float | None:
    """Count one request of ``key_id`` if it is within ``per_minute``: None when allowed, else the seconds to
    wait. A refused request is not counted."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    elapsed = now - window * WINDOW_S
    weight = 1.0 - elapsed / WINDOW_S  # the share of the previous minute still inside the last 60 s
    row = RateLimitWindow
    with db.session() as s:
        add = (pg_insert if db.dialect == "postgresql" else sqlite_insert)(row)
        created = s.execute(add.values(key_id=key_id, window=window, hits=0)
                            .on_conflict_do_nothing(index_elements=["key_id", "window"])).rowcount  # type: ignore[attr-defined]
        if created:  # a new minute: the ones before the previous no longer count
            s.execute(delete(row).where(row.key_id == key_id, row.window < window - 1))
        previous = select(row.hits).where(row.key_id == key_id, row.window == window - 1).scalar_subquery()
        counted = s.execute(update(row)
                            .where(row.key_id == key_id, row.window == window,
                                   row.hits + 1 + func.coalesce(previous, 0) * weight <= per_minute)
                            .values(hits=row.hits + 1)).rowcount  # type: ignore[attr-defined]
    return None if counted else max(1.0, WINDOW_S - elapsed)
