"""Readiness and shutdown of a real `hcp-content serve` process: degraded with the LLM unreachable, ok with it busy,
unavailable with the database gone; SIGTERM during an LLM call exits within the grace period and the job it
interrupted completes after the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from service.jobs.queue import create_retag_job
from service.llm.local_server import free_port
from service.runtime import build_components
from service.settings import Settings
from service.store.models import Job, JobItem

from .api_helpers import ingest_samples, wait_ready
from .conftest import SMOLLM_ALIAS, smollm_path


@contextmanager
def serving(data: Path, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    full = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_PORT": str(port), "HCP_LOG_LEVEL": "warning", **env}
    if "HCP_LLM_BASE_URL" not in env:
        full.pop("HCP_LLM_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/healthz", proc)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _ready(base: str, data: Path) -> tuple[int, dict[str, Any]]:
    admin = {"X-API-Key": (data / "admin.key").read_text().strip()}  # the details are for an admin key
    r = httpx.get(f"{base}/readyz", headers=admin, timeout=30)
    return r.status_code, r.json()


def _new_database(postgres_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from service.store.db import normalise_url

    base = make_url(normalise_url(postgres_url))
    name = f"hcp_ready_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return base.set(database=name).render_as_string(hide_password=False), (admin, name)


def test_readyz_is_degraded_with_the_llm_unreachable_and_unavailable_with_the_database_gone(tmp_path, postgres_url):
    from sqlalchemy import text

    url, (admin, name) = _new_database(postgres_url)
    dead_llm = f"http://127.0.0.1:{free_port()}/v1"
    try:
        with serving(tmp_path, HCP_DATABASE_URL=url, HCP_LLM_BASE_URL=dead_llm, HCP_LLM_MAX_RETRIES="0") as (_, base):
            code, body = _ready(base, tmp_path)
            assert code == 200 and body["status"] == "degraded" and body["down"] == ["llm"], body
            assert body["components"]["llm"]["details"]["activity"] == "unreachable"
            assert body["components"]["database"]["status"] == "ok"
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            code, body = _ready(base, tmp_path)
            assert code == 503 and body["status"] == "unavailable" and "database" in body["down"], body
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_readyz_is_ok_while_the_llm_server_is_busy_and_503_only_when_it_is_required_and_gone(tmp_path, llm_server):
    client = openai.OpenAI(base_url=llm_server.base_url, api_key="x", timeout=300, max_retries=0)
    stop = threading.Event()

    def load() -> None:  # long answers back to back: llama.cpp answers one request at a time
        while not stop.is_set():
            client.chat.completions.create(model=SMOLLM_ALIAS, max_tokens=400, logit_bias={"2": -100, "0": -100},
                                           messages=[{"role": "user", "content": "Write a long story."}])

    with serving(tmp_path, HCP_LLM_BASE_URL=llm_server.base_url, HCP_LLM_MODEL=SMOLLM_ALIAS,
                 HCP_LLM_PROBE_TIMEOUT_S="1") as (_, base):
        code, body = _ready(base, tmp_path)
        assert code == 200 and body["status"] == "ok" and body["components"]["llm"]["details"]["activity"] == "idle"
        workers = [threading.Thread(target=load) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            time.sleep(1.0)
            code, body = _ready(base, tmp_path)
        finally:
            stop.set()
            for w in workers:
                w.join(300)
    llm = body["components"]["llm"]
    assert code == 200 and body["status"] == "ok" and llm["status"] == "ok", body
    assert llm["details"]["activity"] == "busy" and "gateway" in llm["details"]
    assert {"queued", "running", "latency_p95_s"} <= set(llm["details"]["gateway"]["interactive"])
    # a deployment that cannot do without its LLM says so with 503
    with serving(tmp_path / "required", HCP_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
                 HCP_LLM_REQUIRED="true", HCP_LLM_MAX_RETRIES="0") as (_, base):
        code, body = _ready(base, tmp_path)
    assert code == 503 and body["status"] == "unavailable" and body["down"] == ["llm"]


def _job(settings: Settings, job_id: str) -> tuple[Job, list[JobItem]]:
    from sqlalchemy import select

    from service.store.db import Database

    db = Database(settings.resolved_database_url)
    try:
        with db.session() as s:
            job = s.get(Job, job_id)
            items = list(s.scalars(select(JobItem).where(JobItem.job_id == job_id)))
            s.expunge_all()
        assert job is not None
        return job, items
    finally:
        db.dispose()


def test_sigterm_during_an_llm_call_exits_within_the_grace_period_and_the_job_completes_after_restart(tmp_path):
    data = tmp_path / "data"
    settings = Settings(data_dir=data, llm_mode="off", worker_enabled=False, tagging_mode="learned")
    c = build_components(settings)
    try:
        ingest_samples(c, ["cardiovex/cardiovex_real_world_en.md", "cardiovex/cardiovex_reimbursement_zh.md",
                           "glucora/glucora_onset_zh.md", "glucora/glucora_patient_case_en.md",
                           "glucora/glucora_price_access_en.txt", "cardiovex/cardiovex_vte_treatment_en.txt"])
        from service.store.models import Asset

        with c.db.session() as s:
            ids = [a for (a,) in s.query(Asset.id)]
        job_id = create_retag_job(c.db, ("test", "admin"), c.tagger.taxonomy.key, None, ids)
    finally:
        c.close()
    grace = 4.0
    env = {"HCP_LLM_MODE": "local", "HCP_LLM_MODEL_PATH": str(smollm_path()), "HCP_LLM_MODEL": SMOLLM_ALIAS,
           "HCP_LLM_LOCAL_THREADS": "1", "HCP_SHUTDOWN_GRACE_S": str(grace), "HCP_TAGGING_MODE": "full"}
    with serving(data, **env) as (proc, base):
        deadline = time.monotonic() + 120
        while True:  # catch the worker inside an LLM call
            gateway = _ready(base, data)[1]["components"]["llm"]["details"]["gateway"]
            if gateway["background"]["running"] == 1:
                break
            assert time.monotonic() < deadline, "the re-tag never reached the LLM"
            time.sleep(0.02)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        took = time.monotonic() - started
    assert took <= grace + 2, f"exit took {took:.1f}s"
    assert proc.returncode == 0
    job, items = _job(settings, job_id)
    assert job.status == "queued" and job.failed == 0, (job.status, job.failed)
    assert job.done < job.total and any(i.status == "pending" for i in items)
    with serving(data, **env) as (_, base):
        deadline = time.monotonic() + 240
        while True:
            job, items = _job(settings, job_id)
            if job.status in ("succeeded", "partial", "failed"):
                break
            assert time.monotonic() < deadline, "the job did not complete after the restart"
            time.sleep(0.5)
    assert job.status == "succeeded" and job.done == job.total == len(ids) and job.failed == 0
    assert all(i.status == "done" and (i.outcome or "").startswith("tagged") for i in items)
