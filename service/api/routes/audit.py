"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from service.api.auth import require
from service.api.deps import ComponentsDep
from service.api.schemas import AuditOut, AuditPage
from service.auth.keys import Principal
from service.core.fields import INT32_MAX, NO_CONTROL_CHARS
from service.runtime import Components
from service.store.models import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _page(c: Components, limit: int, before: int | None, action: str | None, target_id: str | None) -> AuditPage:
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    if action:
        q = q.where(AuditEntry.action == action)
    if target_id:
        q = q.where(AuditEntry.target_id == target_id)
    with c.db.session() as s:
        rows = list(s.scalars(q))
    page = rows[:limit]
    return AuditPage(items=[AuditOut(id=r.id, at=r.at, actor=r.actor, role=r.role, action=r.action,
                                     target_type=r.target_type, target_id=r.target_id, before=r.before,
                                     after=r.after) for r in page],
                     next_cursor=str(page[-1].id) if len(rows) > limit and page else None)


@router.get("", response_model=AuditPage, summary="Every write, newest first (admins)")
async def read_audit(c: ComponentsDep, _: Annotated[Principal, Depends(require("audit:read"))],
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     cursor: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
                     action: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL_CHARS)] = None,
                     target_id: Annotated[str | None, Query(max_length=96, pattern=NO_CONTROL_CHARS)] = None,
                     ) -> AuditPage:
    return await run_in_threadpool(_page, c, limit, cursor, action, target_id)
