"""One unit of work per request: a route's writes commit before its answer is sent, and what follows a write
(serving a new taxonomy, waking the worker for its re-tag job) happens only once the commit has landed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from service.app import create_app
from service.settings import Settings
from service.store.models import TaxonomyVersion

from .api_helpers import SUBSET, Api, ingest_samples, start_api, stop_api


class CommitFault:
    """A fault injected at commit: the session that wrote a new taxonomy version fails to commit, as it would on
    a dropped connection or a full disk. Named as a fault; used only here."""

    def __init__(self) -> None:
        self.failed = 0

    def flushed(self, session: Session, _context: Any) -> None:
        if any(isinstance(o, TaxonomyVersion) for o in session.new):
            session.info["commit_fault"] = True

    def committing(self, session: Session) -> None:
        if session.info.pop("commit_fault", False) or any(isinstance(o, TaxonomyVersion) for o in session.new):
            self.failed += 1
            raise RuntimeError("injected: the commit failed")

    def __enter__(self) -> CommitFault:
        event.listen(Session, "after_flush", self.flushed)
        event.listen(Session, "before_commit", self.committing)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(Session, "after_flush", self.flushed)
        event.remove(Session, "before_commit", self.committing)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(Settings(data_dir=tmp_path_factory.mktemp("uow") / "data", llm_mode="off", worker_enabled=False))
    ingest_samples(api.components, SUBSET[:2])
    # a failed commit answers 500 like any server fault; this client reads that answer instead of raising (not
    # entered, so its lifespan neither starts nor closes the components the fixture's own client runs)
    app = create_app(api.components.settings, api.components)
    app.state.components = api.components
    api.tolerant = TestClient(app, raise_server_exceptions=False)  # type: ignore[attr-defined]
    yield api
    stop_api(api)


def _new_version(api: Api, version: str) -> dict[str, str]:
    source = api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["source"]
    old = api.components.tagger.taxonomy.version
    return {"source": source.replace(f'version: "{old}"', f'version: "{version}"', 1)
            .replace("Cardiovascular", "Cardiovascular disease", 1)}


def _retag_jobs(api: Api) -> list[dict[str, Any]]:
    return [j for j in api.client.get("/v1/jobs", headers=api.h("admin")).json() if j["kind"] == "retag"]


def test_a_taxonomy_whose_commit_fails_is_neither_served_nor_recorded_nor_retagged(api):
    before = api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["version"]
    body = _new_version(api, "uow-failed")
    with CommitFault() as fault:
        r = api.tolerant.put("/v1/taxonomy", json=body, headers=api.h("admin"))  # type: ignore[attr-defined]
    assert fault.failed == 1, r.text
    assert r.status_code == 500 and r.json()["code"] == "internal_error", r.text
    assert api.components.tagger.taxonomy.version == before, "a taxonomy that did not commit is not served"
    assert api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["version"] == before
    assert _retag_jobs(api) == [], "no re-tag job without its taxonomy"
    audit = api.client.get("/v1/audit", params={"action": "taxonomy.replace"}, headers=api.h("admin")).json()
    assert audit["items"] == []


def test_a_committed_taxonomy_is_served_and_readable_as_soon_as_the_answer_arrives(api):
    r = api.client.put("/v1/taxonomy", json=_new_version(api, "uow-ok"), headers=api.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["retag_job"], "the changed dimension re-tags the stored assets"
    # the answer came after the commit: the next request, on its own session, reads what this one wrote
    assert api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["version"] == "uow-ok"
    assert api.components.tagger.taxonomy.version == "uow-ok"
    job = api.client.get(f"/v1/jobs/{r.json()['retag_job']}", headers=api.h("admin")).json()
    assert job["kind"] == "retag" and job["total"] == 2 and len(job["items"]) == 2
