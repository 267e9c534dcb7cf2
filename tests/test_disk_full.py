"""A data volume filled during an upload, or a vector store made read-only, is an answer, never a death (issue 46,
finding 3).

The data folder is on a small tmpfs of its own (or, where this user cannot mount one, the temporary folder's
volume). A real file is written there, taking its free space under the service's reserve (``HCP_MIN_FREE_BYTES``,
set a few hundred MB under what was free when the test began): no fake, the service reads the volume's own free
space. While the volume is short, new uploads and event batches answer 507
``insufficient_storage``, the running ingest job pauses with a note a person understands, reads and matching go
on, /readyz says unavailable, and a service started then starts and says the same. Once the file is removed the
job completes by itself, and the SQL chunks and the vector points agree exactly.

The vector store's files made immutable (``chattr +i``, as the finding did) took the process down with a SIGBUS
at the next upload; now the upload is refused with 503 ``storage_read_only`` and the process lives on."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.settings import Settings

from .api_helpers import SAMPLES, HttpApi, start_http, stop_http

MB = 1_000_000
MARGIN = 300 * MB  # free space above the reserve when the test starts
FILES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".md", ".txt"))[:10]


def _fill(path: Path, size: int) -> None:
    """Take ``size`` bytes of the volume with a real file (allocated at once where the filesystem can)."""
    with path.open("wb") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError:  # a filesystem without fallocate: write it out
            block = b"\0" * (4 * MB)
            for _ in range(size // len(block) + 1):
                f.write(block)


def _until(what: str, check, timeout: float = 180):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)  # polling the service's answer: the condition is the answer itself
    raise AssertionError(f"{what} did not happen within {timeout} s")


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A data folder and the reserve to give the service: ``MARGIN`` under what is free on its volume now. The
    volume is a small tmpfs of its own where this user may mount one (CI runs as root), else the temporary
    folder's own volume: the filling and the assertions are the same on either."""
    mounted = tmp_path / "volume"
    mounted.mkdir()
    size = f"{(MARGIN + 400 * MB) // MB}m"
    own = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mounted)],
                         capture_output=True).returncode == 0
    data = mounted / "data"
    data.mkdir()
    reserve = shutil.disk_usage(data).free - MARGIN
    assert reserve > 100 * MB, "the test needs some free space on its temporary volume"
    try:
        yield data, reserve
    finally:
        (mounted / "filler.bin").unlink(missing_ok=True)
        if own:
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True)


