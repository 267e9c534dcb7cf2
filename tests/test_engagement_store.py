"""The events table on every backend, with the same assertions: an import stores each id once and reads back the
same events (times in UTC, whatever offset they came with), and an erasure leaves nothing of the doctor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select

from service.core.taxonomy import load_taxonomy
from service.engagement.importer import import_events
from service.engagement.rules import default_rules
from service.store import hcps
from service.store.db import Database
from service.store.hcp_models import HcpEvent, HcpRecord
from service.store.models import Asset

from .api_helpers import ROOT

TAXONOMY = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")


def test_an_import_stores_each_event_once_with_its_time_in_utc_and_an_erasure_leaves_nothing(
        database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        s.execute(insert(Asset), [{"id": "a1", "title": "t", "language": "en", "source": "internal", "format": "pdf",
                                   "approval_status": "approved", "extra": {}}])
    when = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    beijing = when.astimezone(timezone(timedelta(hours=8))).isoformat()  # the same moment, +08:00
    export = tmp_path / "events.csv"
    export.write_text("id,hcp_id,asset_id,action,channel,dwell_seconds,occurred_at\n"
                      f"x1,hcp-1,a1,opened,online,,{when.isoformat()}\n"
                      f"x2,hcp-1,a1,viewed,online,45,{beijing}\n"
                      f"x1,hcp-1,a1,opened,online,,{when.isoformat()}\n"
                      f"x3,hcp-2,a1,sent,face_to_face,,{when.isoformat()}\n", encoding="utf-8")
    first = import_events(db, export, TAXONOMY, default_rules(), 730)
    again = import_events(db, export, TAXONOMY, default_rules(), 730)
    assert (first.stored, first.duplicates) == (3, 1)
    assert (again.stored, again.duplicates) == (0, 4)
    with db.session() as s:
        events = hcps.events_of(s, "hcp-1")
        assert [(e.action, e.dwell_seconds, e.occurred_at) for e in events] == [("opened", None, when),
                                                                                   ("viewed", 45.0, when)]
        assert all(e.occurred_at.tzinfo is not None for e in events)
        hcps.put_record(s, "hcp-1", {"department": ["cardiology"]}, "test", "admin")
    with db.session() as s:
        assert hcps.erase(s, "hcp-1", "test", "admin", "hcp.erase") == {"events": 2, "records": 1,
                                                                       "suggestions": 0}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(HcpEvent).where(HcpEvent.hcp_id == "hcp-1")) == 0
        assert s.get(HcpRecord, "hcp-1") is None
        assert s.scalar(select(func.count()).select_from(HcpEvent)) == 1  # the other doctor's is kept
    db.dispose()
