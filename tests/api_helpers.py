"""Helpers for API tests: a service over real stores with an ingested subset of the samples and a key per role."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.auth.keys import CreatedKey, create_key
from service.auth.roles import ROLES
from service.ingest import Ingestor
from service.runtime import Components, build_components
from service.settings import Settings
from service.store.models import Asset, AssetTag, Chunk, Job

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "content"
# approved and current, draft, withdrawn, expired (two), and both languages
SUBSET = [
    "cardiovex/cardiovex_real_world_en.md",
    "cardiovex/cardiovex_bleeding_safety_en.pdf",
    "cardiovex/cardiovex_esc_congress_draft_zh.txt",
    "cardiovex/cardiovex_vte_treatment_en.txt",
    "glucora/glucora_onset_zh.md",
    "oncotinib/oncotinib_access_program_zh.docx",
    "oncotinib/oncotinib_old_leaflet_zh.txt",
]
DRAFT_OR_EXPIRED = {"cardiovex_esc_congress_draft_zh.txt", "cardiovex_vte_treatment_en.txt",
                    "oncotinib_access_program_zh.docx", "oncotinib_old_leaflet_zh.txt"}


def wait_ready(url: str, proc: subprocess.Popen[Any], timeout: float = 180) -> httpx.Response:
    """The first 200 or 503 from ``url`` of a `serve` process starting up (failing if the process exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited early with {proc.returncode}"
        try:
            r = httpx.get(url, timeout=10)
            if r.status_code in (200, 503):
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("service did not come up")


@dataclass
class Api:
    client: TestClient
    components: Components
    keys: dict[str, str]

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def wait_job(self, job_id: str, timeout: float = 300) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=self.h("admin")).json()
            if job["status"] in ("succeeded", "partial", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish: {job}")

    def upload(self, paths: list[Path], role: str = "content_editor") -> dict[str, object]:
        files = []
        for p in paths:
            files.append(("files", (p.name, p.read_bytes())))
            for sidecar in (p.with_name(p.name + ".meta.yaml"),):
                if sidecar.exists():
                    files.append(("files", (sidecar.name, sidecar.read_bytes())))
        r = self.client.post("/v1/uploads", files=files, headers=self.h(role))
        assert r.status_code == 202, r.text
        return r.json()


def _keys(components: Components) -> dict[str, CreatedKey]:
    with components.db.session() as s:
        return {role: create_key(s, role, f"test {role}") for role in ROLES}


def start_api(settings: Settings) -> Api:
    components = build_components(settings)
    client = TestClient(create_app(settings, components))
    client.__enter__()
    return Api(client, components, {role: k.secret for role, k in _keys(components).items()})


def start_samples_api(data_dir: Path) -> Api:
    """A service (LLM off, no worker) with every sample ingested and tagged, as reps meet it."""
    settings = Settings(data_dir=data_dir, llm_mode="off", worker_enabled=False)
    api = start_api(settings)
    c = api.components
    Ingestor.from_settings(c.db, c.vectors, c.embedder, settings, tagger=c.tagger).ingest_path(SAMPLES)
    return api


def stop_api(api: Api) -> None:
    api.client.__exit__(None, None, None)
    api.components.close()


@dataclass
class HttpApi:
    """The service on a real loopback port (for a browser), over real stores, with a key per role."""

    base_url: str
    components: Components
    keys: dict[str, str]
    key_ids: dict[str, str]
    server: uvicorn.Server
    thread: threading.Thread

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.base_url}/v1/jobs/{job_id}", headers=self.h("admin"), timeout=30).json()
            if job["status"] in ("succeeded", "partial", "failed"):
                return dict(job)
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish")

    def ingest(self, rels: list[str]) -> None:
        """Ingest sample files straight through the service's own components (no job, no HTTP)."""
        ingest_samples(self.components, rels)


def ingest_samples(c: Components, rels: list[str]) -> None:
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger)
    for rel in rels:
        ingestor.ingest_path(SAMPLES / rel)


def start_http(settings: Settings) -> HttpApi:
    components = build_components(settings)
    created = _keys(components)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, components), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return HttpApi(f"http://127.0.0.1:{port}", components, {r: k.secret for r, k in created.items()},
                   {r: k.principal.key_id for r, k in created.items()}, server, thread)


def stop_http(api: HttpApi) -> None:
    api.server.should_exit = True
    api.thread.join(timeout=30)
    api.components.close()


@dataclass
class Hidden:
    """An asset a key must not reach: its id, title, tag ids and telling passages (40-character openings)."""

    id: str
    title: str
    tags: list[int]
    passages: list[str]

    @property
    def needles(self) -> list[str]:
        return [self.id, self.title, *self.passages]


def hidden_assets(c: Components, chosen: Callable[[Asset], bool]) -> list[Hidden]:
    """The stored assets ``chosen`` picks, as :class:`Hidden` (every chunk's 40-character opening)."""
    out = []
    with c.db.session() as s:
        for asset in s.scalars(select(Asset).order_by(Asset.id)):
            if not chosen(asset):
                continue
            chunks = list(s.scalars(select(Chunk.text).where(Chunk.asset_id == asset.id)))
            tags = list(s.scalars(select(AssetTag.id).where(AssetTag.asset_id == asset.id)))
            out.append(Hidden(asset.id, asset.title, tags, [t.strip()[:40] for t in chunks if len(t.strip()) >= 40]))
    return out


def first_job_id(c: Components) -> str:
    with c.db.session() as s:
        return s.scalars(select(Job.id)).first() or "nojob"


def _probe_bodies(op_path: str, method: str, hidden: Hidden) -> list[dict[str, Any] | None]:
    """Requests a rep could try to reach ``hidden``: by id, by its title and by two passages of its words."""
    words = [hidden.title, *hidden.passages[:2]]
    if op_path in ("/v1/match", "/v1/talking-points"):
        asks: list[dict[str, Any] | None] = [{"need_text": w[:2000], "language": lang, "k": 50} if op_path ==
                                             "/v1/match" else {"need_text": w[:2000], "language": lang}
                                             for w in words for lang in ("zh", "en")]
        if op_path == "/v1/talking-points":
            asks.append({"asset_ids": [hidden.id], "language": "en"})
        return asks
    if method in ("POST", "PUT"):
        return [{}]
    return [None]


def probe_every_path(base_url: str, headers: dict[str, str], hidden: list[Hidden], job_id: str) -> int:
    """Try every path and method of the OpenAPI spec with ``headers`` against each hidden asset (by id in
    the path, by title as ``q``, by passages as need text, by id as talking-point ``asset_ids``) and fail on
    any answer that shows one; a refusal may echo the id it was sent. Returns how many answers were 200."""
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    reached = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as http:
        for asset in hidden:
            for path, ops in spec["paths"].items():
                for method in ops:
                    url = (path.replace("{asset_id}", asset.id).replace("{job_id}", job_id)
                           .replace("{report_id}", "rep_0").replace("{hcp_id}", "hcp-1")
                           .replace("{key_id}", "nokey").replace("{tag_id}", str(asset.tags[0] if asset.tags else 1)))
                    params = {"q": asset.title[:100], "limit": 200} if path == "/v1/assets" else None
                    for body in _probe_bodies(path, method.upper(), asset):
                        r = http.request(method.upper(), url, params=params, json=body)
                        assert r.status_code < 500, (method, url, r.text[:300])
                        if r.status_code == 200:
                            reached += 1
                        leaked = [n for n in asset.needles if n and n in r.text
                                  and not (n == asset.id and r.status_code >= 400)]
                        assert not leaked, f"{method.upper()} {url} showed {leaked} to a key that may not see it"
    return reached
