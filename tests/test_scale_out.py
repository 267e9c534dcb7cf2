"""Scale-out as it runs: two `hcp-content serve` replicas (worker off) and one `hcp-content worker`, on
PostgreSQL + pgvector only, on loopback ports. Uploads, taxonomy changes, retrains, a worker killed mid-job and
the rate limit all have to hold across the processes, not inside one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.auth.keys import create_key
from service.llm.local_server import free_port
from service.store.db import Database
from service.store.rate_limits import take

from .api_helpers import SAMPLES, wait_ready
from .test_jobs_crash import _files

ROOT = Path(__file__).resolve().parent.parent
RATE_LIMIT = 300
# approved and current, both languages, four formats
FILES = ["cardiovex/cardiovex_real_world_en.md", "cardiovex/cardiovex_bleeding_safety_en.pdf",
         "glucora/glucora_onset_zh.md", "glucora/glucora_patient_case_en.md", "glucora/glucora_price_access_en.txt",
         "cardiovex/cardiovex_renal_case_zh.docx"]
PROBE = ("Glucora once-weekly dosing lowered HbA1c by 1.8% at week 40; nausea was mild and transient, "
         "and patients preferred the pen.")


# --- the shared rate limit, in process: both databases, exact counts -------------------------------------------

def test_the_shared_rate_limit_counts_a_key_once_for_every_replica(database_url):
    """Two Database objects stand for two replicas: together they allow the limit once, refused requests are not
    counted, and the previous minute fades out of the window as it should."""
    replicas = [Database(database_url), Database(database_url)]
    replicas[0].migrate()
    start = 1_800_000_000.0  # the start of a minute
    try:
        allowed = [take(replicas[i % 2], "k1", 10, now=start + i * 0.1) is None for i in range(25)]
        assert sum(allowed) == 10 and allowed[:10] == [True] * 10
        wait = take(replicas[0], "k1", 10, now=start + 3)
        assert wait is not None and 56 <= wait <= 57
        assert take(replicas[1], "k2", 10, now=start + 3) is None, "another key has its own count"
        # 30 s into the next minute half of the previous 10 still count: 5 more fit (5 + 5 = 10), not 10
        later = [take(replicas[i % 2], "k1", 10, now=start + 90) is None for i in range(8)]
        assert sum(later) == 5
        assert all(take(replicas[0], "k1", 10, now=start + 240 + i) is None for i in range(10))

        # concurrent requests on both replicas cannot both take the last place
        results: list[bool] = []
        lock = threading.Lock()

        def hammer(db: Database) -> None:
            for _ in range(20):
                ok = take(db, "k3", 15, now=start + 600) is None
                with lock:
                    results.append(ok)

        threads = [threading.Thread(target=hammer, args=(replicas[i % 2],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(results) == 15 and len(results) == 80
    finally:
        for db in replicas:
            db.dispose()


# --- two replicas and a worker -----------------------------------------------------------------------------------

@dataclass
class Deployment:
    url: str
    env: dict[str, str]
    a: str
    b: str
    keys: dict[str, str]
    procs: dict[str, subprocess.Popen[str]]
    logs: Path

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def start(self, name: str, *args: str, port: int | None = None, **extra: str) -> subprocess.Popen[str]:
        env = {**self.env, "HCP_DATA_DIR": str(self.logs / name), **extra}
        if port is not None:
            env["HCP_PORT"] = str(port)
        log = (self.logs / f"{name}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, text=True)
        self.procs[name] = proc
        return proc

    def wait_job(self, base: str, job_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        job: dict = {}
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=self.h("admin"), timeout=30).json()
            if job["status"] in ("succeeded", "partial", "failed"):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not finish: {job}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def readyz(self, base: str) -> dict:
        return httpx.get(f"{base}/readyz", headers=self.h("admin"), timeout=30).json()

    def until(self, check, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(f"{what} did not happen within {timeout} s\n{self.tail()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, pgvector_url: str) -> Iterator[Deployment]:
    from .conftest import fresh_database

    logs = tmp_path_factory.mktemp("scale-out")
    with fresh_database(pgvector_url) as url:
        env = {**os.environ, "HCP_DATABASE_URL": url, "HCP_VECTOR_BACKEND": "pgvector", "HCP_LLM_MODE": "off",
               "HCP_WORKER_POLL_S": "0.2", "HCP_STATE_CHECK_S": "0.5", "HCP_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
               "HCP_WORKER_ENABLED": "false"}
        env.pop("HCP_LLM_BASE_URL", None)
        # the one-shot migration a deployment runs first, then keys for each role
        migrate = subprocess.run([sys.executable, "-m", "service.cli", "db", "upgrade"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        db = Database(url)
        with db.session() as s:
            keys = {role: create_key(s, role, f"scale-out {role}").secret
                    for role in ("admin", "content_editor", "reviewer", "rep")}
            keys["burst"] = create_key(s, "rep", "rate limit burst").secret
            keys["poll"] = create_key(s, "admin", "mid-job poll").secret
        db.dispose()
        env["HCP_MIGRATE_ON_START"] = "false"
        pa, pb = free_port(), free_port()
        d = Deployment(url, env, f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}", keys, {}, logs)
        try:
            d.start("replica-a", "serve", port=pa)
            # replica B is two processes on its port (HCP_SERVE_PROCESSES): every test through B goes through both
            d.start("replica-b", "serve", port=pb, HCP_SERVE_PROCESSES="2")
            d.start("worker", "worker")
            for base, name in ((d.a, "replica-a"), (d.b, "replica-b")):
                r = wait_ready(f"{base}/readyz", d.procs[name])
                assert r.status_code == 200, r.text
            yield d
        finally:
            for proc in d.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in d.procs.values():
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _upload(d: Deployment, base: str, paths: list[Path]) -> str:
    files = []
    for path in paths:
        files.append(("files", (path.name, path.read_bytes())))
        sidecar = path.with_name(path.name + ".meta.yaml")
        if sidecar.exists():
            files.append(("files", (sidecar.name, sidecar.read_bytes())))
    r = httpx.post(f"{base}/v1/uploads", files=files, headers=d.h("content_editor"), timeout=120)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _assets(d: Deployment, base: str) -> list[dict]:
    r = httpx.get(f"{base}/v1/assets", params={"limit": 200}, headers=d.h("admin"), timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _asset(d: Deployment, base: str, asset_id: str) -> dict:
    r = httpx.get(f"{base}/v1/assets/{asset_id}", headers=d.h("admin"), timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _probe(d: Deployment, base: str) -> dict:
    r = httpx.post(f"{base}/v1/tag", json={"text": PROBE, "title": "Glucora weekly dosing", "language": "en"},
                   headers=d.h("content_editor"), timeout=120)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _serving(d: Deployment, base: str) -> dict:
    return dict(d.readyz(base)["serving"])


@pytest.fixture(scope="module")
def uploaded(deployment: Deployment) -> list[str]:
    """The sample files uploaded through replica A and processed by the separate worker; their asset ids."""
    d = deployment
    job = d.wait_job(d.b, _upload(d, d.a, [SAMPLES / f for f in FILES]))
    assert job["status"] == "succeeded", job
    assert job["done"] == len(FILES)
    return [str(i["asset_id"]) for i in job["items"]]


def test_an_upload_through_one_replica_is_processed_by_the_worker_and_served_by_the_other(deployment, uploaded):
    d = deployment
    on_b = {a["id"]: a for a in _assets(d, d.b)}
    assert set(uploaded) <= set(on_b), "replica B lists what replica A took in and the worker stored"
    asset = _asset(d, d.b, uploaded[0])
    assert asset["tags"] and asset["chunks"]
    assert d.readyz(d.b)["components"]["vector_store"]["details"]["backend"] == "pgvector"
    r = httpx.post(f"{d.b}/v1/match", json={"need_tags": {"product": ["glucora"]}, "k": 5}, headers=d.h("rep"),
                   timeout=60)
    assert r.status_code == 200, r.text
    matched = {m["asset_id"] for m in r.json()["results"]}
    assert matched and matched <= set(uploaded)
    glucora = {a for a in uploaded if on_b[a]["product"] == "glucora"}
    assert glucora & matched
    tag = asset["tags"][0]
    r = httpx.post(f"{d.b}/v1/tags/{tag['id']}/review", json={"action": "accept"}, headers=d.h("reviewer"),
                   timeout=60)
    assert r.status_code == 200, r.text
    reviewed = next(t for t in _asset(d, d.a, uploaded[0])["tags"] if t["id"] == tag["id"])
    assert reviewed["status"] == "accepted", "replica A sees the review made through replica B"


def test_a_taxonomy_replaced_on_one_replica_is_retagged_by_the_worker_and_served_by_the_other(deployment, uploaded):
    d = deployment
    current = httpx.get(f"{d.b}/v1/taxonomy", headers=d.h("admin"), timeout=30).json()
    new_version = current["version"] + ".1"
    source = current["source"].replace(f'version: "{current["version"]}"', f'version: "{new_version}"', 1)
    source = source.replace("label: {zh: 心血管, en: Cardiovascular}",
                            "label: {zh: 心血管病, en: Cardiovascular disease}", 1)
    r = httpx.put(f"{d.b}/v1/taxonomy", json={"source": source, "expected_version": current["version"]},
                  headers=d.h("admin"), timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["changed_dimensions"] and answer["retag_job"]
    new_key = f"{current['id']}@{new_version}"
    job = d.wait_job(d.a, answer["retag_job"])
    assert job["status"] == "succeeded", job
    outcomes = [i["outcome"] for i in job["items"]]
    assert len(outcomes) == len(_assets(d, d.a))
    assert all(o.startswith("tagged:") for o in outcomes), f"the worker followed the new taxonomy: {outcomes}"
    changed = answer["changed_dimensions"]
    retagged = [t for a in uploaded for t in _asset(d, d.a, a)["tags"] if t["dimension"] in changed]
    assert retagged and all(t["taxonomy_version"] == new_key for t in retagged)
    d.until(lambda: _probe(d, d.a)["taxonomy"] == new_key, "replica A tagging with the new taxonomy")
    assert _serving(d, d.a)["taxonomy"] == _serving(d, d.b)["taxonomy"] == new_key


def test_a_retrain_run_by_the_worker_changes_what_both_replicas_propose(deployment, uploaded):
    d = deployment
    before_a, before_b = _probe(d, d.a), _probe(d, d.b)
    assert before_a["tags"] == before_b["tags"]
    generation_before = _serving(d, d.a)["model_generation"]
    for asset_id in uploaded:  # a reviewer decides every proposal: accept the first per dimension, reject the rest
        seen: set[str] = set()
        for tag in _asset(d, d.b, asset_id)["tags"]:
            if tag["status"] != "proposed" or tag["method"] == "metadata":
                continue
            action = "reject" if tag["dimension"] in seen else "accept"
            seen.add(tag["dimension"])
            r = httpx.post(f"{d.b}/v1/tags/{tag['id']}/review", json={"action": action}, headers=d.h("reviewer"),
                           timeout=60)
            assert r.status_code == 200, r.text
    r = httpx.post(f"{d.a}/v1/tagging/retrain", headers=d.h("reviewer"), timeout=60)
    assert r.status_code == 202, r.text
    job = d.wait_job(d.b, r.json()["id"])
    assert job["status"] == "succeeded", job
    generation = int(job["items"][0]["outcome"].rsplit("generation:", 1)[1])
    assert generation != generation_before
    d.until(lambda: _serving(d, d.a)["model_generation"] == _serving(d, d.b)["model_generation"] == generation,
            "both replicas serving the new generation")
    after_a, after_b = _probe(d, d.a), _probe(d, d.b)
    assert after_a["tags"] == after_b["tags"], "both replicas tag with the same heads"
    assert after_a["tags"] != before_a["tags"], "the retrained heads changed the proposals"


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_with_nothing_lost_or_doubled(tmp_path,
                                                                                              deployment, uploaded):
    d = deployment
    paths = _files(tmp_path / "notes", 12)
    job_id = _upload(d, d.a, paths)
    deadline = time.monotonic() + 240
    job: dict = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{d.b}/v1/jobs/{job_id}", headers=d.h("poll"), timeout=30).json()
        if job["done"] >= 2:
            break
        time.sleep(0.1)
    d.procs["worker"].send_signal(signal.SIGKILL)
    d.procs["worker"].wait(30)
    assert 2 <= job["done"] < 12, f"the kill must land mid-job: {job['done']} of 12 done"
    d.start("worker-2", "worker")
    job = d.wait_job(d.a, job_id)
    assert job["status"] == "succeeded", job
    assert job["done"] == 12 and all(i["status"] == "done" for i in job["items"])
    assets = _assets(d, d.b)
    titles = [a["title"] for a in assets]
    for path in paths:
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        assert titles.count(title) == 1, f"{title!r} stored {titles.count(title)} times"
    chunks = sum(len(_asset(d, d.b, a["id"])["chunks"]) for a in assets)
    points = d.readyz(d.b)["components"]["vector_store"]["details"]["points"]
    assert points == chunks, "every chunk has its vector and no vector is left without its chunk"


def test_the_rate_limit_holds_across_both_replicas(deployment):
    d = deployment
    statuses: dict[str, list[int]] = {d.a: [], d.b: []}
    lock = threading.Lock()

    def burst(base: str) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": d.keys["burst"]}, timeout=30) as client:
            for _ in range(RATE_LIMIT // 2):
                code = client.get("/v1/opt-outs/hcp-burst").status_code
                with lock:
                    statuses[base].append(code)

    threads = [threading.Thread(target=burst, args=(base,)) for base in (d.a, d.b) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = statuses[d.a] + statuses[d.b]
    assert set(codes) <= {200, 429}
    allowed = codes.count(200)
    # per process each replica would allow the whole limit (2x in all); shared, the key gets it once (a burst
    # that straddles a minute may get a little of the previous minute's share back)
    assert RATE_LIMIT <= allowed <= RATE_LIMIT * 1.2 and len(codes) == RATE_LIMIT * 2
    assert 429 in statuses[d.a] and 429 in statuses[d.b]


# --- several processes behind one port, on the shared stores ----------------------------------------------------
def test_serve_processes_share_one_port_over_postgresql_and_pgvector(deployment, uploaded):
    """Replica B runs with HCP_SERVE_PROCESSES=2: two processes answer on its port, each finds what replica A took in
    and the worker stored, and the same need ranks the same on both (no copies to drift)."""
    d = deployment
    need = {"need_tags": {"therapy_area": ["metabolism"]}, "k": 5}
    answers: dict[int, list[str]] = {}
    deadline = time.monotonic() + 120
    while len(answers) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=d.b, timeout=60) as client:  # a new connection: either process may take it
            process = client.get("/readyz", headers=d.h("admin")).json()["serving"]["process"]
            r = client.post("/v1/match", json=need, headers=d.h("rep"))
            assert r.status_code == 200, r.text
            answers[process] = [m["asset_id"] for m in r.json()["results"]]
    assert len(answers) == 2, f"one process answered every connection\n{d.tail()}"
    first, second = answers.values()
    assert first and first == second and set(first) <= set(uploaded)


def test_serve_processes_above_one_on_the_embedded_store_is_refused_with_what_to_use(tmp_path):
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path), "HCP_LLM_MODE": "off", "HCP_SERVE_PROCESSES": "2"}
    for name in ("HCP_DATABASE_URL", "HCP_VECTOR_BACKEND", "HCP_QDRANT_URL", "HCP_LLM_BASE_URL"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-m", "service.cli", "serve"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "pgvector" in out.stderr and "HCP_QDRANT_URL" in out.stderr
