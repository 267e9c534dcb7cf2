"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.auth import require
from service.api.deps import SessionDep
from service.api.schemas import AuditOut, AuditPage
from service.auth.keys import Principal
from service.core.fields import INT32_MAX, NO_CONTROL_CHARS
from service.store import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Every write, newest first (admins)")
def read_audit(s: SessionDep, _: Annotated[Principal, Depends(require("audit:read"))],
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               cursor: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
               action: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL_CHARS)] = None,
               target_id: Annotated[str | None, Query(max_length=96, pattern=NO_CONTROL_CHARS)] = None,
               ) -> AuditPage:
    rows = audit.entries(s, limit + 1, before=cursor, action=action, target_id=target_id)
    page = rows[:limit]
    return AuditPage(items=[AuditOut.model_validate(r) for r in page],
                     next_cursor=str(page[-1].id) if len(rows) > limit and page else None)
