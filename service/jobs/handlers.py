"""What each kind of job does with one of its items."""

from __future__ import annotations

import logging
from pathlib import Path

from service.jobs.context import JobContext
from service.jobs.material import load_material
from service.jobs.worker import Handler, ItemResult
from service.store.models import Job, JobItem
from service.store.tags import reviewed_gold
from service.store.visibility import sync_scope_payload
from service.tagging.proposals import write_proposals
from service.tagging.training import LabelledItem

log = logging.getLogger(__name__)


def ingest_item(c: JobContext, job: Job, item: JobItem) -> ItemResult:
    """A file of an upload or of a server folder: parsed, tagged and stored (a feed file: each of its items)."""
    assert item.path is not None
    path, base = Path(item.path), Path(str(job.params["base"]))
    if not path.exists():
        return ItemResult(False, error_code="file_missing", error_message=f"{item.name} is no longer on the server.")
    ingestor = c.ingestor((job.created_by, str(job.params.get("role", "content_editor"))))
    outcomes = ingestor.ingest_path(path, base=base)
    good = [o for o in outcomes if o.error is None]
    if not good:
        err = outcomes[0].error if outcomes and outcomes[0].error else None
        return ItemResult(False, error_code=err.code if err else "no_documents",
                          error_message=err.message if err else "The file held no documents.")
    statuses = sorted({o.status for o in good})
    return ItemResult(True, outcome=",".join(statuses), asset_id=good[0].asset_id if len(good) == 1 else None,
                      error_code=None if len(good) == len(outcomes) else "some_items_failed",
                      error_message=None if len(good) == len(outcomes) else
                      f"{len(outcomes) - len(good)} of {len(outcomes)} feed items failed")


def retag_item(c: JobContext, job: Job, item: JobItem) -> ItemResult:
    """Re-tag one asset for the dimensions a taxonomy change touched."""
    material = load_material(c.db, c.vectors, c.embedder, item.name)
    if material is None:
        return ItemResult(True, outcome="gone", asset_id=item.name)  # deleted since the job was queued
    tagger = c.tagger
    if tagger.taxonomy.key != job.params.get("taxonomy"):
        return ItemResult(True, outcome="superseded", asset_id=item.name)  # a newer taxonomy has its own job
    result = tagger.tag(material.text, title=material.title, language=material.language, chunks=material.chunks,
                        chunk_vectors=material.vectors, content_hash=material.content_hash,
                        metadata=material.metadata)
    dims = job.params.get("dimensions")
    with c.db.session() as s:
        n = write_proposals(s, material.asset_id, material.version, result,
                            dims if isinstance(dims, list) else None)
        s.flush()
        sync_scope_payload(s, c.vectors, [material.asset_id], tagger.taxonomy)
    return ItemResult(True, outcome=f"tagged:{n}", asset_id=item.name)


def retrain_item(c: JobContext, job: Job, item: JobItem) -> ItemResult:
    """Fit the learned heads and calibration on every reviewed asset."""
    with c.db.session() as s:
        gold = reviewed_gold(s)
    items: list[LabelledItem] = []
    for g in gold:
        material = load_material(c.db, c.vectors, c.embedder, g.asset_id)
        if material is not None:
            items.append(LabelledItem(material.text, material.vectors, g.labels, metadata=material.metadata))
    if len(items) < 4:
        return ItemResult(False, error_code="too_few_reviews",
                          error_message=f"{len(items)} reviewed assets; training needs at least 4.")
    stats = c.tagger.retrain(items, actor=(job.created_by, str(job.params.get("role", "reviewer"))))
    return ItemResult(True, outcome=f"heads:{stats['heads']},calibrated:{stats['calibrated_dimensions']},"
                      f"items:{stats['items']},generation:{stats['generation']}")


HANDLERS: dict[str, Handler] = {"ingest_upload": ingest_item, "ingest_path": ingest_item, "retag": retag_item,
                                "retrain": retrain_item}
