"""Answering with a job: read one, or the job a request just queued (the worker is woken once it commits)."""

from __future__ import annotations

from fastapi import Response
from sqlalchemy.orm import Session

from service.api.errors import ApiError
from service.api.schemas import JobOut
from service.jobs.queue import read_job
from service.runtime import Components
from service.store.db import after_commit


def job_out(s: Session, job_id: str) -> JobOut:
    job = read_job(s, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"No job {job_id!r}.")
    return JobOut.model_validate(job)


def wake_worker(c: Components, s: Session) -> None:
    """Wake this process's worker (when it runs one) for the jobs ``s`` adds, once they are committed."""
    if c.worker is not None:
        after_commit(s, c.worker.notify)


def queued(c: Components, s: Session, job_id: str, response: Response | None = None) -> JobOut:
    """The answer for a job just added in ``s``: the worker is woken once it is committed."""
    s.flush()
    wake_worker(c, s)
    if response is not None:
        response.headers["Location"] = f"/v1/jobs/{job_id}"
    return job_out(s, job_id)
