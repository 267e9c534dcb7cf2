"""Tag review: accept, reject or edit a tag, add one the engine missed, the review queue, retraining.
What a review does is ``service.tagging.review``'s; these routes check the key and shape the answer, in the
request's one session: a review, its audit entry and the retraining it makes due commit together."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from service.api.auth import require
from service.api.cursors import CursorParam, decode_cursor, encode_cursor
from service.api.deps import ComponentsDep, SessionDep
from service.api.params import RecordIdPath, TagIdPath
from service.api.queued import queued, wake_worker
from service.api.schemas import AddTagRequest, JobOut, QueueAsset, ReviewOut, ReviewQueue, ReviewRequest, TagOut
from service.auth.keys import Principal
from service.core.taxonomy import ID_PATTERN
from service.jobs.queue import add_job
from service.runtime import Components
from service.tagging import review

router = APIRouter(prefix="/v1", tags=["review"])
Reviewer = Annotated[Principal, Depends(require("tags:review"))]


@router.post("/assets/{asset_id}/tags", response_model=ReviewOut, status_code=201,
             summary="Add a tag the engine missed (a reviewed gold label)")
def add_tag(asset_id: RecordIdPath, body: AddTagRequest, c: ComponentsDep, s: SessionDep,
            principal: Reviewer) -> ReviewOut:
    tag = review.add_tag(s, c.vectors, c.tagger.taxonomy, (principal.key_id, principal.role), asset_id,
                         body.dimension, body.value, body.comment)
    return ReviewOut(tag=TagOut.model_validate(tag), retrain_job=_maybe_retrain(c, s, principal))


@router.post("/tags/{tag_id}/review", response_model=ReviewOut, summary="Accept, reject or edit a tag")
def review_tag(tag_id: TagIdPath, body: ReviewRequest, c: ComponentsDep, s: SessionDep,
               principal: Reviewer) -> ReviewOut:
    tag, replacement = review.review_tag(s, c.vectors, c.tagger.taxonomy, (principal.key_id, principal.role),
                                         tag_id, body.action, body.value, body.comment)
    return ReviewOut(tag=TagOut.model_validate(tag),
                     replaced_by=TagOut.model_validate(replacement) if replacement else None,
                     retrain_job=_maybe_retrain(c, s, principal))


def _maybe_retrain(c: Components, s: Session, principal: Principal) -> str | None:
    """Queue a retraining once enough reviews arrived since the last one (and none is waiting)."""
    if not review.retrain_due(s, c.settings.retrain_after_reviews):
        return None
    wake_worker(c, s)
    return _add_retrain(s, principal)


def _add_retrain(s: Session, principal: Principal) -> str:
    return add_job(s, "retrain", (principal.key_id, principal.role), {"role": principal.role},
                   [("reviewed tags", None)])


@router.post("/tagging/retrain", status_code=202, response_model=JobOut,
             summary="Retrain the learned heads and calibration on every reviewed tag now")
def retrain(c: ComponentsDep, s: SessionDep, principal: Reviewer) -> JobOut:
    return queued(c, s, _add_retrain(s, principal))


@router.get("/review/queue", response_model=ReviewQueue,
            summary="Assets with proposals waiting for review, least confident first within an asset")
def review_queue(
    c: ComponentsDep, s: SessionDep, _: Reviewer,
    dimension: Annotated[str | None, Query(max_length=128, pattern=ID_PATTERN)] = None,
    min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    max_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 1.0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorParam = None,
) -> ReviewQueue:
    page = review.waiting_for_review(s, c.tagger.taxonomy, dimension, min_confidence, max_confidence, limit,
                                     decode_cursor(cursor) if cursor else None)
    return ReviewQueue(items=[QueueAsset.model_validate(a) for a in page.assets], total_tags=page.total_tags,
                       next_cursor=encode_cursor(page.last_id) if page.last_id else None)
