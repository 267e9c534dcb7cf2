"""Tag review: accept, reject or edit a tag. Reviewed tags are gold labels and training examples."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from service.api.auth import require
from service.api.cursors import CursorParam, decode_cursor, encode_cursor
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath, TagIdPath
from service.api.schemas import AddTagRequest, JobOut, QueueAsset, ReviewOut, ReviewQueue, ReviewRequest, TagOut
from service.auth.keys import Principal
from service.core.taxonomy import ID_PATTERN, Taxonomy
from service.jobs.queue import create_job
from service.runtime import Components
from service.store import audit
from service.store.models import Asset, AssetTag, Job, TagReview, utcnow
from service.store.visibility import sync_scope_payload

router = APIRouter(prefix="/v1", tags=["review"])


def _check_value(taxonomy: Taxonomy, dimension: str, value: str) -> None:
    if not taxonomy.has(dimension, value):
        dim = next((d for d in taxonomy.dimensions if d.id == dimension), None)
        raise ApiError(422, "unknown_value", f"{value!r} is not a value of dimension {dimension!r}.",
                       {"allowed": dim.value_ids if dim else [d.id for d in taxonomy.dimensions]})


def _mark_reviewed(tag: AssetTag, status: str, principal: Principal, now: datetime, comment: str | None) -> None:
    tag.status, tag.needs_review = status, False
    tag.reviewed_by, tag.reviewed_at, tag.review_comment = principal.key_id, now, comment


def _accept_value(s: Session, asset_id: str, version: int, dimension: str, value: str, taxonomy_version: str,
                  principal: Principal, now: datetime, comment: str | None) -> tuple[AssetTag, str | None]:
    """The asset's tag with this value, accepted: the engine's proposal when it made one, else a human tag;
    with the tag's status before (None when it is new)."""
    tag = s.scalar(select(AssetTag).where(AssetTag.asset_id == asset_id, AssetTag.dimension == dimension,
                                          AssetTag.value == value, AssetTag.status != "edited"))
    previous = tag.status if tag is not None else None
    if tag is None:
        tag = AssetTag(asset_id=asset_id, version=version, dimension=dimension, value=value, confidence=1.0,
                       method="human", evidence=None, evidence_verified=False, taxonomy_version=taxonomy_version,
                       prompt_version=None, models={}, signals={}, tagging_status="human")
        s.add(tag)
    _mark_reviewed(tag, "accepted", principal, now, comment)
    return tag, previous


def _review(c: Components, principal: Principal, tag_id: int, body: ReviewRequest) -> ReviewOut:
    with c.db.session() as s:
        tag = s.get(AssetTag, tag_id)
        if tag is None:
            raise ApiError(404, "tag_not_found", f"No tag {tag_id}.")
        if tag.status == "edited":
            raise ApiError(409, "tag_replaced", "This tag was replaced by an edit; review the replacement.")
        if body.action == "edit":
            if not body.value:
                raise ApiError(422, "value_required", "An edit needs the corrected `value`.")
            _check_value(c.tagger.taxonomy, tag.dimension, body.value)
            if body.value == tag.value:
                raise ApiError(422, "same_value", "The edit keeps the same value; accept the tag instead.")
        elif body.value is not None:
            raise ApiError(422, "unexpected_value", "Only an edit takes a `value`.")
        before = {"value": tag.value, "status": tag.status, "confidence": tag.confidence}
        now = utcnow()
        _mark_reviewed(tag, {"accept": "accepted", "reject": "rejected", "edit": "edited"}[body.action], principal,
                       now, body.comment)
        replacement = None
        if body.action == "edit":
            assert body.value is not None
            replacement, _ = _accept_value(s, tag.asset_id, tag.version, tag.dimension, body.value,
                                        tag.taxonomy_version, principal, now, body.comment)
        s.add(TagReview(tag_id=tag.id, asset_id=tag.asset_id, dimension=tag.dimension, action=body.action,
                        value_before=tag.value, value_after=body.value if body.action == "edit" else tag.value,
                        confidence=tag.confidence, method=tag.method, comment=body.comment,
                        reviewer=principal.key_id, at=now))
        audit.record(s, principal.key_id, principal.role, f"tag.{body.action}", "tag", str(tag.id), before,
                     {"value": body.value or tag.value, "status": tag.status, "comment": body.comment})
        s.flush()
        sync_scope_payload(s, c.vectors, [tag.asset_id], c.tagger.taxonomy)  # a product tag can move scopes
        out = ReviewOut(tag=TagOut.of(tag), replaced_by=TagOut.of(replacement) if replacement else None)
    out.retrain_job = _maybe_retrain(c, principal)
    return out


def _add(c: Components, principal: Principal, asset_id: str, body: AddTagRequest) -> ReviewOut:
    """A value the engine missed, added by a reviewer: a gold label like an accepted proposal."""
    taxonomy = c.tagger.taxonomy
    _check_value(taxonomy, body.dimension, body.value)
    now = utcnow()
    with c.db.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None:
            raise ApiError(404, "asset_not_found", f"No asset {asset_id!r}.")
        tag, previous = _accept_value(s, asset_id, asset.current_version, body.dimension, body.value, taxonomy.key,
                                      principal, now, body.comment)
        before = None if previous is None else {"value": body.value, "status": previous}
        s.flush()
        s.add(TagReview(tag_id=tag.id, asset_id=asset_id, dimension=body.dimension, action="add",
                        value_before=body.value, value_after=body.value, confidence=None, method="human",
                        comment=body.comment, reviewer=principal.key_id, at=now))
        audit.record(s, principal.key_id, principal.role, "tag.add", "tag", str(tag.id), before,
                     {"asset_id": asset_id, "dimension": body.dimension, "value": body.value})
        s.flush()
        sync_scope_payload(s, c.vectors, [asset_id], taxonomy)
        out = ReviewOut(tag=TagOut.of(tag))
    out.retrain_job = _maybe_retrain(c, principal)
    return out


