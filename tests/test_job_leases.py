"""A job's lease holds while one item runs longer than the lease, and a worker that lost its job writes nothing
(issue 46, finding 10): the heartbeat beat only between items, so a second worker took over a job whose item was
still running, and the first still wrote its outcome and ``done += 1``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from service.jobs.context import JobContext
from service.jobs.queue import claim, create_job, read_job, worker_id
from service.jobs.worker import ItemResult, Worker
from service.runtime import Components, build_components
from service.settings import Settings
from service.store.models import Job, JobItem, utcnow

LEASE_S = 0.6  # a lease a slow item easily outlives


class SlowItems:
    """A job kind whose items each run until the test lets them finish (the slow LLM call of the finding)."""

    def __init__(self) -> None:
        self.started, self.go = threading.Semaphore(0), threading.Event()

    def __call__(self, _: JobContext, __: Job, item: JobItem) -> ItemResult:
        self.started.release()
        assert self.go.wait(120), "the test never let the item finish"
        return ItemResult(True, outcome=f"handled {item.name}")


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Components]:
    c = build_components(Settings(data_dir=tmp_path_factory.mktemp("leases"), llm_mode="off", worker_enabled=False,
                                  job_lease_s=LEASE_S))
    yield c
    c.close()


def _beats(c: Components, job_id: str, after: object) -> bool:
    with c.db.session() as s:
        job = read_job(s, job_id)
        return job is not None and job.heartbeat_at is not None and job.heartbeat_at > after  # type: ignore[operator]


def test_an_item_longer_than_the_lease_keeps_its_job(components):
    slow = SlowItems()
    job_id = create_job(components.db, "slow", ("test", "admin"), {}, [("a", None), ("b", None)])
    worker = Worker(components.job_context(), {"slow": slow}).start()
    try:
        assert slow.started.acquire(timeout=60), "the worker never started the item"
        claimed_at = utcnow()
        # three leases' worth of beats while the one item runs: each beat is newer than the last one seen
        seen = claimed_at
        for _ in range(3):
            deadline = utcnow() + timedelta(seconds=30)
            while not _beats(components, job_id, seen) and utcnow() < deadline:
                threading.Event().wait(0.05)  # polling the row: the condition is the heartbeat itself
            assert _beats(components, job_id, seen), "no heartbeat while the item ran"
            with components.db.session() as s:
                seen = read_job(s, job_id).heartbeat_at  # type: ignore[union-attr]
        assert (utcnow() - claimed_at).total_seconds() > LEASE_S, "the item outlived its lease"
        assert claim(components.db, worker_id(), LEASE_S) is None, "a second worker took over a job still running"
        slow.go.set()
        assert slow.started.acquire(timeout=60)
    finally:
        slow.go.set()
        worker.close(60)
    with components.db.session() as s:
        job = read_job(s, job_id)
        assert job is not None and (job.status, job.done, job.failed) == ("succeeded", 2, 0)
        assert [i.outcome for i in sorted(job.items, key=lambda i: i.ordinal)] == ["handled a", "handled b"]


def test_a_worker_that_lost_its_job_writes_no_outcome(components):
    slow = SlowItems()
    job_id = create_job(components.db, "slow", ("test", "admin"), {}, [("a", None)])
    worker = Worker(components.job_context(), {"slow": slow}).start()
    try:
        assert slow.started.acquire(timeout=60)
        with components.db.session() as s:  # another worker takes the job over while the item runs
            s.execute(update(Job).where(Job.id == job_id).values(worker_id="another-host:1:abcdef",
                                                                 heartbeat_at=utcnow() + timedelta(hours=1)))
        slow.go.set()
    finally:
        slow.go.set()
        worker.close(60)
    with components.db.session() as s:
        job = read_job(s, job_id)
        assert job is not None and job.worker_id == "another-host:1:abcdef" and job.status == "running"
        assert (job.done, job.failed) == (0, 0), "the worker that lost the job counted its item"
        assert [i.status for i in job.items] == ["pending"], "the worker that lost the job wrote the outcome"
