"""Replacing the taxonomy: the new version, its audit entry, and the job that re-tags every asset on the dimensions
that changed, all in the caller's one transaction (a taxonomy is never active without its re-tag queued)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy
from service.jobs.queue import Actor, add_job, retag_params
from service.store.models import Asset
from service.store.taxonomies import active_source, changed_dimensions, replace, version_exists


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


@dataclass(frozen=True)
class TaxonomyCheck:
    """What saving ``source`` would do, or why it would be refused: for an editor that checks as one types."""

    taxonomy: Taxonomy | None
    error: TaxonomyError | None
    changed_dimensions: list[str]
    diff: list[str]  # unified diff, the active YAML against the new


def check_taxonomy(s: Session, source: str) -> TaxonomyCheck:
    """Validate ``source`` as ``PUT /v1/taxonomy`` would (its version included) without writing anything."""
    active = active_source(s) or ""
    diff = list(difflib.unified_diff(active.splitlines(), source.splitlines(), "active", "new", lineterm="", n=2))
    try:
        new = parse_taxonomy(source, "<editor>")
    except TaxonomyError as err:
        return TaxonomyCheck(None, err, [], diff)
    if version_exists(s, new):
        line = next((i for i, text in enumerate(source.splitlines(), 1) if re.match(r"version\s*:", text)), None)
        taken = TaxonomyError("<editor>", line, "version", f"version {new.version} of taxonomy {new.id} exists "
                              "already; give the new taxonomy a new version")
        return TaxonomyCheck(new, taken, [], diff)
    return TaxonomyCheck(new, None, changed_dimensions(parse_taxonomy(active, "<active>"), new), diff)
