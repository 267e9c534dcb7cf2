"""`hcp-content serve` with HCP_SERVE_PROCESSES=2 on the embedded stores (SQLite + qdrant-edge): one port, a
leader that owns every write and a follower that ranks on a core of its own over a copy of the index that
follows the leader. What a user sees must not depend on which process the kernel handed a connection to."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.auth.keys import create_key
from service.llm.local_server import free_port
from service.store.db import Database

from .api_helpers import SAMPLES, wait_ready

ROOT = Path(__file__).resolve().parent.parent
RATE_LIMIT = 60
FILES = ["glucora/glucora_onset_zh.md", "glucora/glucora_patient_case_en.md", "glucora/glucora_price_access_en.txt"]
NEED = {"need_tags": {"product": ["glucora"]}, "k": 5}


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    keys: dict[str, str]
    data: Path
    log: Path

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def client(self, role: str) -> tuple[httpx.Client, str, str]:
        """A client whose one kept-alive connection landed on a process that says it is ``role`` (leader or
        follower) in /readyz; with that process's vector copy folder, which names it."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            client = httpx.Client(base_url=self.url, timeout=60, limits=httpx.Limits(max_connections=1))
            store = client.get("/readyz", headers=self.h("admin")).json()["components"]["vector_store"]["details"]
            if store["role"] == role:
                return client, store["path"], role
            client.close()
        raise AssertionError(f"no connection reached the {role} within 60 s\n{self.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("two-processes"))
    try:
        assert wait_ready(f"{served.url}/readyz", served.proc).status_code == 200
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def start(data: Path) -> Served:
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_LLM_MODE": "off", "HCP_SERVE_PROCESSES": "2",
           "HCP_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT), "HCP_WORKER_POLL_S": "0.2", "HCP_REPLICA_POLL_S": "0.2"}
    env.pop("HCP_LLM_BASE_URL", None)
    db = Database(f"sqlite:///{data / 'hcp.db'}")
    db.migrate()
    with db.session() as s:
        keys = {role: create_key(s, role, f"two processes {role}").secret
                for role in ("admin", "content_editor", "rep")}
        keys["burst"] = create_key(s, "rep", "rate limit burst").secret
    db.dispose()
    port = free_port()
    env["HCP_PORT"] = str(port)
    log = data / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    return Served(f"http://127.0.0.1:{port}", proc, keys, data, log)


def followers_folder(s: Served) -> Path:
    return s.data / "qdrant" / "hcp_chunks" / "replica" / "followers"


def test_an_upload_through_the_follower_is_stored_by_the_leader_and_ranked_the_same_by_both(served):
    s = served
    follower, follower_path, _ = s.client("follower")
    leader, leader_path, _ = s.client("leader")
    try:
        assert Path(follower_path).parent == followers_folder(s) and "followers" not in leader_path
        files = []
        for name in FILES:
            path = SAMPLES / name
            files.append(("files", (path.name, path.read_bytes())))
            sidecar = path.with_name(path.name + ".meta.yaml")
            if sidecar.exists():
                files.append(("files", (sidecar.name, sidecar.read_bytes())))
        r = follower.post("/v1/uploads", files=files, headers=s.h("content_editor"))  # passed to the leader
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 180
        job: dict = {}
        while time.monotonic() < deadline:
            job = follower.get(f"/v1/jobs/{job_id}", headers=s.h("admin")).json()
            if job["status"] in ("succeeded", "partial", "failed"):
                break
            time.sleep(0.3)
        assert job.get("status") == "succeeded", job
        uploaded = {str(item["asset_id"]) for item in job["items"]}

        time.sleep(1.0)  # five of the follower's polls of the leader's log
        answers = {}
        for name, client in (("follower", follower), ("leader", leader)):
            r = client.post("/v1/match", json=NEED, headers=s.h("rep"))
            assert r.status_code == 200, r.text
            answers[name] = [(m["asset_id"], round(m["score"], 6)) for m in r.json()["results"]]
        matched = {asset for asset, _ in answers["follower"]}
        assert matched and matched <= uploaded, "the follower finds what the leader stored after it started"
        assert answers["follower"] == answers["leader"], "the same need ranks the same on either process"
        store = follower.get("/readyz", headers=s.h("admin")).json()["components"]["vector_store"]["details"]
        assert store["role"] == "follower" and store["applied_writes"] > 0
        # each process searches on its own thread: handing a search to a pool only adds switches between them
        assert store["search_threads"] == 1
        leader_store = leader.get("/readyz", headers=s.h("admin")).json()["components"]["vector_store"]["details"]
        assert leader_store["search_threads"] == 1

        # a bad request passed to the leader keeps its error shape
        r = follower.post("/v1/keys", json={"role": "emperor", "name": "x"}, headers=s.h("admin"))
        assert r.status_code == 422 and r.json()["code"], r.text
    finally:
        follower.close()
        leader.close()


def test_the_rate_limit_holds_across_both_processes(served):
    s = served
    codes: list[int] = []
    for _ in range(RATE_LIMIT * 2):  # a new connection each: the kernel spreads them over both processes
        codes.append(httpx.get(f"{s.url}/v1/opt-outs/hcp-burst", headers=s.h("burst"), timeout=30).status_code)
    assert set(codes) <= {200, 404, 429}
    allowed = len(codes) - codes.count(429)
    # per process each would allow the whole limit; counted in the database, the key gets it once (a burst
    # straddling a minute may get a little of the previous minute's share back)
    assert RATE_LIMIT <= allowed <= RATE_LIMIT * 1.2, codes


def test_a_killed_follower_is_replaced_while_the_port_keeps_answering_and_sigterm_stops_all(served):
    s = served
    follower, path, _ = s.client("follower")
    follower.close()
    os.kill(int(Path(path).name), signal.SIGKILL)
    # connections the kernel queued for the dying process in the moment it died are reset (as behind any
    # balancer); once it is gone, every new one reaches a live process
    time.sleep(0.5)
    codes = [httpx.get(f"{s.url}/healthz", timeout=30).status_code for _ in range(50)]
    assert codes == [200] * 50
    deadline = time.monotonic() + 120
    replacement = path
    while time.monotonic() < deadline and replacement == path:
        with httpx.Client(base_url=s.url, timeout=30) as probe:
            store = probe.get("/readyz", headers=s.h("admin")).json()["components"]["vector_store"]["details"]
        if store["role"] == "follower":
            replacement = store["path"]
        time.sleep(0.2)
    assert replacement != path, f"no new follower within 120 s\n{s.log.read_text()[-3000:]}"
    r = httpx.post(f"{s.url}/v1/match", json=NEED, headers=s.h("rep"), timeout=60)
    assert r.status_code == 200 and r.json()["results"], r.text

    started = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(60) == 0
    assert time.monotonic() - started < 30
    pid = int(Path(replacement).name)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert list(followers_folder(s).iterdir()) == [], "followers remove their copies when they stop"


def test_followers_of_a_leader_killed_outright_stop_and_free_the_port(tmp_path):
    s = start(tmp_path / "data")
    try:
        assert wait_ready(f"{s.url}/readyz", s.proc).status_code == 200
        _, path, _ = s.client("follower")
        follower = int(Path(path).name)
        s.proc.kill()  # SIGKILL: the leader cannot stop anything itself
        s.proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if gone(follower):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the follower outlived its leader by 30 s\n{s.log.read_text()[-3000:]}")
        port = int(s.url.rsplit(":", 1)[1])
        with socket.socket() as probe:  # the next `serve` can have the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
