"""The engine's proposals written to the store, under the rule that a reviewer's decision outranks them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.store.models import AssetTag
from service.store.tags import REVIEWED
from service.tagging.result import TaggingResult


def write_proposals(session: Session, asset_id: str, version: int, result: TaggingResult,
                    dimensions: Iterable[str] | None = None) -> int:
    """Replace the engine's unreviewed tags of ``asset_id`` (for ``dimensions``, default all) with ``result``'s.

    Reviewed tags stay as they are, and a value a reviewer decided on is not proposed again: a human's
    accept, reject or edit outranks any later machine guess."""
    dims = set(dimensions) if dimensions is not None else None
    stale = delete(AssetTag).where(AssetTag.asset_id == asset_id, AssetTag.status == "proposed")
    if dims is not None:
        stale = stale.where(AssetTag.dimension.in_(dims))
    session.execute(stale)
    decided = {(t.dimension, t.value) for t in session.scalars(
        select(AssetTag).where(AssetTag.asset_id == asset_id, AssetTag.status.in_(REVIEWED)))}
    reviewed_dims = {d for d, _ in decided}
    written = 0
    for tag in result.tags:
        if dims is not None and tag.dimension not in dims:
            continue
        if (tag.dimension, tag.value) in decided:
            continue
        session.add(AssetTag(asset_id=asset_id, version=version, dimension=tag.dimension, value=tag.value,
                             confidence=tag.confidence, method=tag.method, evidence=tag.evidence,
                             evidence_verified=tag.evidence_verified,
                             # a dimension a reviewer already settled does not need another look
                             needs_review=tag.needs_review and tag.dimension not in reviewed_dims,
                             taxonomy_version=result.taxonomy, prompt_version=result.prompt_version,
                             models=dict(result.models), signals=dict(tag.signals), tagging_status=result.status))
        written += 1
    return written
