"""Uploads and server-side ingest (both answered 202 with a job), and job status."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from indexers.news import FEED_SUFFIXES
from indexers.safety import EXTENSIONS
from indexers.scanner import candidate_files
from indexers.sidecar import is_sidecar
from service.api.auth import require
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.schemas import IngestPathRequest, JobOut
from service.api.uploads import safe_name, save_upload
from service.auth.keys import Principal
from service.jobs.queue import create_job
from service.runtime import Components
from service.store.models import Job, JobItem

router = APIRouter(prefix="/v1", tags=["jobs"])
ACCEPTED = (*EXTENSIONS, *FEED_SUFFIXES)


def _job_out(c: Components, job_id: str, with_items: bool = True) -> JobOut:
    with c.db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"No job {job_id!r}.")
        items = list(s.scalars(select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.ordinal))) \
            if with_items else None
        return JobOut.of(job, items)


def _save_uploads(c: Components, files: list[UploadFile], folder: Path) -> list[tuple[str, str | None]]:
    limit = c.settings.max_file_bytes
    items: list[tuple[str, str | None]] = []
    used: set[str] = set()
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        name = safe_name(f.filename)
        if name in used:
            raise ApiError(422, "duplicate_file_name", f"Two files in this upload are named {name!r}.")
        used.add(name)
        target = folder / name
        save_upload(f, target, limit)
        if not is_sidecar(target):
            items.append((name, str(target)))
    return items


def _create_upload_job(c: Components, principal: Principal, files: list[UploadFile]) -> str:
    if not files:
        raise ApiError(422, "no_files", "The upload holds no files (send them as multipart field `files`).")
    if len(files) > c.settings.upload_max_files:
        raise ApiError(413, "too_many_files", f"At most {c.settings.upload_max_files} files per upload.")
    unsupported = [f.filename or "" for f in files
                   if not is_sidecar(Path(safe_name(f.filename))) and
                   Path(safe_name(f.filename)).suffix.lower() not in ACCEPTED]
    if unsupported:
        raise ApiError(415, "unsupported_type", "These files are of a type that cannot be ingested: "
                       f"{', '.join(unsupported[:10])}. Supported: {', '.join(sorted(ACCEPTED))} "
                       "(and .meta.yaml/.meta.json sidecars).", {"files": unsupported})
    folder = c.settings.uploads_dir / uuid.uuid4().hex
    try:
        items = _save_uploads(c, files, folder)
        if not items:
            raise ApiError(422, "no_files", "The upload holds only sidecar files.")
        job_id = create_job(c.db, "ingest_upload", (principal.key_id, principal.role),
                            {"base": str(folder), "upload_dir": str(folder), "role": principal.role}, items,
                            {"files": [n for n, _ in items]})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job_id


@router.post("/uploads", status_code=202, response_model=JobOut, summary="Upload files to ingest and tag")
async def upload(response: Response, c: ComponentsDep,
                 principal: Annotated[Principal, Depends(require("assets:write"))],
                 files: Annotated[list[UploadFile], File(description="One or many files (and sidecars).")]) -> JobOut:
    job_id = await run_in_threadpool(_create_upload_job, c, principal, files)
    _wake(c)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return await run_in_threadpool(_job_out, c, job_id)


def _create_path_job(c: Components, principal: Principal, raw: str) -> str:
    path = Path(raw).expanduser()
    roots = [r.resolve() for r in c.settings.ingest_roots]
    resolved = path.resolve()
    root = next((r for r in roots if resolved == r or r in resolved.parents), None)
    if root is None:
        raise ApiError(403, "path_not_allowed", "The API may only ingest from the folders in HCP_INGEST_ROOTS"
                       + (f" ({', '.join(map(str, roots))})." if roots else "; none are configured."))
    if not resolved.exists():
        raise ApiError(404, "path_not_found", f"{raw} does not exist on the server.")
    base = resolved if resolved.is_dir() else resolved.parent
    files = candidate_files(resolved)
    items: list[tuple[str, str | None]] = [(str(p.relative_to(base)), str(p)) for p in files]
    if not items:
        raise ApiError(422, "no_files", f"{raw} holds no files to ingest.")
    return create_job(c.db, "ingest_path", (principal.key_id, principal.role),
                      {"base": str(base), "role": principal.role}, items, {"path": str(resolved)})


@router.post("/ingest/path", status_code=202, response_model=JobOut,
             summary="Ingest a folder or file on the server (under HCP_INGEST_ROOTS)")
async def ingest_path(body: IngestPathRequest, response: Response, c: ComponentsDep,
                      principal: Annotated[Principal, Depends(require("assets:write"))]) -> JobOut:
    job_id = await run_in_threadpool(_create_path_job, c, principal, body.path)
    _wake(c)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return await run_in_threadpool(_job_out, c, job_id)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job with its progress and per-item outcome")
async def get_job(job_id: RecordIdPath, c: ComponentsDep,
                  _: Annotated[Principal, Depends(require("jobs:read"))]) -> JobOut:
    return await run_in_threadpool(_job_out, c, job_id)


def _list_jobs(c: Components, limit: int) -> list[JobOut]:
    with c.db.session() as s:
        return [JobOut.of(j) for j in s.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit))]


@router.get("/jobs", response_model=list[JobOut], summary="Recent jobs, newest first")
async def list_jobs(c: ComponentsDep, _: Annotated[Principal, Depends(require("jobs:read"))],
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[JobOut]:
    return await run_in_threadpool(_list_jobs, c, limit)


def _wake(c: Components) -> None:
    if c.worker is not None:
        c.worker.notify()
