"""The content-gap report's counts: per day, need value, language, key scope and source (a match, a panel plan),
how often it was asked for and how often nothing listed covered it. Added to with one upsert per row, so several
processes (and replicas) add to the same day's counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import NamedTuple

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.store.db import Database
from service.store.models import NeedDemand


class DemandKey(NamedTuple):
    day: date
    dimension: str
    value: str
    language: str
    scope: str
    source: str


class DemandRow(NamedTuple):
    dimension: str
    value: str
    language: str
    scope: str
    asked: int
    unserved: int
    last_day: date


def add(db: Database, counts: Mapping[DemandKey, tuple[int, int]]) -> None:
    """Add (asked, unserved) to each key's row, in one transaction."""
    if not counts:
        return
    table = NeedDemand.__table__
    assert isinstance(table, Table)
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    with db.session() as s:
        for key, (asked, unserved) in sorted(counts.items()):  # one order for every writer: no deadlock
            statement = insert(table).values(**key._asdict(), asked=asked, unserved=unserved)
            s.execute(statement.on_conflict_do_update(
                index_elements=list(DemandKey._fields),
                set_={"asked": table.c.asked + asked, "unserved": table.c.unserved + unserved}))


def since(s: Session, first_day: date) -> list[DemandRow]:
    """Every (dimension, value, language, scope) asked for from ``first_day`` on, with its totals over the sources."""
    d = NeedDemand
    rows = s.execute(select(d.dimension, d.value, d.language, d.scope, func.sum(d.asked), func.sum(d.unserved),
                            func.max(d.day))
                     .where(d.day >= first_day)
                     .group_by(d.dimension, d.value, d.language, d.scope)).all()
    return [DemandRow(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]) for r in rows]
