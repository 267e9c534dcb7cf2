"""Read the active taxonomy; replace it with a new, validated version (assets re-tagged in the background)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.queued import wake_worker
from service.api.schemas import (
    TaxonomyChecked,
    TaxonomyCheckRequest,
    TaxonomyOut,
    TaxonomyProblem,
    TaxonomyReplace,
    TaxonomyReplaced,
)
from service.auth.keys import Principal
from service.core.taxonomy import TaxonomyError
from service.jobs.taxonomy_change import check_taxonomy, replace_taxonomy
from service.store.db import after_commit
from service.store.taxonomies import TaxonomyConflict, active_source

router = APIRouter(prefix="/v1/taxonomy", tags=["taxonomy"])
Editor = Annotated[Principal, Depends(require("taxonomy:write"))]


@router.get("", response_model=TaxonomyOut, summary="The active taxonomy")
def get_taxonomy(c: ComponentsDep, s: SessionDep,
                 _: Annotated[Principal, Depends(require("taxonomy:read"))]) -> TaxonomyOut:
    tax = c.tagger.taxonomy
    return TaxonomyOut(id=tax.id, version=tax.version, source=active_source(s) or "",
                       taxonomy=tax.model_dump(mode="json"))


@router.put("", response_model=TaxonomyReplaced, summary="Replace the taxonomy with a new version")
def put_taxonomy(body: TaxonomyReplace, c: ComponentsDep, s: SessionDep,
                 principal: Editor) -> TaxonomyReplaced:
    try:
        change = replace_taxonomy(s, body.source, body.expected_version, (principal.key_id, principal.role))
    except TaxonomyError as err:
        raise ApiError(422, "invalid_taxonomy", str(err), err.as_dict()) from err
    except TaxonomyConflict as err:
        raise ApiError(409, "taxonomy_conflict", str(err)) from err
    # served, and the worker woken for the re-tag, only once the new version is committed
    after_commit(s, lambda: c.tagger.set_taxonomy(change.taxonomy))
    if change.retag_job is not None:
        wake_worker(c, s)
    return TaxonomyReplaced(id=change.taxonomy.id, version=change.taxonomy.version,
                            changed_dimensions=change.changed_dimensions, retag_job=change.retag_job)


@router.post("/check", response_model=TaxonomyChecked, summary="Check a taxonomy before saving it (writes nothing)",
             description="For an editor that validates as one types: an invalid taxonomy is an answer here "
             "(`valid: false`, the line and field of the first problem), not a request error.")
def check(body: TaxonomyCheckRequest, s: SessionDep, _: Editor) -> TaxonomyChecked:
    found = check_taxonomy(s, body.source)
    error = found.error
    return TaxonomyChecked(
        valid=error is None,
        error=TaxonomyProblem(line=error.line, field=error.field, message=error.message) if error else None,
        id=found.taxonomy.id if found.taxonomy else None, version=found.taxonomy.version if found.taxonomy else None,
        changed_dimensions=found.changed_dimensions, diff=found.diff)
