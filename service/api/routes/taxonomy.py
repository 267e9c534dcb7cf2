"""Read the active taxonomy; replace it with a new, validated version (assets re-tagged in the background)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from service.api.auth import require
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.schemas import TaxonomyOut, TaxonomyReplace, TaxonomyReplaced
from service.auth.keys import Principal
from service.core.taxonomy import TaxonomyError
from service.jobs.queue import add_job, retag_params
from service.runtime import Components
from service.store.models import Asset, TaxonomyVersion
from service.store.taxonomies import TaxonomyConflict, changed_dimensions, replace

router = APIRouter(prefix="/v1/taxonomy", tags=["taxonomy"])


def _read(c: Components) -> TaxonomyOut:
    with c.db.session() as s:
        row = s.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
        source = row.source if row else ""
    tax = c.tagger.taxonomy
    return TaxonomyOut(id=tax.id, version=tax.version, source=source, taxonomy=tax.model_dump(mode="json"))


@router.get("", response_model=TaxonomyOut, summary="The active taxonomy")
async def get_taxonomy(c: ComponentsDep, _: Annotated[Principal, Depends(require("taxonomy:read"))]) -> TaxonomyOut:
    return await run_in_threadpool(_read, c)


def _replace(c: Components, principal: Principal, body: TaxonomyReplace) -> TaxonomyReplaced:
    actor = (principal.key_id, principal.role)
    job_id = None
    try:
        # the new version, its audit entry, and the re-tag job with its own entry: one transaction
        with c.db.session() as s:
            old, new = replace(s, body.source, expected_version=body.expected_version, actor=actor[0],
                               role=actor[1])
            changed = changed_dimensions(old, new)
            asset_ids = list(s.scalars(select(Asset.id).order_by(Asset.id)))
            if changed and asset_ids:
                job_id = add_job(s, "retag", actor, retag_params(actor, new.key, changed),
                                 [(a, None) for a in asset_ids], {"taxonomy": new.key, "dimensions": changed})
    except TaxonomyError as err:
        raise ApiError(422, "invalid_taxonomy", str(err), err.as_dict()) from err
    except TaxonomyConflict as err:
        raise ApiError(409, "taxonomy_conflict", str(err)) from err
    c.tagger.set_taxonomy(new)
    if job_id is not None and c.worker is not None:
        c.worker.notify()
    return TaxonomyReplaced(id=new.id, version=new.version, changed_dimensions=changed, retag_job=job_id)


@router.put("", response_model=TaxonomyReplaced, summary="Replace the taxonomy with a new version")
async def put_taxonomy(body: TaxonomyReplace, c: ComponentsDep,
                       principal: Annotated[Principal, Depends(require("taxonomy:write"))]) -> TaxonomyReplaced:
    return await run_in_threadpool(_replace, c, principal, body)
