"""HCP records, engagement events and suggestions: writes, the reads profiles and rankers need, and erasure.

Events are inserted with ON CONFLICT DO NOTHING on their id, so a batch sent twice, or an import killed half way
and run again, leaves the same table. An erasure deletes every row that names the HCP in the caller's transaction,
with an audit entry that holds counts only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, or_, select
from sqlalchemy.orm import Session

from service.store import audit
from service.store.hcp_models import HcpEvent, HcpRecord, HcpSuggestion
from service.store.models import Asset, AssetTag, as_utc
from service.store.visibility import ACTIVE_TAG

EVENT_COLUMNS = ("id", "hcp_id", "asset_id", "action", "channel", "dwell_seconds", "occurred_at", "suggestion_id",
                 "reason")


@dataclass(frozen=True)
class StoredEvent:
    hcp_id: str
    asset_id: str
    action: str
    channel: str | None
    dwell_seconds: float | None
    occurred_at: datetime


def insert_events(s: Session, rows: Sequence[Sequence[Any]]) -> int:
    """Insert events (tuples in EVENT_COLUMNS' order); an id already stored is skipped. Returns how many were new.

    The rows go to the driver as they are, bound by the columns' own types (what SQLAlchemy would store): the
    ORM's statement building cost more than SQLite's insert itself. PostgreSQL takes them by COPY into a
    temporary table and one INSERT … ON CONFLICT DO NOTHING from it."""
    if not rows:
        return 0
    table = HcpEvent.__table__
    assert isinstance(table, Table)
    connection = s.connection()
    dialect = connection.dialect
    binders = [(n, bind) for n, name in enumerate(EVENT_COLUMNS)
               if (bind := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    values = []
    for r in rows:
        row = list(r)
        for n, bind in binders:
            if row[n] is not None:
                row[n] = bind(row[n])
        values.append(row)
    columns = ", ".join(EVENT_COLUMNS)
    raw = connection.connection.dbapi_connection
    assert raw is not None
    if dialect.name == "postgresql":
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS hcp_events_in (LIKE hcp_events) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY hcp_events_in ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            cur.execute(f"INSERT INTO hcp_events ({columns}) SELECT DISTINCT ON (id) {columns} FROM hcp_events_in "
                        "ORDER BY id ON CONFLICT (id) DO NOTHING")
            inserted = cur.rowcount
            cur.execute("DELETE FROM hcp_events_in")
        return int(inserted)
    before = raw.total_changes  # type: ignore[attr-defined]
    marks = ", ".join("?" for _ in EVENT_COLUMNS)
    raw.cursor().executemany(f"INSERT OR IGNORE INTO hcp_events ({columns}) VALUES ({marks})", values)
    return int(raw.total_changes - before)  # type: ignore[attr-defined]


def resolve_assets(s: Session, asset_ids: Iterable[str], urls: Iterable[str]) -> tuple[set[str], dict[str, str]]:
    """Which asset ids exist, and the asset each URL names: an asset whose source is that URL, or a news item
    whose feed gave it that id or link (its source key ends in `#<url>`)."""
    ids = sorted(set(asset_ids))
    known = set(s.scalars(select(Asset.id).where(Asset.id.in_(ids)))) if ids else set()
    by_url: dict[str, str] = {}
    wanted = sorted(set(urls))
    for chunk in range(0, len(wanted), 200):
        part = wanted[chunk:chunk + 200]
        clauses = [Asset.uri.in_(part)] + [Asset.uri.like(f"%#{u}") for u in part]
        for asset_id, uri in s.execute(select(Asset.id, Asset.uri).where(or_(*clauses))):
            for url in part:
                if uri == url or (uri or "").endswith("#" + url):
                    by_url[url] = asset_id
    return known, by_url


def asset_ids(s: Session) -> set[str]:
    return set(s.scalars(select(Asset.id)))


# what a profile and the ranker read of an event, in StoredEvent's order
_READ = (HcpEvent.hcp_id, HcpEvent.asset_id, HcpEvent.action, HcpEvent.channel, HcpEvent.dwell_seconds,
         HcpEvent.occurred_at)


def _stored(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(row[0], row[1], row[2], row[3], row[4], as_utc(row[5]))


def events_of(s: Session, hcp_id: str) -> list[StoredEvent]:
    return events_of_many(s, [hcp_id])[hcp_id]


def events_of_many(s: Session, hcp_ids: Iterable[str]) -> dict[str, list[StoredEvent]]:
    """Each HCP's events, oldest first, in one query per 500 HCPs."""
    ids = sorted(set(hcp_ids))
    out: dict[str, list[StoredEvent]] = {h: [] for h in ids}
    for start in range(0, len(ids), 500):
        query = select(*_READ).where(HcpEvent.hcp_id.in_(ids[start:start + 500])).order_by(HcpEvent.occurred_at)
        for r in s.execute(query):
            out[r[0]].append(_stored(r))
    return out


def all_events(s: Session) -> list[StoredEvent]:
    """Every event: what the ranker is fitted on."""
    return [_stored(r) for r in s.execute(select(*_READ))]


def resting_assets(s: Session, hcp_id: str, now: datetime, cooldown_days: float) -> set[str]:
    return resting_of_many(s, [hcp_id], now, cooldown_days)[hcp_id]


def resting_of_many(s: Session, hcp_ids: Iterable[str], now: datetime, cooldown_days: float
                    ) -> dict[str, set[str]]:
    """Assets not to suggest to each HCP now: sent within the cooldown, or ever dismissed (one query per 500)."""
    ids = sorted(set(hcp_ids))
    out: dict[str, set[str]] = {h: set() for h in ids}
    since = now - timedelta(days=cooldown_days)
    for start in range(0, len(ids), 500):
        rows = s.execute(select(HcpEvent.hcp_id, HcpEvent.asset_id).where(
            HcpEvent.hcp_id.in_(ids[start:start + 500]),
            or_(HcpEvent.action == "dismissed", (HcpEvent.action == "sent") & (HcpEvent.occurred_at >= since))))
        for hcp, asset in rows:
            out[hcp].add(asset)
    return out


def put_record(s: Session, hcp_id: str, attributes: dict[str, list[str]], actor: str, role: str) -> bool:
    """Store the HCP's static attributes (replacing them); True when the record is new. The audit entry names
    the dimensions changed, not their values."""
    row = s.get(HcpRecord, hcp_id)
    created = row is None
    before = None if row is None else sorted(row.attributes)
    if row is None:
        row = HcpRecord(hcp_id=hcp_id, attributes=attributes)
        s.add(row)
    else:
        row.attributes = attributes
    audit.record(s, actor, role, "hcp.put", "hcp", hcp_id, None if before is None else {"dimensions": before},
                 {"dimensions": sorted(attributes)})
    return created


def read_record(s: Session, hcp_id: str) -> HcpRecord | None:
    return s.get(HcpRecord, hcp_id)


def records(s: Session, hcp_ids: Iterable[str] | None = None) -> dict[str, dict[str, list[str]]]:
    query = select(HcpRecord.hcp_id, HcpRecord.attributes)
    if hcp_ids is not None:
        query = query.where(HcpRecord.hcp_id.in_(sorted(set(hcp_ids))))
    return {r[0]: dict(r[1]) for r in s.execute(query)}


def add_suggestions(s: Session, rows: Sequence[tuple[str, str, str]]) -> None:
    """(suggestion id, hcp id, asset id) of each suggestion shown."""
    s.add_all(HcpSuggestion(id=i, hcp_id=h, asset_id=a) for i, h, a in rows)


def read_suggestion(s: Session, suggestion_id: str) -> HcpSuggestion | None:
    return s.get(HcpSuggestion, suggestion_id)


def holds_anything(s: Session, hcp_id: str) -> bool:
    return any(s.scalar(select(func.count()).select_from(model).where(model.hcp_id == hcp_id))
               for model in (HcpEvent, HcpRecord, HcpSuggestion))


def erase_rows(s: Session, hcp_id: str) -> dict[str, int]:
    """Delete every event, record and suggestion of this HCP, in the caller's transaction; how many of each."""
    counts = {}
    for name, model in (("events", HcpEvent), ("records", HcpRecord), ("suggestions", HcpSuggestion)):
        result = s.execute(delete(model).where(model.hcp_id == hcp_id))
        counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts


def erase(s: Session, hcp_id: str, actor: str, role: str, action: str) -> dict[str, int]:
    """erase_rows with its audit entry, which holds the counts and nothing of what was deleted."""
    counts = erase_rows(s, hcp_id)
    audit.record(s, actor, role, action, "hcp", hcp_id, None, {"erased": counts})
    return counts


def purge_events_before(s: Session, cutoff: datetime) -> int:
    """Delete events that happened before `cutoff` (HCP_EVENT_RETENTION_DAYS)."""
    result = s.execute(delete(HcpEvent).where(HcpEvent.occurred_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)



def published_days(s: Session) -> dict[str, date]:
    """Each asset's publication date, where its metadata gives one (the ranker's item age)."""
    rows = s.execute(select(Asset.id, Asset.published_at).where(Asset.published_at.isnot(None)))
    return {asset_id: published for asset_id, published in rows if published is not None}


def current_tags(s: Session, asset_ids: Iterable[str] | None = None, min_confidence: float = 0.5
                 ) -> dict[str, dict[str, list[str]]]:
    """Each asset's active tags of its current version, at or above `min_confidence` (accepted tags always):
    what a profile learns an event was about."""
    query = (select(AssetTag.asset_id, AssetTag.dimension, AssetTag.value)
             .join(Asset, (Asset.id == AssetTag.asset_id) & (Asset.current_version == AssetTag.version))
             .where(AssetTag.status.in_(ACTIVE_TAG),
                    (AssetTag.status == "accepted") | (AssetTag.confidence >= min_confidence)))
    out: dict[str, dict[str, list[str]]] = {}
    ids = None if asset_ids is None else sorted(set(asset_ids))
    parts = [None] if ids is None else [ids[i:i + 500] for i in range(0, len(ids), 500)]
    for part in parts:
        bounded = query if part is None else query.where(AssetTag.asset_id.in_(part))
        for asset_id, dim, value in s.execute(bounded):
            values = out.setdefault(asset_id, {}).setdefault(dim, [])
            if value not in values:
                values.append(value)
    return out
