"""The shared rate limit: each key's requests counted per minute in SQL, so N API replicas (or serving processes)
allow a key its limit once, not N times.

A sliding window by the usual two-bucket estimate: the current minute's count plus the previous minute's,
weighted by how much of it still lies within the last 60 s. The check and the count are **one statement** (an
INSERT ... SELECT ... ON CONFLICT DO UPDATE, each part guarded by the limit) run in autocommit, so concurrent
requests on any replica cannot both take the last place, and the write lock is held only while the database runs
that statement. As a transaction of three statements it was held across Python code: on SQLite a process holding
it could wait for its own interpreter lock while the other processes slept in SQLite's busy handler (two serving
processes then used a third of a core each)."""

from __future__ import annotations

import time

from sqlalchemy import Integer, delete, func, literal, select
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
    previous = func.coalesce(select(row.hits).where(row.key_id == key_id, row.window == window - 1)
                             .scalar_subquery(), 0) * weight
    # a new minute's first request is allowed if 1 + previous fits; a later one if its count + 1 + previous fits
    # (when the first does not fit, no later one can, so the guarded SELECT may skip the conflict branch)
    first = select(literal(key_id), literal(window), literal(1, Integer)).where(1 + previous <= per_minute)
    add = (pg_insert if db.dialect == "postgresql" else sqlite_insert)(row)
    counted = add.from_select([row.key_id, row.window, row.hits], first).on_conflict_do_update(
        index_elements=[row.key_id, row.window], set_={"hits": row.hits + 1},
        where=row.hits + 1 + previous <= per_minute).returning(row.hits)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        allowed = conn.execute(counted).first() is not None  # a row comes back when it was inserted or counted
        if allowed and _tidy_due(key_id, window):  # older minutes no longer count: once a minute per key
            conn.execute(delete(row).where(row.key_id == key_id, row.window < window - 1))
    return None if allowed else max(1.0, WINDOW_S - elapsed)


_tidied: dict[str, int] = {}


def _tidy_due(key_id: str, window: int) -> bool:
    if _tidied.get(key_id) == window:
        return False
    if len(_tidied) > 100_000:  # keys come and go; the map must not grow without end
        _tidied.clear()
    _tidied[key_id] = window
    return True