def test_a_volume_filled_during_an_upload_answers_507_pauses_the_job_and_recovers(volume, tmp_path):
    data, reserve = volume
    api: HttpApi = start_http(Settings(data_dir=data, llm_mode="off", worker_poll_s=0.1, min_free_bytes=reserve))
    second: HttpApi | None = None
    filler = data.parent / "filler.bin"
    try:
        editor = api.h("content_editor")
        files = [("files", (p.name, p.read_bytes())) for p in FILES]
        r = httpx.post(f"{api.base_url}/v1/uploads", files=files, headers=editor, timeout=60)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        def job() -> dict:
            return httpx.get(f"{api.base_url}/v1/jobs/{job_id}", headers=editor, timeout=30).json()

        _until("the first item", lambda: job()["done"] >= 1)
        _fill(filler, MARGIN + 100 * MB)  # the volume is now under the reserve, in the middle of the job

        paused = _until("the job's pause", lambda: (j := job())["status"] == "queued" and j["error"] and j)
        assert paused["error"].startswith("insufficient_storage") and "resumes by itself" in paused["error"]
        assert paused["done"] < len(FILES)

        r = httpx.post(f"{api.base_url}/v1/uploads", files=files[:1], headers=editor, timeout=60)
        assert r.status_code == 507 and r.json()["code"] == "insufficient_storage", r.text
        assert r.json()["details"]["reserve_bytes"] == reserve and r.json()["details"]["free_bytes"] < reserve
        event = {"id": "e-1", "hcp_id": "hcp-a1", "asset_id": "x", "action": "opened",
                 "occurred_at": "2026-12-01T08:00:00Z"}
        r = httpx.post(f"{api.base_url}/v1/events", headers=api.h("admin"), timeout=30, json={"events": [event]})
        assert r.status_code == 507 and r.json()["code"] == "insufficient_storage", r.text
        ready = httpx.get(f"{api.base_url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["down"] == ["storage"]
        # what needs no new space goes on: reads and matching
        assert httpx.get(f"{api.base_url}/v1/assets", headers=api.h("rep"), timeout=30).status_code == 200
        assert httpx.post(f"{api.base_url}/v1/match", headers=api.h("rep"), timeout=60,
                          json={"need_tags": {"therapy_area": ["cardiovascular"]}}).status_code == 200
        # a service started on the full volume starts, and says it is unavailable
        second = start_http(Settings(data_dir=data.parent / "second", llm_mode="off", worker_enabled=False,
                                     min_free_bytes=reserve))
        assert httpx.get(f"{second.base_url}/readyz", timeout=30).status_code == 503

        filler.unlink()  # space is freed: nothing to restart
        done = _until("the job's completion", lambda: (j := job())["status"] in ("succeeded", "partial", "failed")
                      and j, timeout=300)
        assert (done["status"], done["done"], done["failed"], done["error"]) == ("succeeded", len(FILES), 0, None)
        assert httpx.get(f"{api.base_url}/readyz", timeout=30).status_code == 200
        c = api.components
        from sqlalchemy import func, select

        from service.store.models import Chunk

        with c.db.session() as s:
            chunks = s.scalar(select(func.count()).select_from(Chunk))
        assert chunks and c.vectors.info()["points"] == chunks, "every stored chunk has its vector, and no more"
    finally:
        filler.unlink(missing_ok=True)
        if second is not None:
            stop_http(second)
        stop_http(api)


def _immutable(path: Path, on: bool) -> bool:
    """``chattr -R +i`` (or ``-i``) on ``path``; False where the filesystem or the user cannot."""
    try:
        return subprocess.run(["chattr", "-R", "+i" if on else "-i", str(path)], capture_output=True,
                              timeout=60).returncode == 0
    except FileNotFoundError:
        return False


def test_a_read_only_vector_store_refuses_uploads_with_503_and_the_process_lives(tmp_path, monkeypatch):
    api = start_http(Settings(data_dir=tmp_path / "data", llm_mode="off", worker_poll_s=0.1, min_free_bytes=0))
    qdrant = api.components.settings.qdrant_path
    frozen = False
    try:
        editor = api.h("content_editor")
        first = httpx.post(f"{api.base_url}/v1/uploads", files=[("files", (FILES[0].name, FILES[0].read_bytes()))],
                           headers=editor, timeout=60)
        assert api.wait_job(first.json()["id"])["status"] == "succeeded"
        frozen = _immutable(qdrant, True)
        if not frozen:  # fault injection where chattr cannot: the files answer access(2) as immutable ones do
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if qdrant in Path(path).parents
                                or Path(path) == qdrant else real_access(path, mode, **kw))
        r = httpx.post(f"{api.base_url}/v1/uploads", files=[("files", (FILES[1].name, FILES[1].read_bytes()))],
                       headers=editor, timeout=60)
        assert r.status_code == 503 and r.json()["code"] == "storage_read_only", r.text
        ready = httpx.get(f"{api.base_url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["down"] == ["storage"]
        assert httpx.post(f"{api.base_url}/v1/match", headers=api.h("rep"), timeout=60,
                          json={"need_tags": {"therapy_area": ["cardiovascular"]}}).status_code == 200
    finally:
        if frozen:
            _immutable(qdrant, False)
        monkeypatch.undo()
    try:
        r = httpx.post(f"{api.base_url}/v1/uploads", files=[("files", (FILES[1].name, FILES[1].read_bytes()))],
                       headers=api.h("content_editor"), timeout=60)
        assert r.status_code == 202 and api.wait_job(r.json()["id"])["status"] == "succeeded", r.text
    finally:
        stop_http(api)
