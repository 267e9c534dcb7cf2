"""Assets: list with filters and cursor pagination, read one, delete one. What is read, and what a rep may see,
is ``service.store.assets``'s; these routes check the key and shape the answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import StringConstraints

from service.api.auth import require, scope_of
from service.api.cursors import CursorParam, decode_cursor, encode_cursor
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.schemas import AssetDetail, AssetPage, AssetSummary, AuditPage
from service.auth.keys import Principal
from service.auth.roles import allows
from service.core.fields import INT32_MAX, NO_CONTROL_CHARS
from service.runtime import Components
from service.store import assets as asset_store
from service.store import audit
from service.store.assets import AssetFilters, Reader

router = APIRouter(prefix="/v1/assets", tags=["assets"])

# ``dimension:value``, both parts non-empty; the spec says so, so a client learns it before it asks.
TagFilter = Annotated[str, StringConstraints(pattern=r"^[^:\x00-\x1f\x7f]+:[^\x00-\x1f\x7f]+$", max_length=200)]
ReadApproved = Annotated[Principal, Depends(require("assets:read_approved"))]


def _reader(principal: Principal, c: Components) -> Reader:
    """Staff read everything; a key that may only read approved content reads as a rep, within its scope."""
    if allows(principal.role, "assets:read"):
        return asset_store.STAFF
    return Reader(rep=True, scope=scope_of(principal, c))


@router.get("", response_model=AssetPage, summary="List assets (reps: approved, unexpired only)")
def list_assets(
    c: ComponentsDep, s: SessionDep, principal: ReadApproved,
    tag: Annotated[list[TagFilter], Query(description="dimension:value; repeat to require several")] = [],  # noqa: B006
    source: Literal["internal", "external"] | None = None,
    language: Literal["zh", "en", "mixed"] | None = None,
    format: Literal["pdf", "docx", "pptx", "html", "markdown", "txt", "news"] | None = None,
    approval_status: Literal["draft", "in_review", "approved", "withdrawn"] | None = None,
    needs_review: bool | None = None,
    expires_within: Annotated[int | None, Query(ge=0, le=3650, description=(
        "Only content still valid today that lapses within this many days (an expiring-soon list)"))] = None,
    q: Annotated[str | None, Query(max_length=500, pattern=NO_CONTROL_CHARS,
                                   description="Text in the title or body")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> AssetPage:
    today = date.today()
    filters = AssetFilters(tags=[(d, v) for d, _, v in (t.partition(":") for t in tag)], source=source,
                           language=language, format=format, approval_status=approval_status,
                           needs_review=needs_review, text=q,
                           expiring=None if expires_within is None else (today, today + timedelta(days=expires_within)))
    page = asset_store.list_assets(s, filters, _reader(principal, c), limit, decode_cursor(cursor) if cursor else None)
    return AssetPage(items=[AssetSummary.model_validate(a) for a in page.assets],
                     next_cursor=encode_cursor(page.assets[-1].id) if page.more and page.assets else None)


@router.get("/{asset_id}", response_model=AssetDetail, summary="One asset with its tags, versions and chunks")
def get_asset(c: ComponentsDep, s: SessionDep, principal: ReadApproved, asset_id: RecordIdPath) -> AssetDetail:
    asset = asset_store.read_asset(s, asset_id, _reader(principal, c))
    if asset is None:  # an unapproved or out-of-scope asset is as absent to a rep as a missing one
        raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")
    return AssetDetail.model_validate(asset)


@router.get("/{asset_id}/history", response_model=AuditPage,
            summary="What happened to an asset and its tags, by whom, newest first (staff)")
def asset_history(s: SessionDep, _: Annotated[Principal, Depends(require("assets:read"))], asset_id: RecordIdPath,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  cursor: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None) -> AuditPage:
    if not asset_store.asset_exists(s, asset_id):  # not read_asset: its chunks, tags and versions are not needed
        raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")
    rows = audit.asset_history(s, asset_id, limit + 1, before=cursor)
    return AuditPage.of(rows, limit)


@router.delete("/{asset_id}", status_code=204, summary="Delete an asset, its versions, tags and vectors")
def delete_asset(c: ComponentsDep, s: SessionDep, principal: Annotated[Principal, Depends(require("assets:write"))],
                 asset_id: RecordIdPath) -> None:
    if not asset_store.delete_asset(s, c.vectors, asset_id, principal.key_id, principal.role):
        raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")
