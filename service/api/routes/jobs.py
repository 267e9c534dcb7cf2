"""Uploads and server-side ingest (both answered 202 with a job), and job status."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from sqlalchemy.orm import Session

from indexers.news import FEED_SUFFIXES
from indexers.safety import EXTENSIONS
from indexers.scanner import candidate_files
from indexers.sidecar import is_sidecar
from service.api.auth import require
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.params import RecordIdPath
from service.api.queued import job_out, queued
from service.api.schemas import IngestPathRequest, JobOut, JobSummary
from service.api.uploads import safe_name, save_upload
from service.auth.keys import Principal
from service.jobs.queue import add_job, recent_jobs
from service.runtime import Components

router = APIRouter(prefix="/v1", tags=["jobs"])
ACCEPTED = (*EXTENSIONS, *FEED_SUFFIXES)


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


def _create_upload_job(c: Components, s: Session, principal: Principal, files: list[UploadFile]) -> str:
    if not files:
        raise ApiError(422, "no_files", "The upload holds no files (send them as multipart field `files`).")
    if len(files) > c.settings.upload_max_files:
        raise ApiError(413, "too_many_files", f"At most {c.settings.upload_max_files} files per upload.")
    c.disk.require()
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
        job_id = add_job(s, "ingest_upload", (principal.key_id, principal.role),
                         {"base": str(folder), "upload_dir": str(folder), "role": principal.role}, items,
                         {"files": [n for n, _ in items]})
        s.flush()  # a refused write shows here, while the files can still be removed
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job_id


@router.post("/uploads", status_code=202, response_model=JobOut, summary="Upload files to ingest and tag")
def upload(response: Response, c: ComponentsDep, s: SessionDep,
           principal: Annotated[Principal, Depends(require("assets:write"))],
           files: Annotated[list[UploadFile], File(description="One or many files (and sidecars).")]) -> JobOut:
    return queued(c, s, _create_upload_job(c, s, principal, files), response)


def _create_path_job(c: Components, s: Session, principal: Principal, raw: str) -> str:
    c.disk.require()
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
    return add_job(s, "ingest_path", (principal.key_id, principal.role),
                   {"base": str(base), "role": principal.role}, items, {"path": str(resolved)})


@router.post("/ingest/path", status_code=202, response_model=JobOut,
             summary="Ingest a folder or file on the server (under HCP_INGEST_ROOTS)")
def ingest_path(body: IngestPathRequest, response: Response, c: ComponentsDep, s: SessionDep,
                principal: Annotated[Principal, Depends(require("assets:write"))]) -> JobOut:
    return queued(c, s, _create_path_job(c, s, principal, body.path), response)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job with its progress and per-item outcome")
def get_job(job_id: RecordIdPath, s: SessionDep, _: Annotated[Principal, Depends(require("jobs:read"))]) -> JobOut:
    return job_out(s, job_id)


@router.get("/jobs", response_model=list[JobSummary], summary="Recent jobs, newest first")
def list_jobs(s: SessionDep, _: Annotated[Principal, Depends(require("jobs:read"))],
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[JobSummary]:
    return [JobSummary.model_validate(j) for j in recent_jobs(s, limit)]
