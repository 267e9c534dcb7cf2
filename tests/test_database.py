from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.store.db import Database, downgrade, upgrade
from service.store.models import Asset, AssetVersion, Chunk


def make_asset(asset_id: str = "a1") -> Asset:
    asset = Asset(id=asset_id, title="SGLT2 抑制剂心衰研究摘要 / HF outcomes", language="mixed", source="internal",
                  format="pdf", uri="samples/hf.pdf", product="Cardiozen", approval_code="CZ-2026-001",
                  approval_status="approved", valid_until=date(2027, 6, 30), owner="med-affairs",
                  extra={"tags": ["心衰", "heart failure"]})
    asset.versions.append(AssetVersion(version=1, content_hash="h" * 64, size_bytes=1234))
    asset.chunks.extend([
        Chunk(id=f"{asset_id}:1:0", version=1, ordinal=0, text="主要终点：心衰住院或心血管死亡降低 25%。", page=1,
              char_start=0, char_end=21, token_count=18),
        Chunk(id=f"{asset_id}:1:1", version=1, ordinal=1, text="Safety: no excess hypoglycaemia.", page=2,
              section="Safety", char_start=21, char_end=53, token_count=7),
    ])
    return asset


def test_migrations_create_the_schema_and_roundtrip_bilingual_records(database_url):
    db = Database(database_url)
    db.migrate()
    assert {"assets", "asset_versions", "chunks", "alembic_version"} <= set(db.tables())
    with db.session() as s:
        s.add(make_asset())
    with db.session() as s:
        asset = s.get(Asset, "a1")
        assert asset is not None
        assert asset.title.startswith("SGLT2 抑制剂")
        assert asset.valid_until == date(2027, 6, 30)
        assert asset.extra == {"tags": ["心衰", "heart failure"]}
        assert [c.page for c in asset.chunks] == [1, 2]
        assert asset.chunks[0].text == "主要终点：心衰住院或心血管死亡降低 25%。"
        assert asset.created_at is not None
    db.dispose()


def test_the_same_content_cannot_be_stored_twice_and_a_failed_write_harms_nothing(database_url):
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        s.add(make_asset())
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(AssetVersion(asset_id="a1", version=2, content_hash="h" * 64, size_bytes=1))
    with db.session() as s:
        assert s.scalars(select(AssetVersion)).all()[0].version == 1
        assert len(s.scalars(select(Chunk)).all()) == 2
    db.dispose()


def test_deleting_an_asset_removes_its_versions_and_chunks(database_url):
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        s.add_all([make_asset("a1"), make_asset("a2")])
    with db.session() as s:
        s.delete(s.get(Asset, "a1"))
    with db.session() as s:
        assert {c.asset_id for c in s.scalars(select(Chunk))} == {"a2"}
        assert {v.asset_id for v in s.scalars(select(AssetVersion))} == {"a2"}
    db.dispose()


def test_migrations_go_down_and_up_again(database_url):
    upgrade(database_url)
    downgrade(database_url, "base")
    db = Database(database_url)
    assert "assets" not in db.tables()
    db.migrate()
    assert "assets" in db.tables()
    assert db.ping() < 5
    db.dispose()


def test_plain_postgresql_urls_use_the_psycopg_driver_and_passwords_stay_out_of_descriptions(tmp_path):
    from service.store.db import normalise_url, redact

    assert normalise_url("postgresql://u:secret@db:5432/hcp").startswith("postgresql+psycopg://u:secret@db")
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.dialect == "sqlite"
    assert "secret" not in redact("postgresql+psycopg://u:secret@db/hcp")


def test_timestamps_come_back_in_utc_with_their_zone(database_url):
    """SQLite keeps no time zone; the API must still say which one (RFC 3339 date-times need an offset)."""
    db = Database(database_url)
    db.migrate()
    shanghai = timezone(timedelta(hours=8))
    with db.session() as s:
        s.add(Asset(id="a_tz", title="t", language="en", source="internal", format="txt",
                    updated_at=datetime(2026, 11, 23, 10, 0, tzinfo=shanghai)))
    with db.session() as s:
        asset = s.get(Asset, "a_tz")
        assert asset is not None
        assert asset.updated_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        assert asset.updated_at.utcoffset() == timedelta(0)
        # as pydantic writes it in every API response: with its offset
        assert TypeAdapter(datetime).dump_python(asset.created_at, mode="json").endswith("Z")
