"""What every process serves: the active taxonomy version and the newest model generation for it.

A retrain writes its heads and calibration here as bytes with their SHA-256 (in the database every replica and
worker already reaches, so no shared folder has to be mounted); each process compares :func:`serving_state`, one
small query, with what it serves, and swaps in a new engine when either changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select

from service.store import audit
from service.store.db import Database
from service.store.models import ModelGeneration, TaxonomyVersion


class GenerationCorrupt(RuntimeError):
    """Stored artefact bytes no longer match their recorded hash."""


@dataclass(frozen=True)
class ServingState:
    taxonomy_key: str  # ``id@version`` of the active taxonomy
    generation: int | None  # newest model generation for it; None: not trained yet


def serving_state(db: Database) -> ServingState | None:
    """The active taxonomy's key and its newest generation, in one query; None before any taxonomy is active."""
    key = TaxonomyVersion.taxonomy_id + "@" + TaxonomyVersion.version
    newest = (select(func.max(ModelGeneration.id)).where(ModelGeneration.taxonomy_key == key)
              .correlate(TaxonomyVersion).scalar_subquery())
    with db.session() as s:
        row = s.execute(select(key, newest).where(TaxonomyVersion.active.is_(True))).first()
    return None if row is None else ServingState(str(row[0]), row[1])


def active_taxonomy_source(db: Database) -> tuple[str, str] | None:
    """(key, YAML source) of the active taxonomy."""
    with db.session() as s:
        row = s.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
        return None if row is None else (f"{row.taxonomy_id}@{row.version}", row.source)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_generation(db: Database, taxonomy_key: str, heads: bytes, calibrator: bytes, items: int,
                   actor: tuple[str, str]) -> int:
    """Store a retrain's artefacts as the newest generation of ``taxonomy_key``, audited; returns its id."""
    with db.session() as s:
        row = ModelGeneration(taxonomy_key=taxonomy_key, heads=heads, heads_sha256=sha256(heads),
                              calibrator=calibrator, calibrator_sha256=sha256(calibrator), items=items,
                              created_by=actor[0])
        s.add(row)
        s.flush()
        audit.record(s, actor[0], actor[1], "model.retrain", "model_generation", str(row.id), None,
                     {"taxonomy": taxonomy_key, "items": items, "heads_sha256": row.heads_sha256,
                      "calibrator_sha256": row.calibrator_sha256})
        return row.id


def load_generation(db: Database, generation: int) -> tuple[bytes, bytes]:
    """(heads, calibrator) bytes of ``generation``, checked against their hashes."""
    with db.session() as s:
        row = s.get(ModelGeneration, generation)
        if row is None:
            raise GenerationCorrupt(f"model generation {generation} does not exist")
        if sha256(row.heads) != row.heads_sha256 or sha256(row.calibrator) != row.calibrator_sha256:
            raise GenerationCorrupt(f"model generation {generation}'s bytes do not match their recorded SHA-256")
        return row.heads, row.calibrator
