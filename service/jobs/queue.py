"""The durable job queue: jobs and their items are rows, so a crash loses nothing but the item in flight.

A worker claims a job by a guarded UPDATE (only one of several replicas wins) and keeps a heartbeat on it.
A running job is taken over when its worker is gone: at once when that worker was a process on this host
that no longer exists (a restart after SIGKILL), after ``job_lease_s`` of silence otherwise.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload

from service.store import audit
from service.store.db import Database
from service.store.models import Job, JobItem, utcnow

HOST = socket.gethostname()


def worker_id() -> str:
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _dead_local_worker(worker: str | None) -> bool:
    if not worker:
        return True
    host, _, rest = worker.partition(":")
    pid = rest.split(":", 1)[0]
    return host == HOST and pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists()


# Who queues a job, as the audit log names them: (key id, role); the CLI is ("cli", "admin").
Actor = tuple[str, str]


def add_job(session: Session, kind: str, actor: Actor, params: dict[str, Any],
            items: Sequence[tuple[str, str | None]], summary: dict[str, Any] | None = None) -> str:
    """A queued job with its items ``(name, path)``, added to ``session`` with its ``job.create`` audit entry
    (``summary``: what the entry says besides the kind), so both commit together or not at all; returns its id."""
    job_id = uuid.uuid4().hex
    job = Job(id=job_id, kind=kind, created_by=actor[0], params=params, total=len(items))
    job.items = [JobItem(ordinal=i, name=name, path=path) for i, (name, path) in enumerate(items)]
    session.add(job)
    audit.record(session, actor[0], actor[1], "job.create", "job", job_id, None,
                 {"kind": kind, "items": len(items), **(summary or {})})
    return job_id


def create_job(db: Database, kind: str, actor: Actor, params: dict[str, Any],
               items: Sequence[tuple[str, str | None]], summary: dict[str, Any] | None = None) -> str:
    """:func:`add_job` in a transaction of its own."""
    with db.session() as s:
        return add_job(s, kind, actor, params, items, summary)


def read_job(session: Session, job_id: str) -> Job | None:
    """A job with its items loaded (in order)."""
    return session.scalar(select(Job).where(Job.id == job_id).options(selectinload(Job.items)))


def recent_jobs(session: Session, limit: int) -> list[Job]:
    """The newest ``limit`` jobs, newest first."""
    return list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))


def retag_params(actor: Actor, taxonomy_key: str, dimensions: list[str] | None) -> dict[str, Any]:
    return {"taxonomy": taxonomy_key, "dimensions": dimensions, "role": actor[1]}


def create_retag_job(db: Database, actor: Actor, taxonomy_key: str, dimensions: list[str] | None,
                     asset_ids: Sequence[str]) -> str:
    """Re-tag ``asset_ids`` against ``taxonomy_key`` for ``dimensions`` (None: all of them)."""
    return create_job(db, "retag", actor, retag_params(actor, taxonomy_key, dimensions),
                      [(a, None) for a in asset_ids], {"taxonomy": taxonomy_key, "dimensions": dimensions})


def release(db: Database, job_id: str, me: str) -> None:
    """Give a job back unfinished (the worker is shutting down): queued again, so the next worker to look, here
    after a restart or on another replica, resumes its pending items at once instead of waiting out the lease."""
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.worker_id == me, Job.status == "running")
                  .values(status="queued", worker_id=None))


def claim(db: Database, me: str, lease_s: float) -> str | None:
    """The id of a job this worker now holds, or None."""
    now = utcnow()
    stale = now - timedelta(seconds=lease_s)
    with db.session() as s:
        rows = s.execute(select(Job.id, Job.status, Job.worker_id, Job.heartbeat_at)
                         .where(Job.status.in_(("queued", "running"))).order_by(Job.created_at).limit(50)).all()
    for job_id, status, holder, beat in rows:
        if status == "running" and not (_dead_local_worker(holder) or beat is None or beat < stale):
            continue
        with db.session() as s:
            guard = or_(Job.status == "queued", Job.worker_id.is_(None), Job.worker_id == holder) \
                if status == "running" else Job.status == "queued"
            won = s.execute(update(Job).where(Job.id == job_id, guard)
                            .values(status="running", worker_id=me, heartbeat_at=now, attempts=Job.attempts + 1,
                                    started_at=now)).rowcount  # type: ignore[attr-defined]
        if won == 1:
            return str(job_id)
    return None


def heartbeat(db: Database, job_id: str, me: str) -> bool:
    """Refresh the lease; False when another worker took the job over (this one must stop)."""
    with db.session() as s:
        return bool(s.execute(update(Job).where(Job.id == job_id, Job.worker_id == me)
                              .values(heartbeat_at=utcnow())).rowcount)  # type: ignore[attr-defined]

