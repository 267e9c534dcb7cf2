"""Assets: list with filters and cursor pagination, read one, delete one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import StringConstraints
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from service.api.auth import require, scope_of
from service.api.cursors import CursorParam, decode_cursor, encode_cursor
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.schemas import AssetDetail, AssetPage, AssetSummary, ChunkOut, VersionOut
from service.auth.keys import Principal
from service.auth.roles import allows
from service.core.fields import NO_CONTROL_CHARS
from service.runtime import Components
from service.store import assets as asset_store
from service.store.models import Asset, AssetTag, Chunk
from service.store.visibility import ACTIVE_TAG, rep_visible

router = APIRouter(prefix="/v1/assets", tags=["assets"])

# ``dimension:value``, both parts non-empty; the spec says so, so a client learns it before it asks.
TagFilter = Annotated[str, StringConstraints(pattern=r"^[^:\x00-\x1f\x7f]+:[^\x00-\x1f\x7f]+$", max_length=200)]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _tags(s: Session, asset_ids: list[str], reps_only: bool) -> dict[str, list[AssetTag]]:
    out: dict[str, list[AssetTag]] = {a: [] for a in asset_ids}
    if not asset_ids:
        return out
    q = select(AssetTag).where(AssetTag.asset_id.in_(asset_ids)).order_by(AssetTag.dimension, AssetTag.id)
    if reps_only:
        q = q.where(AssetTag.status.in_(ACTIVE_TAG))
    for t in s.scalars(q):
        out[t.asset_id].append(t)
    return out


def _list(c: Components, principal: Principal, tag: list[str], source: str | None, language: str | None,
          fmt: str | None, approval_status: str | None, needs_review: bool | None, q: str | None, limit: int,
          cursor: str | None) -> AssetPage:
    query = select(Asset).order_by(Asset.id).limit(limit + 1)
    reps_only = not allows(principal.role, "assets:read")
    if reps_only:
        query = query.where(rep_visible(scope_of(principal, c)))
    if cursor:
        query = query.where(Asset.id > decode_cursor(cursor))
    for item in tag:
        dim, _, value = item.partition(":")
        query = query.where(exists().where(AssetTag.asset_id == Asset.id, AssetTag.dimension == dim,
                                           AssetTag.value == value, AssetTag.status.in_(ACTIVE_TAG)))
    for column, wanted in ((Asset.source, source), (Asset.language, language), (Asset.format, fmt),
                           (Asset.approval_status, approval_status)):
        if wanted is not None:
            query = query.where(column == wanted)
    if needs_review is not None:
        flagged = exists().where(AssetTag.asset_id == Asset.id, AssetTag.needs_review.is_(True),
                                 AssetTag.status == "proposed")
        query = query.where(flagged if needs_review else ~flagged)
    if q:
        pattern = _like(q)
        query = query.where(or_(Asset.title.ilike(pattern, escape="\\"),
                                exists().where(Chunk.asset_id == Asset.id, Chunk.version == Asset.current_version,
                                               Chunk.text.ilike(pattern, escape="\\"))))
    with c.db.session() as s:
        rows = list(s.scalars(query))
        page, more = rows[:limit], len(rows) > limit
        tags = _tags(s, [a.id for a in page], reps_only)
        items = [AssetSummary.of(a, tags[a.id]) for a in page]
    return AssetPage(items=items, next_cursor=encode_cursor(page[-1].id) if more and page else None)


@router.get("", response_model=AssetPage, summary="List assets (reps: approved, unexpired only)")
async def list_assets(
    c: ComponentsDep,
    principal: Annotated[Principal, Depends(require("assets:read_approved"))],
    tag: Annotated[list[TagFilter], Query(description="dimension:value; repeat to require several")] = [],  # noqa: B006
    source: Literal["internal", "external"] | None = None,
    language: Literal["zh", "en", "mixed"] | None = None,
    format: Literal["pdf", "docx", "pptx", "html", "markdown", "txt", "news"] | None = None,
    approval_status: Literal["draft", "in_review", "approved", "withdrawn"] | None = None,
    needs_review: bool | None = None,
    q: Annotated[str | None, Query(max_length=500, pattern=NO_CONTROL_CHARS,
                                   description="Text in the title or body")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> AssetPage:
    return await run_in_threadpool(_list, c, principal, tag, source, language, format, approval_status,
                                   needs_review, q, limit, cursor)


def _get(c: Components, principal: Principal, asset_id: str) -> AssetDetail:
    reps_only = not allows(principal.role, "assets:read")
    with c.db.session() as s:
        query = select(Asset).where(Asset.id == asset_id)
        if reps_only:
            query = query.where(rep_visible(scope_of(principal, c)))
        asset = s.scalar(query)
        if asset is None:  # an unapproved or out-of-scope asset is as absent to a rep as a missing one
            raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")
        tags = _tags(s, [asset.id], reps_only)[asset.id]
        summary = AssetSummary.of(asset, tags)
        return AssetDetail(**summary.model_dump(), uri=asset.uri, approval_code=asset.approval_code,
                           owner=asset.owner, versions=[VersionOut.of(v) for v in asset.versions],
                           chunks=[ChunkOut.of(ch) for ch in asset.chunks if ch.version == asset.current_version])


@router.get("/{asset_id}", response_model=AssetDetail, summary="One asset with its tags, versions and chunks")
async def get_asset(c: ComponentsDep, principal: Annotated[Principal, Depends(require("assets:read_approved"))],
                    asset_id: RecordIdPath) -> AssetDetail:
    return await run_in_threadpool(_get, c, principal, asset_id)


def _delete(c: Components, principal: Principal, asset_id: str) -> None:
    if not asset_store.delete_asset(c.db, c.vectors, asset_id, principal.key_id, principal.role):
        raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")


@router.delete("/{asset_id}", status_code=204, summary="Delete an asset, its versions, tags and vectors")
async def delete_asset(c: ComponentsDep, principal: Annotated[Principal, Depends(require("assets:write"))],
                       asset_id: RecordIdPath) -> None:
    await run_in_threadpool(_delete, c, principal, asset_id)

