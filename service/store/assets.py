"""Assets: list with filters and keyset pagination, read one, delete one (audited). The API's routes and the
CLI both read through here; a rep sees only what ``store.visibility.rep_visible`` lets through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import LoaderOption

from service.store import audit
from service.store.models import Asset, AssetTag, Chunk
from service.store.vectors import VectorStore, Where
from service.store.visibility import ACTIVE_TAG, Scope, rep_visible


@dataclass(frozen=True)
class Reader:
    """Who reads: staff see every asset and tag; a rep only approved, unexpired assets in ``scope`` and their
    active tags."""

    rep: bool = False
    scope: Scope | None = None


STAFF = Reader()


@dataclass(frozen=True)
class AssetFilters:
    tags: Sequence[tuple[str, str]] = ()  # (dimension, value), all required, active tags only
    source: str | None = None
    language: str | None = None
    format: str | None = None
    approval_status: str | None = None
    needs_review: bool | None = None  # has (or has no) proposal flagged for review
    text: str | None = None  # in the title or the current version's text
    expiring: tuple[date, date] | None = None  # valid until a day in [first, last]: what lapses soon


@dataclass(frozen=True)
class AssetPage:
    assets: list[Asset]  # each with ``tags`` loaded as the reader may see them
    more: bool


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tags_for(reader: Reader) -> LoaderOption:
    return selectinload(Asset.tags.and_(AssetTag.status.in_(ACTIVE_TAG)) if reader.rep else Asset.tags)


def _visible(query: Select[Asset], reader: Reader) -> Select[Asset]:
    return query.where(rep_visible(reader.scope)) if reader.rep else query


def list_assets(s: Session, filters: AssetFilters, reader: Reader, limit: int, after: str | None = None) -> AssetPage:
    """Up to ``limit`` assets in id order after the id ``after``."""
    query = _visible(select(Asset).order_by(Asset.id).limit(limit + 1).options(_tags_for(reader)), reader)
    if after:
        query = query.where(Asset.id > after)
    for dim, value in filters.tags:
        query = query.where(exists().where(AssetTag.asset_id == Asset.id, AssetTag.dimension == dim,
                                           AssetTag.value == value, AssetTag.status.in_(ACTIVE_TAG)))
    for column, wanted in ((Asset.source, filters.source), (Asset.language, filters.language),
                           (Asset.format, filters.format), (Asset.approval_status, filters.approval_status)):
        if wanted is not None:
            query = query.where(column == wanted)
    if filters.expiring is not None:
        query = query.where(Asset.valid_until.is_not(None), Asset.valid_until.between(*filters.expiring))
    if filters.needs_review is not None:
        flagged = exists().where(AssetTag.asset_id == Asset.id, AssetTag.needs_review.is_(True),
                                 AssetTag.status == "proposed")
        query = query.where(flagged if filters.needs_review else ~flagged)
    if filters.text:
        pattern = _like(filters.text)
        query = query.where(or_(Asset.title.ilike(pattern, escape="\\"),
                                exists().where(Chunk.asset_id == Asset.id, Chunk.version == Asset.current_version,
                                               Chunk.text.ilike(pattern, escape="\\"))))
    rows = list(s.scalars(query))
    return AssetPage(rows[:limit], len(rows) > limit)


def read_asset(s: Session, asset_id: str, reader: Reader = STAFF) -> Asset | None:
    """One asset with its versions, the tags the reader may see, and the current version's chunks as ``chunks``;
    None when it does not exist or the reader may not see it (the two look the same to a rep). For reading: its
    ``tags`` and ``chunks`` are what was asked for, not every row, so do not delete it through this session."""
    query = _visible(select(Asset).where(Asset.id == asset_id), reader)
    asset = s.scalar(query.options(_tags_for(reader), selectinload(Asset.versions)))
    if asset is not None:
        current = s.scalars(select(Chunk).where(Chunk.asset_id == asset_id, Chunk.version == asset.current_version)
                            .order_by(Chunk.ordinal))
        set_committed_value(asset, "chunks", list(current))  # loaded, not a change: nothing is written back
    return asset


def asset_exists(s: Session, asset_id: str) -> bool:
    """Whether the asset exists (any state): a primary-key lookup, nothing else loaded."""
    return s.get(Asset, asset_id) is not None


def delete_asset(s: Session, vectors: VectorStore, asset_id: str, actor: str, role: str) -> bool:
    """Delete the asset in ``s`` with its audit entry; False when there is no such asset."""
    asset = s.get(Asset, asset_id)
    if asset is None:
        return False
    before = {"title": asset.title, "uri": asset.uri, "approval_status": asset.approval_status,
              "versions": len(asset.versions)}
    # vectors first: a failure after this leaves rows without vectors (invisible to matching, fixed by
    # `hcp-content reindex`), never vectors pointing at a deleted asset
    vectors.delete_where(Where(equals={"asset_id": asset_id}))
    s.delete(asset)
    audit.record(s, actor, role, "asset.delete", "asset", asset_id, before, None)
    return True
