"""Tag review: accept, reject or edit a tag, add one the engine missed, the review queue, retraining.
What a review does is ``service.tagging.review``'s; these routes check the key, open the request's one session
and shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.auth import require
from service.api.cursors import CursorParam, decode_cursor, encode_cursor
from service.api.deps import ComponentsDep
from service.api.params import RecordIdPath, TagIdPath
from service.api.schemas import AddTagRequest, JobOut, QueueAsset, ReviewOut, ReviewQueue, ReviewRequest, TagOut
from service.auth.keys import Principal
from service.core.taxonomy import ID_PATTERN
from service.jobs.queue import create_job
from service.runtime import Components
from service.store.models import Job
from service.tagging import review

router = APIRouter(prefix="/v1", tags=["review"])
Reviewer = Annotated[Principal, Depends(require("tags:review"))]


@router.post("/assets/{asset_id}/tags", response_model=ReviewOut, status_code=201,
             summary="Add a tag the engine missed (a reviewed gold label)")
def add_tag(asset_id: RecordIdPath, body: AddTagRequest, c: ComponentsDep, principal: Reviewer) -> ReviewOut:
    with c.db.session() as s:
        tag = review.add_tag(s, c.vectors, c.tagger.taxonomy, (principal.key_id, principal.role), asset_id,
                             body.dimension, body.value, body.comment)
        out = ReviewOut(tag=TagOut.of(tag))
    out.retrain_job = _maybe_retrain(c, principal)
    return out


@router.post("/tags/{tag_id}/review", response_model=ReviewOut, summary="Accept, reject or edit a tag")
def review_tag(tag_id: TagIdPath, body: ReviewRequest, c: ComponentsDep, principal: Reviewer) -> ReviewOut:
    with c.db.session() as s:
        tag, replacement = review.review_tag(s, c.vectors, c.tagger.taxonomy, (principal.key_id, principal.role),
                                             tag_id, body.action, body.value, body.comment)
        out = ReviewOut(tag=TagOut.of(tag), replaced_by=TagOut.of(replacement) if replacement else None)
    out.retrain_job = _maybe_retrain(c, principal)
    return out


def _maybe_retrain(c: Components, principal: Principal) -> str | None:
    """Queue a retraining once enough reviews arrived since the last one (and none is waiting)."""
    with c.db.session() as s:
        due = review.retrain_due(s, c.settings.retrain_after_reviews)
    return _queue_retrain(c, principal) if due else None


def _queue_retrain(c: Components, principal: Principal) -> str:
    job_id = create_job(c.db, "retrain", (principal.key_id, principal.role), {"role": principal.role},
                        [("reviewed tags", None)])
    if c.worker is not None:
        c.worker.notify()
    return job_id


@router.post("/tagging/retrain", status_code=202, response_model=JobOut,
             summary="Retrain the learned heads and calibration on every reviewed tag now")
def retrain(c: ComponentsDep, principal: Reviewer) -> JobOut:
    job_id = _queue_retrain(c, principal)
    with c.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return JobOut.of(job)


@router.get("/review/queue", response_model=ReviewQueue,
            summary="Assets with proposals waiting for review, least confident first within an asset")
def review_queue(
    c: ComponentsDep, _: Reviewer,
    dimension: Annotated[str | None, Query(max_length=128, pattern=ID_PATTERN)] = None,
    min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    max_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 1.0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> ReviewQueue:
    with c.db.session() as s:
        page = review.waiting_for_review(s, c.tagger.taxonomy, dimension, min_confidence, max_confidence, limit,
                                         decode_cursor(cursor) if cursor else None)
        items = [QueueAsset(id=a.id, title=a.title, language=a.language, format=a.format, product=a.product,
                            approval_status=a.approval_status, tags=[TagOut.of(t) for t in page.tags[a.id]])
                 for a in page.assets]
    return ReviewQueue(items=items, total_tags=page.total_tags,
                       next_cursor=encode_cursor(page.last_id) if page.last_id else None)
