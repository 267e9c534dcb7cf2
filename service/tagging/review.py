"""Reviewing tags: accept, reject or edit a proposal, or add a value the engine missed, and the queue of
proposals waiting for a reviewer.

Every decision is a gold label and a training example: it writes a ``TagReview`` row and its audit entry in the
caller's session, so the decision, its record and its audit commit together. A product tag can move an asset
between rep scopes, so the asset's vector payloads follow in the same session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from service.core.refusal import Refused
from service.core.taxonomy import Taxonomy
from service.store import audit
from service.store.models import Asset, AssetTag, Job, TagReview, utcnow
from service.store.vectors import VectorStore
from service.store.visibility import sync_scope_payload

Action = Literal["accept", "reject", "edit"]
Actor = tuple[str, str]  # (key id, role)
_STATUS = {"accept": "accepted", "reject": "rejected", "edit": "edited"}


def check_value(taxonomy: Taxonomy, dimension: str, value: str) -> None:
    if not taxonomy.has(dimension, value):
        dim = next((d for d in taxonomy.dimensions if d.id == dimension), None)
        raise Refused("invalid", "unknown_value", f"{value!r} is not a value of dimension {dimension!r}.",
                      {"allowed": dim.value_ids if dim else [d.id for d in taxonomy.dimensions]})


def _mark_reviewed(tag: AssetTag, status: str, reviewer: str, now: datetime, comment: str | None) -> None:
    tag.status, tag.needs_review = status, False
    tag.reviewed_by, tag.reviewed_at, tag.review_comment = reviewer, now, comment


def _accept_value(s: Session, asset_id: str, version: int, dimension: str, value: str, taxonomy_version: str,
                  reviewer: str, now: datetime, comment: str | None) -> tuple[AssetTag, str | None]:
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
    _mark_reviewed(tag, "accepted", reviewer, now, comment)
    return tag, previous


def review_tag(s: Session, vectors: VectorStore, taxonomy: Taxonomy, actor: Actor, tag_id: int, action: Action,
               value: str | None, comment: str | None) -> tuple[AssetTag, AssetTag | None]:
    """Accept, reject or edit (to ``value``) one tag; with the tag that replaces it after an edit."""
    tag = s.get(AssetTag, tag_id)
    if tag is None:
        raise Refused("not_found", "tag_not_found", f"No tag {tag_id}.")
    if tag.status == "edited":
        raise Refused("conflict", "tag_replaced", "This tag was replaced by an edit; review the replacement.")
    if action == "edit":
        if not value:
            raise Refused("invalid", "value_required", "An edit needs the corrected `value`.")
        check_value(taxonomy, tag.dimension, value)
        if value == tag.value:
            raise Refused("invalid", "same_value", "The edit keeps the same value; accept the tag instead.")
    elif value is not None:
        raise Refused("invalid", "unexpected_value", "Only an edit takes a `value`.")
    before = {"value": tag.value, "status": tag.status, "confidence": tag.confidence}
    now = utcnow()
    _mark_reviewed(tag, _STATUS[action], actor[0], now, comment)
    replacement = None
    if action == "edit":
        assert value is not None
        replacement, _ = _accept_value(s, tag.asset_id, tag.version, tag.dimension, value, tag.taxonomy_version,
                                       actor[0], now, comment)
    s.add(TagReview(tag_id=tag.id, asset_id=tag.asset_id, dimension=tag.dimension, action=action,
                    value_before=tag.value, value_after=value if action == "edit" else tag.value,
                    confidence=tag.confidence, method=tag.method, comment=comment, reviewer=actor[0], at=now))
    audit.record(s, actor[0], actor[1], f"tag.{action}", "tag", str(tag.id), before,
                 {"value": value or tag.value, "status": tag.status, "comment": comment})
    s.flush()
    sync_scope_payload(s, vectors, [tag.asset_id], taxonomy)
    return tag, replacement


def add_tag(s: Session, vectors: VectorStore, taxonomy: Taxonomy, actor: Actor, asset_id: str, dimension: str,
            value: str, comment: str | None) -> AssetTag:
    """A value the engine missed, added by a reviewer: a gold label like an accepted proposal."""
    check_value(taxonomy, dimension, value)
    now = utcnow()
    asset = s.get(Asset, asset_id)
    if asset is None:
        raise Refused("not_found", "asset_not_found", f"No asset {asset_id!r}.")
    tag, previous = _accept_value(s, asset_id, asset.current_version, dimension, value, taxonomy.key, actor[0], now,
                                  comment)
    before = None if previous is None else {"value": value, "status": previous}
    s.flush()
    s.add(TagReview(tag_id=tag.id, asset_id=asset_id, dimension=dimension, action="add", value_before=value,
                    value_after=value, confidence=None, method="human", comment=comment, reviewer=actor[0], at=now))
    audit.record(s, actor[0], actor[1], "tag.add", "tag", str(tag.id), before,
                 {"asset_id": asset_id, "dimension": dimension, "value": value})
    s.flush()
    sync_scope_payload(s, vectors, [asset_id], taxonomy)
    return tag


def retrain_due(s: Session, after_reviews: int) -> bool:
    """Enough reviews arrived since the last retraining, and none is waiting."""
    if s.scalar(select(Job.id).where(Job.kind == "retrain", Job.status.in_(("queued", "running")))) is not None:
        return False
    last = s.scalar(select(Job.created_at).where(Job.kind == "retrain").order_by(Job.created_at.desc()))
    q = select(func.count()).select_from(TagReview)
    if last is not None:
        q = q.where(TagReview.at > last)
    return (s.scalar(q) or 0) >= after_reviews


@dataclass
class QueuePage:
    assets: list[Asset]  # in id order, each with ``tags`` its waiting tags, least confident first
    total_tags: int  # waiting tags over every page
    last_id: str | None  # the cursor for the next page (None: this is the last)


def waiting_for_review(s: Session, taxonomy: Taxonomy, dimension: str | None, min_confidence: float,
                       max_confidence: float, limit: int, after: str | None) -> QueuePage:
    """Assets (after the asset id ``after``) whose current version has proposals waiting for a reviewer."""
    if dimension is not None and dimension not in {d.id for d in taxonomy.dimensions}:
        raise Refused("invalid", "unknown_dimension", f"{dimension!r} is not a dimension of the taxonomy.",
                      {"allowed": [d.id for d in taxonomy.dimensions]})
    if min_confidence > max_confidence:
        raise Refused("invalid", "invalid_range", "min_confidence is above max_confidence.")
    waiting: list[ColumnElement[bool]] = [
        AssetTag.needs_review.is_(True), AssetTag.status == "proposed", AssetTag.confidence >= min_confidence,
        AssetTag.confidence <= max_confidence, AssetTag.version == Asset.current_version]
    if dimension is not None:
        waiting.append(AssetTag.dimension == dimension)
    base = select(AssetTag).join(Asset, Asset.id == AssetTag.asset_id).where(*waiting)
    total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
    ids_q = base.with_only_columns(AssetTag.asset_id)
    if after:
        ids_q = ids_q.where(AssetTag.asset_id > after)
    ids = list(s.scalars(ids_q.distinct().order_by(AssetTag.asset_id).limit(limit + 1)))
    page, more = ids[:limit], len(ids) > limit
    tags: dict[str, list[AssetTag]] = {a: [] for a in page}
    for t in s.scalars(base.where(AssetTag.asset_id.in_(page)).order_by(AssetTag.confidence, AssetTag.id)):
        tags[t.asset_id].append(t)
    assets = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(page)))}
    for asset_id, waiting_tags in tags.items():
        # the asset is read for this answer; ``tags`` holds what waits, not every row (nothing is written back)
        set_committed_value(assets[asset_id], "tags", waiting_tags)
    return QueuePage([assets[a] for a in page], total, page[-1] if more and page else None)
