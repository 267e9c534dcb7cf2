"""Talking-point follow-ups: LLM points finished after their request answered (see TalkingPointFollowup).

Kept in the database, not in a process, so a poll can land on any replica; a draft whose process stopped before
it finished reads as ``failed`` once it is past due."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import delete

from service.store.db import Database
from service.store.models import TalkingPointFollowup, as_utc, utcnow

FollowupStatus = Literal["pending", "ready", "failed"]


@dataclass
class Followup:
    id: str
    status: FollowupStatus
    response: dict[str, Any] | None
    error: str | None


def open_followup(db: Database, key_id: str, due_s: float, ttl_s: float) -> str:
    """A pending follow-up for ``key_id``; expired ones are cleared on the way."""
    now = utcnow()
    followup_id = str(uuid.uuid4())
    with db.session() as s:
        s.execute(delete(TalkingPointFollowup).where(TalkingPointFollowup.expires_at < now))
        s.add(TalkingPointFollowup(id=followup_id, key_id=key_id, status="pending", created_at=now,
                                   due_at=now + timedelta(seconds=due_s),
                                   expires_at=now + timedelta(seconds=max(ttl_s, due_s))))
    return followup_id


def finish_followup(db: Database, followup_id: str, response: dict[str, Any] | None, error: str | None) -> None:
    with db.session() as s:
        row = s.get(TalkingPointFollowup, followup_id)
        if row is not None and row.status == "pending":
            row.status, row.response, row.error = ("ready" if response is not None else "failed"), response, error


def read_followup(db: Database, followup_id: str, key_id: str) -> Followup | None:
    """The follow-up, for the key that asked for it only (None for any other key, as for an unknown id)."""
    now = utcnow()
    with db.session() as s:
        row = s.get(TalkingPointFollowup, followup_id)
        if row is None or row.key_id != key_id or as_utc(row.expires_at) < now:
            return None
        if row.status == "pending" and as_utc(row.due_at) < now:
            return Followup(row.id, "failed", None, "llm_lost: the draft did not finish (the service restarted)")
        return Followup(row.id, row.status, row.response, row.error)  # type: ignore[arg-type]
