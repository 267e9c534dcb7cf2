"""Helpers for API tests: a service over real stores with an ingested subset of the samples and a key per role."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.auth.keys import create_key
from service.runtime import Components, build_components
from service.settings import Settings

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


def start_api(settings: Settings) -> Api:
    components = build_components(settings)
    client = TestClient(create_app(settings, components))
    client.__enter__()
    keys = {role: create_key(components.db, role, f"test {role}").secret
            for role in ("admin", "content_editor", "reviewer", "rep")}
    return Api(client, components, keys)


def stop_api(api: Api) -> None:
    api.client.__exit__(None, None, None)
    api.components.close()