@router.post("/assets/{asset_id}/tags", response_model=ReviewOut, status_code=201,
             summary="Add a tag the engine missed (a reviewed gold label)")
async def add_tag(asset_id: RecordIdPath, body: AddTagRequest, c: ComponentsDep,
                  principal: Annotated[Principal, Depends(require("tags:review"))]) -> ReviewOut:
    return await run_in_threadpool(_add, c, principal, asset_id, body)


def _maybe_retrain(c: Components, principal: Principal) -> str | None:
    """Queue a retraining once enough reviews arrived since the last one (and none is waiting)."""
    with c.db.session() as s:
        pending = s.scalar(select(Job.id).where(Job.kind == "retrain", Job.status.in_(("queued", "running"))))
        if pending is not None:
            return None
        last = s.scalar(select(Job.created_at).where(Job.kind == "retrain").order_by(Job.created_at.desc()))
        q = select(func.count()).select_from(TagReview)
        if last is not None:
            q = q.where(TagReview.at > last)
        if (s.scalar(q) or 0) < c.settings.retrain_after_reviews:
            return None
    return _queue_retrain(c, principal)


def _queue_retrain(c: Components, principal: Principal) -> str:
    job_id = create_job(c.db, "retrain", (principal.key_id, principal.role), {"role": principal.role},
                        [("reviewed tags", None)])
    if c.worker is not None:
        c.worker.notify()
    return job_id


@router.post("/tags/{tag_id}/review", response_model=ReviewOut, summary="Accept, reject or edit a tag")
async def review_tag(tag_id: TagIdPath, body: ReviewRequest, c: ComponentsDep,
                     principal: Annotated[Principal, Depends(require("tags:review"))]) -> ReviewOut:
    return await run_in_threadpool(_review, c, principal, tag_id, body)


def _retrain_now(c: Components, principal: Principal) -> JobOut:
    job_id = _queue_retrain(c, principal)
    with c.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return JobOut.of(job)


@router.post("/tagging/retrain", status_code=202, response_model=JobOut,
             summary="Retrain the learned heads and calibration on every reviewed tag now")
async def retrain(c: ComponentsDep, principal: Annotated[Principal, Depends(require("tags:review"))]) -> JobOut:
    return await run_in_threadpool(_retrain_now, c, principal)


def _queue(c: Components, dimension: str | None, min_confidence: float, max_confidence: float, limit: int,
           cursor: str | None) -> ReviewQueue:
    if dimension is not None and dimension not in {d.id for d in c.tagger.taxonomy.dimensions}:
        raise ApiError(422, "unknown_dimension", f"{dimension!r} is not a dimension of the taxonomy.",
                       {"allowed": [d.id for d in c.tagger.taxonomy.dimensions]})
    if min_confidence > max_confidence:
        raise ApiError(422, "invalid_range", "min_confidence is above max_confidence.")
    waiting: list[ColumnElement[bool]] = [
        AssetTag.needs_review.is_(True), AssetTag.status == "proposed", AssetTag.confidence >= min_confidence,
        AssetTag.confidence <= max_confidence, AssetTag.version == Asset.current_version]
    if dimension is not None:
        waiting.append(AssetTag.dimension == dimension)
    with c.db.session() as s:
        base = select(AssetTag).join(Asset, Asset.id == AssetTag.asset_id).where(*waiting)
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        ids_q = base.with_only_columns(AssetTag.asset_id)
        if cursor:
            ids_q = ids_q.where(AssetTag.asset_id > decode_cursor(cursor))
        ids = list(s.scalars(ids_q.distinct().order_by(AssetTag.asset_id).limit(limit + 1)))
        page, more = ids[:limit], len(ids) > limit
        tags: dict[str, list[TagOut]] = {a: [] for a in page}
        for t in s.scalars(base.where(AssetTag.asset_id.in_(page)).order_by(AssetTag.confidence, AssetTag.id)):
            tags[t.asset_id].append(TagOut.of(t))
        assets = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(page)))}
        items = [QueueAsset(id=a, title=assets[a].title, language=assets[a].language, format=assets[a].format,
                            product=assets[a].product, approval_status=assets[a].approval_status, tags=tags[a])
                 for a in page]
    return ReviewQueue(items=items, total_tags=total, next_cursor=encode_cursor(page[-1]) if more and page else None)


@router.get("/review/queue", response_model=ReviewQueue,
            summary="Assets with proposals waiting for review, least confident first within an asset")
async def review_queue(
    c: ComponentsDep, _: Annotated[Principal, Depends(require("tags:review"))],
    dimension: Annotated[str | None, Query(max_length=128, pattern=ID_PATTERN)] = None,
    min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    max_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 1.0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> ReviewQueue:
    return await run_in_threadpool(_queue, c, dimension, min_confidence, max_confidence, limit, cursor)
