"""What the worker and the job handlers work with, handed to them explicitly by the runtime.

The worker and the handlers see only these parts, never the whole runtime, so the jobs package does not import
``service.runtime`` (which builds and starts them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.core.embeddings import Embedder
from service.ingest import Ingestor
from service.store.db import Database
from service.store.disk import DiskSpace
from service.store.vectors import VectorStore
from service.tagging.tagger import Tagger


@dataclass(frozen=True)
class JobContext:
    db: Database
    vectors: VectorStore
    embedder: Embedder
    tagger: Tagger
    ingestor: Callable[[tuple[str, str]], Ingestor]  # an ingestor acting for (key name, role)
    poll_s: float  # how long an idle worker waits before looking for a job again
    lease_s: float  # how long a claimed job stays this worker's without a heartbeat
    disk: DiskSpace  # under its reserve, jobs pause (queued, their items pending) until space returns
