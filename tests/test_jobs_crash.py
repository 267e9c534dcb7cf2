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


def _kill_once_done(proc: subprocess.Popen[str], base: str, headers: dict[str, str], job_id: str,
                    done: int) -> dict:
    """SIGKILL the service as soon as ``done`` items of the job have finished; the job as last seen."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["done"] >= done:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return dict(job)


def test_sigkill_during_a_20_file_ingest_loses_nothing_and_a_resubmit_completes(tmp_path):
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    paths = _files(tmp_path / "upload")
    proc = _start(data, port)
    try:
        wait_ready(f"{base}/readyz", proc)
        headers = {"X-API-Key": (data / "admin.key").read_text().strip()}
        job_id = _upload(base, headers, paths)
        job = _kill_once_done(proc, base, headers, job_id, 3)
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
        points = httpx.get(f"{base}/readyz", headers=headers,
                           timeout=10).json()["components"]["vector_store"]["details"]["points"]
        assert points == stored_chunks, "every vector belongs to a stored chunk and every chunk has its vector"

        again = _wait(base, headers, _upload(base, headers, paths))
        assert again["status"] == "succeeded" and again["failed"] == 0
        assert {i["outcome"] for i in again["items"]} <= {"unchanged", "created"}
        again_ready = httpx.get(f"{base}/readyz", headers=headers, timeout=10).json()
        assert again_ready["components"]["vector_store"]["details"]["points"] >= stored_chunks
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_sigkill_during_a_taxonomy_retag_loses_no_tag_and_the_job_finishes_after_restart(tmp_path):
    import yaml

    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    paths = _files(tmp_path / "upload")
    proc = _start(data, port)
    try:
        wait_ready(f"{base}/readyz", proc)
        headers = {"X-API-Key": (data / "admin.key").read_text().strip()}
        assert _wait(base, headers, _upload(base, headers, paths))["status"] == "succeeded"
        assets = httpx.get(f"{base}/v1/assets", params={"limit": 200}, headers=headers, timeout=30).json()["items"]
        assert len(assets) == 20
        # the change touches a dimension every asset is tagged in; a reviewer's decision on it must survive
        shared = set.intersection(*({t["dimension"] for t in a["tags"]} for a in assets))
        dim = "content_type" if "content_type" in shared else sorted(shared)[0]
        gold = next(t for a in assets for t in a["tags"] if t["dimension"] == dim)
        r = httpx.post(f"{base}/v1/tags/{gold['id']}/review", json={"action": "accept"}, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        before = {a["id"]: {(t["dimension"], t["value"]) for t in a["tags"] if t["dimension"] != dim}
                  for a in assets}

        current = httpx.get(f"{base}/v1/taxonomy", headers=headers, timeout=30).json()
        doc = yaml.safe_load(current["source"])
        doc["version"] = current["version"] + ".1"
        changed = next(d for d in doc["dimensions"] if d["id"] == dim)
        changed["values"][0]["definition"] = {"en": "Material written for the people who treat the patients.",
                                              "zh": "为诊治患者的医生编写的材料。"}
        r = httpx.put(f"{base}/v1/taxonomy", json={"source": yaml.safe_dump(doc, allow_unicode=True),
                                                   "expected_version": current["version"]},
                      headers=headers, timeout=60)
        assert r.status_code == 200 and r.json()["changed_dimensions"] == [dim], r.text
        job_id = r.json()["retag_job"]
        job = _kill_once_done(proc, base, headers, job_id, 2)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 2 <= job["done"] < job["total"], f"the kill must land mid-job: {job['done']} of {job['total']} done"

    proc = _start(data, port)
    try:
        wait_ready(f"{base}/readyz", proc)
        job = _wait(base, headers, job_id)
        assert job["status"] == "succeeded" and job["done"] == job["total"] and job["failed"] == 0, job
        after = httpx.get(f"{base}/v1/assets", params={"limit": 200}, headers=headers, timeout=30).json()["items"]
        assert {a["id"] for a in after} == set(before), "every asset is still there"
        for a in after:
            retagged = [t for t in a["tags"] if t["dimension"] == dim]
            assert retagged, f"{a['id']} lost its {dim} tags"
            if a["id"] == gold_asset(assets, gold):
                kept = next(t for t in retagged if t["id"] == gold["id"])
                assert kept["status"] == "accepted", "a reviewed tag is gold: re-tagging never overwrites it"
            else:
                assert all(t["taxonomy_version"].endswith(doc["version"]) for t in retagged), a["id"]
            others = {(t["dimension"], t["value"]) for t in a["tags"] if t["dimension"] != dim}
            assert others == before[a["id"]], "dimensions the change did not touch keep their tags"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def gold_asset(assets: list[dict], tag: dict) -> str:
    return next(a["id"] for a in assets if any(t["id"] == tag["id"] for t in a["tags"]))
