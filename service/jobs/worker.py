"""The background worker: claims jobs, runs their items one at a time, records each outcome as it goes.

An item's outcome and the job's counters commit together after the item's own writes, so after a crash the
worker that takes the job over redoes at most the item in flight, and ingest is idempotent (same bytes:
``unchanged``), so redoing it is harmless."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from service.core.refusal import Refused
from service.jobs.context import JobContext
from service.jobs.queue import Lease, claim, heartbeat, record_outcome, release, worker_id
from service.llm.client import LLMCancelled
from service.store.disk import is_disk_full
from service.store.models import Job, JobItem, utcnow

log = logging.getLogger(__name__)


@dataclass
class ItemResult:
    ok: bool
    outcome: str | None = None
    asset_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


Handler = Callable[[JobContext, Job, JobItem], ItemResult]


class LostLease(RuntimeError):
    pass


class Worker:
    def __init__(self, context: JobContext, handlers: dict[str, Handler]) -> None:
        self.c = context
        self.handlers = handlers
        self.me = worker_id()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._loop, name="hcp-worker", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """No new item is started; the one running finishes (or is called off with the LLM's calls)."""
        self._stop.set()
        self._wake.set()

    def close(self, timeout: float = 30.0) -> bool:
        """Stop and wait up to ``timeout`` for the item in flight; False when it was still running."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a broken database must not kill the worker for good
                log.exception("worker iteration failed")
                busy = False
            if not busy:
                self._wake.wait(self.c.poll_s)
                self._wake.clear()

    # --- work -----------------------------------------------------------------------------------
    def run_once(self) -> bool:
        if self.c.disk.short():  # no job starts while the disk is under its reserve; it waits, queued
            return False
        job_id = claim(self.c.db, self.me, self.c.lease_s)
        if job_id is None:
            return False
        try:
            self._process(job_id)
        except LostLease:
            log.warning("job %s was taken over by another worker; leaving it", job_id)
        except Exception as exc:
            log.exception("job %s failed", job_id)
            with self.c.db.session() as s:
                job = s.get(Job, job_id)
                if job is not None:
                    job.status, job.error, job.finished_at = "failed", f"{type(exc).__name__}: {exc}", utcnow()
        return True

    def _pause(self, job_id: str) -> None:
        consequence = "the job is paused with its items pending, and resumes by itself"
        refused = self.c.disk.problem(consequence) or Refused(
            "no_space", "insufficient_storage", f"The server's disk is full: {consequence} once space is freed.")
        log.warning("job %s paused: %s", job_id, refused.message)
        release(self.c.db, job_id, self.me, note=f"{refused.code}: {refused.message}")

    def _process(self, job_id: str) -> None:
        with self.c.db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            pending = list(s.scalars(select(JobItem).where(JobItem.job_id == job_id, JobItem.status == "pending")
                                     .order_by(JobItem.ordinal)))
            s.expunge_all()
        handler = self.handlers.get(job.kind)
        if handler is None:
            raise ValueError(f"no handler for jobs of kind {job.kind!r}")
        for item in pending:
            if self._stop.is_set():  # shutting down: the job is queued again and resumed at the next start
                release(self.c.db, job_id, self.me)
                return
            if self.c.disk.short():
                self._pause(job_id)
                return
            if not heartbeat(self.c.db, job_id, self.me):
                raise LostLease(job_id)
            with Lease(self.c.db, job_id, self.me, self.c.lease_s) as lease:
                try:
                    # the taxonomy and model generation as they are now: a replica may have replaced the taxonomy
                    # or a retrain finished since the last item (a re-tag job must see the version it was queued for)
                    self.c.tagger.sync(max_age_s=0)
                    result = handler(self.c, job, item)
                except LLMCancelled:  # the service is stopping: this item stays pending, redone at the next start
                    log.info("job %s item %s left for the next start (shutting down)", job_id, item.name)
                    release(self.c.db, job_id, self.me)
                    return
                except Exception as exc:  # one bad item never stops the rest
                    if is_disk_full(exc):  # not the item's fault: it stays pending, the job waits for space
                        self._pause(job_id)
                        return
                    log.exception("job %s item %s failed", job_id, item.name)
                    result = ItemResult(False, error_code="internal_error",
                                        error_message=f"{type(exc).__name__}: {exc}")
            if lease.lost.is_set():
                raise LostLease(job_id)
            with self.c.db.session() as s:
                if not record_outcome(s, job_id, item.id, self.me, ok=result.ok, values={
                        "outcome": result.outcome, "asset_id": result.asset_id, "error_code": result.error_code,
                        "error_message": result.error_message, "finished_at": utcnow()}):
                    raise LostLease(job_id)
        with self.c.db.session() as s:
            job_row = s.get(Job, job_id)
            assert job_row is not None
            if job_row.worker_id != self.me:
                raise LostLease(job_id)
            job_row.status = "succeeded" if job_row.failed == 0 else ("failed" if job_row.failed == job_row.total
                                                                      else "partial")
            job_row.finished_at = utcnow()
        upload_dir = job.params.get("upload_dir")
        if isinstance(upload_dir, str):
            shutil.rmtree(Path(upload_dir), ignore_errors=True)
