"""A bulk ingest survives SIGKILL: after a restart every file is fully stored (row, tags, vectors) or reported
failed, nothing is half-written, and submitting the same files again completes cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.llm.local_server import free_port

from .test_serve import wait_ready

TOPICS = [
    ("Cardiovex bleeding risk in elderly patients", "Major bleeding was 1.2% per year in patients over 75."),
    ("Glucora onset of action", "HbA1c fell by 1.1 points within twelve weeks of once-weekly dosing."),
    ("卡地维克斯肾功能不全剂量", "肌酐清除率低于50毫升每分钟时剂量减半，出血风险未增加。"),
    ("格鲁可拉胃肠道耐受性", "恶心多为轻度且短暂，四周后发生率下降。"),
    ("Oncotinib rash management", "Grade 1 rash resolved with topical care in most patients."),
]


def _files(folder: Path, n: int = 20) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n):
        title, body = TOPICS[i % len(TOPICS)]
        path = folder / f"note_{i:02d}.md"
        paragraphs = "\n\n".join(f"{body} (section {k} of note {i})" for k in range(12))
        path.write_text(f"# {title} {i}\n\n{paragraphs}\n", encoding="utf-8")
        paths.append(path)
    return paths


def _start(data: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_PORT": str(port), "HCP_LLM_MODE": "off",
           "HCP_WORKER_POLL_S": "0.1"}
    env.pop("HCP_LLM_BASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _upload(base: str, headers: dict[str, str], paths: list[Path]) -> str:
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    r = httpx.post(f"{base}/v1/uploads", files=files, headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _wait(base: str, headers: dict[str, str], job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] in ("succeeded", "partial", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job did not finish: {job}")


def test_sigkill_during_a_20_file_ingest_loses_nothing_and_a_resubmit_completes(tmp_path):
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    paths = _files(tmp_path / "upload")
    proc = _start(data, port)
    try:
        wait_ready(f"{base}/readyz", proc)
        headers = {"X-API-Key": (data / "admin.key").read_text().strip()}
        job_id = _upload(base, headers, paths)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
            if job["done"] >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 3 <= job["done"] < 20, f"the kill must land mid-job: {job['done']} of 20 done"

    proc = _start(data, port)
    try:
        wait_ready(f"{base}/readyz", proc)
        job = _wait(base, headers, job_id)
        assert job["status"] in ("succeeded", "partial"), job
        assert job["done"] == 20 and len(job["items"]) == 20
        assert all(i["status"] in ("done", "failed") for i in job["items"])
        stored_chunks = 0
        for item in job["items"]:
            if item["status"] == "failed":
                assert item["error_code"] and item["error_message"]
                continue
            asset = httpx.get(f"{base}/v1/assets/{item['asset_id']}", headers=headers, timeout=10).json()
            assert asset["tags"] and asset["chunks"], item
            stored_chunks += len(asset["chunks"])
        points = httpx.get(f"{base}/readyz", timeout=10).json()["components"]["vector_store"]["details"]["points"]
        assert points == stored_chunks, "every vector belongs to a stored chunk and every chunk has its vector"

        again = _wait(base, headers, _upload(base, headers, paths))
        assert again["status"] == "succeeded" and again["failed"] == 0
        assert {i["outcome"] for i in again["items"]} <= {"unchanged", "created"}
        assert httpx.get(f"{base}/readyz", timeout=10).json()["components"]["vector_store"]["details"]["points"] \
            >= stored_chunks
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
