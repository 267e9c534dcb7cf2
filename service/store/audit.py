"""The audit log: every write records who, what, when, and the state before and after, in the same
transaction as the write itself (so there is no write without its entry, and no entry without its write)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.orm import Session

from service.store.models import AssetTag, AuditEntry


def record(session: Session, actor: str, role: str, action: str, target_type: str, target_id: str | None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(actor=actor, role=role, action=action, target_type=target_type, target_id=target_id,
                           before=_jsonable(before), after=_jsonable(after)))


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {}
    for k, v in value.items():
        out[k] = v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)
    return out


def entries(session: Session, limit: int, *, before: int | None = None, action: str | None = None,
            target_id: str | None = None, actor: str | None = None, since: datetime | None = None,
            until: datetime | None = None) -> list[AuditEntry]:
    """Up to ``limit`` entries, newest first, older than the entry id ``before``; ``since`` inclusive and
    ``until`` exclusive."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    if action:
        q = q.where(AuditEntry.action == action)
    if target_id:
        q = q.where(AuditEntry.target_id == target_id)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if until is not None:
        q = q.where(AuditEntry.at < until)
    return list(session.scalars(q))


def asset_history(session: Session, asset_id: str, limit: int, *, before: int | None = None) -> list[AuditEntry]:
    """An asset's own entries (created, new version, metadata, deleted) and those of its tags (reviews, added
    tags), newest first: what happened to it, by whom."""
    # tag entries name the tag by its id, as text
    tag_ids = select(cast(AssetTag.id, String)).where(AssetTag.asset_id == asset_id)
    q = (select(AuditEntry)
         .where(or_(and_(AuditEntry.target_type == "asset", AuditEntry.target_id == asset_id),
                    and_(AuditEntry.target_type == "tag", AuditEntry.target_id.in_(tag_ids))))
         .order_by(AuditEntry.id.desc()).limit(limit))
    if before is not None:
        q = q.where(AuditEntry.id < before)
    return list(session.scalars(q))
