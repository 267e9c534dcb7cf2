"""The audit log, for admins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.auth import require
from service.api.deps import SessionDep
from service.api.errors import ApiError
from service.api.schemas import AuditPage
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
               actor: Annotated[str | None, Query(max_length=32, pattern=NO_CONTROL_CHARS,
                                                  description="A key id, or cli / system")] = None,
               since: Annotated[date | None, Query(description="From this day on (UTC), inclusive")] = None,
               until: Annotated[date | None, Query(description="Up to this day (UTC), inclusive")] = None,
               ) -> AuditPage:
    if since is not None and until is not None and until < since:
        raise ApiError(422, "bad_date_range", f"'until' ({until}) is before 'since' ({since}).")
    # the last day there is has no day after it: up to it is no upper bound at all
    end = _day_start(until + timedelta(days=1)) if until is not None and until < date.max else None
    rows = audit.entries(s, limit + 1, before=cursor, action=action, target_id=target_id, actor=actor,
                         since=_day_start(since), until=end)
    return AuditPage.of(rows, limit)


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
