"""Taxonomy versions in the database. The active one is what the service tags against.

At start-up the configured file is registered when its (id, version) is new, and becomes active: editing
the YAML and bumping its version is how an operator ships a new taxonomy. Otherwise the database's active
version wins (an admin may have replaced it through the API since)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.core.taxonomy import Dimension, Taxonomy, parse_taxonomy
from service.store import audit
from service.store.db import Database
from service.store.models import TaxonomyVersion


@dataclass
class ActiveTaxonomy:
    taxonomy: Taxonomy
    source: str


class TaxonomyConflict(ValueError):
    pass


def activate_from_file(db: Database, path: Path) -> ActiveTaxonomy:
    source = path.read_text(encoding="utf-8")
    taxonomy = parse_taxonomy(source, str(path))
    with db.session() as s:
        known = s.scalar(select(TaxonomyVersion).where(TaxonomyVersion.taxonomy_id == taxonomy.id,
                                                       TaxonomyVersion.version == taxonomy.version))
        if known is None:
            s.execute(update(TaxonomyVersion).values(active=False))
            s.add(TaxonomyVersion(taxonomy_id=taxonomy.id, version=taxonomy.version, source=source, active=True,
                                  created_by="file"))
            return ActiveTaxonomy(taxonomy, source)
        active = s.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
        if active is None:
            known.active = True
            active = known
        return ActiveTaxonomy(parse_taxonomy(active.source, f"{active.taxonomy_id}@{active.version}"), active.source)


def active_source(s: Session) -> str | None:
    """The active taxonomy's YAML, as it was written."""
    return s.scalar(select(TaxonomyVersion.source).where(TaxonomyVersion.active.is_(True)))


def replace(s: Session, source: str, *, expected_version: str | None, actor: str,
            role: str) -> tuple[Taxonomy, Taxonomy]:
    """Validate and activate a new taxonomy in session ``s``, with its audit entry (the caller adds what goes with
    it, the re-tag job, and commits once); returns (old, new). Raises TaxonomyError on an invalid one and
    TaxonomyConflict when ``expected_version`` is not the active version or the version already exists."""
    new = parse_taxonomy(source, "<request>")
    active = s.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)).with_for_update())
    if active is None:
        raise TaxonomyConflict("no active taxonomy")
    if expected_version is not None and expected_version != active.version:
        raise TaxonomyConflict(f"the active taxonomy is version {active.version}, not {expected_version}: "
                               "someone replaced it since you read it")
    if version_exists(s, new):
        raise TaxonomyConflict(f"version {new.version} of taxonomy {new.id} exists already; "
                               "give the new taxonomy a new version")
    old = parse_taxonomy(active.source, "<active>")
    s.execute(update(TaxonomyVersion).values(active=False))
    s.add(TaxonomyVersion(taxonomy_id=new.id, version=new.version, source=source, active=True, created_by=actor))
    audit.record(s, actor, role, "taxonomy.replace", "taxonomy", new.id, {"version": old.version},
                 {"version": new.version, "changed_dimensions": changed_dimensions(old, new)})
    return old, new


def version_exists(s: Session, taxonomy: Taxonomy) -> bool:
    """Whether this (id, version) was registered before: a new taxonomy needs a version of its own."""
    return s.scalar(select(TaxonomyVersion.id).where(TaxonomyVersion.taxonomy_id == taxonomy.id,
                                                     TaxonomyVersion.version == taxonomy.version)) is not None


def changed_dimensions(old: Taxonomy, new: Taxonomy) -> list[str]:
    """Dimensions of ``new`` that are new or whose definition differs from ``old``'s (they need re-tagging)."""
    before: dict[str, Dimension] = {d.id: d for d in old.dimensions}
    return [d.id for d in new.dimensions if d.id not in before or before[d.id].model_dump() != d.model_dump()]
