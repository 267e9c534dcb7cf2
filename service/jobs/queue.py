"""The durable job queue: jobs and their items are rows, so a crash loses nothing but the item in flight.

A worker claims a job by a guarded UPDATE (only one of several replicas wins) and keeps a heartbeat on it.
A running job is taken over when its worker is gone: at once when that worker was a process on this host
that no longer exists (a restart after SIGKILL), after ``job_lease_s`` of silence otherwise. The lease is kept
fresh while an item runs (:class:`Lease`), and an item's outcome is written only by the worker that still holds the
job (:func:`record_outcome`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
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
log = logging.getLogger(__name__)


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


def release(db: Database, job_id: str, me: str, note: str | None = None) -> None:
    """Give a job back unfinished (the worker is shutting down, or the disk is under its reserve): queued again,
    so the next worker to look, here after a restart or on another replica, resumes its pending items at once
    instead of waiting out the lease. ``note`` says why in the job's ``error`` until a worker takes it again."""
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.worker_id == me, Job.status == "running")
                  .values(status="queued", worker_id=None, error=note))


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
                                    started_at=now, error=None)).rowcount  # type: ignore[attr-defined]
        if won == 1:
            return str(job_id)
    return None


def heartbeat(db: Database, job_id: str, me: str) -> bool:
    """Refresh the lease; False when another worker took the job over (this one must stop)."""
    with db.session() as s:
        return bool(s.execute(update(Job).where(Job.id == job_id, Job.worker_id == me)
                              .values(heartbeat_at=utcnow())).rowcount)  # type: ignore[attr-defined]


def record_outcome(s: Session, job_id: str, item_id: int, me: str, *, ok: bool, values: dict[str, Any]) -> bool:
    """Write one item's outcome and count it in SQL (``done = done + 1``), only while ``me`` holds the job and the
    item is still pending: False (and nothing written) when another worker took the job over meanwhile."""
    held = s.execute(update(Job).where(Job.id == job_id, Job.worker_id == me, Job.status == "running")
                     .values(done=Job.done + 1, failed=Job.failed + (0 if ok else 1))).rowcount  # type: ignore[attr-defined]
    if held != 1:
        return False
    s.execute(update(JobItem).where(JobItem.id == item_id, JobItem.status == "pending")
              .values(status="done" if ok else "failed", **values))
    return True


class Lease:
    """Keeps a job's lease fresh from a thread while one item runs: the heartbeat between items alone let a
    lease run out under a single item (an LLM call may take 120 s, the lease is 60 s), and a second worker then
    took the job over while the first still worked on it. ``lost`` is set once a beat finds the job another's."""

    def __init__(self, db: Database, job_id: str, me: str, lease_s: float) -> None:
        self.db, self.job_id, self.me, self.every_s = db, job_id, me, max(lease_s / 3, 0.05)
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"hcp-lease-{job_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.every_s):
            try:
                if not heartbeat(self.db, self.job_id, self.me):
                    self.lost.set()
                    return
            except Exception as exc:  # a database blip: the next beat tries again, well within the lease
                log.warning("job %s: heartbeat failed (%s)", self.job_id, exc.__class__.__name__)

