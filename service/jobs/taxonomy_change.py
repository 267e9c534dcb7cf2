"""Replacing the taxonomy: the new version, its audit entry, and the job that re-tags every asset on the dimensions
that changed, all in the caller's one transaction (a taxonomy is never active without its re-tag queued)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.taxonomy import Taxonomy
from service.jobs.queue import Actor, add_job, retag_params
from service.store.models import Asset
from service.store.taxonomies import changed_dimensions, replace


@dataclass(frozen=True)
class TaxonomyChange:
    taxonomy: Taxonomy
    changed_dimensions: list[str]
    retag_job: str | None  # None when nothing changed that tags depend on, or there are no assets


def replace_taxonomy(s: Session, source: str, expected_version: str | None, actor: Actor) -> TaxonomyChange:
    """Raises TaxonomyError for an invalid taxonomy and TaxonomyConflict for a stale ``expected_version``."""
    old, new = replace(s, source, expected_version=expected_version, actor=actor[0], role=actor[1])
    changed = changed_dimensions(old, new)
    asset_ids = list(s.scalars(select(Asset.id).order_by(Asset.id))) if changed else []
    job_id = None
    if asset_ids:
        job_id = add_job(s, "retag", actor, retag_params(actor, new.key, changed), [(a, None) for a in asset_ids],
                         {"taxonomy": new.key, "dimensions": changed})
    return TaxonomyChange(new, changed, job_id)
