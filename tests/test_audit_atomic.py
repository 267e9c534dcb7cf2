"""Every write and its audit entry commit together or not at all: at each site that audits, a fault makes the
audit statement fail, and then neither the write nor the entry is found (every table holds what it held).
Run once more without the fault, the same call writes both, so the check can fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text

from service.auth.keys import CreatedKey, KeyScope, create_key, revoke_key, set_scope
from service.ingest import Ingestor
from service.reports.build import build_report
from service.reports.runs import run_from_reviews
from service.reports.stored import save_report
from service.settings import Settings
from service.store import audit
from service.store.models import Asset, AssetTag, AuditEntry

from .api_helpers import SAMPLES, SUBSET, Api, start_api, stop_api

NEW_TAXONOMY_VERSION = "2099.1.1"


class AuditWriteFault:
    """Injects a fault: the audit entry it adds breaks a NOT NULL constraint, so its INSERT fails at flush,
    after the write it records was added to the same session."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, session: Any, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        session.add(AuditEntry(actor=None, role="fault", action="fault", target_type="fault", target_id=None))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("audit") / "data"
    roots = tmp_path_factory.mktemp("roots")
    (roots / "note.md").write_text("# Cardiovex note\n\nMajor bleeding was rare.\n", encoding="utf-8")
    api = start_api(Settings(data_dir=data, llm_mode="off", worker_enabled=False, ingest_roots=[roots]))
    c = api.components
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger)
    for rel in SUBSET[:3]:
        ingestor.ingest_path(SAMPLES / rel)
    api.faultless = TestClient(api.client.app, raise_server_exceptions=False)  # type: ignore[attr-defined]
    api.roots = roots  # type: ignore[attr-defined]
    yield api
    stop_api(api)


def table_counts(api: Api) -> dict[str, int]:
    c = api.components
    with c.db.session() as s:
        return {t: int(s.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)
                for t in inspect(c.db.engine).get_table_names() if t not in ("store_changes", "alembic_version")}


def _tag(api: Api, status: str = "proposed") -> AssetTag:
    with api.components.db.session() as s:
        tag = s.scalars(select(AssetTag).where(AssetTag.status == status).order_by(AssetTag.id)).first()
        assert tag is not None
        return tag


def _asset_id(api: Api, n: int = 0) -> str:
    with api.components.db.session() as s:
        return list(s.scalars(select(Asset.id).order_by(Asset.id)))[n]


def _http(method: str, path: str, role: str = "admin", **kwargs: Any) -> Callable[[Api], int]:
    def act(api: Api) -> int:
        client: TestClient = api.faultless  # type: ignore[attr-defined]
        return client.request(method, path, headers=api.h(role), **kwargs).status_code
    return act


def _taxonomy(api: Api) -> int:
    source = (api.components.settings.taxonomy_path).read_text(encoding="utf-8")
    version = api.components.tagger.taxonomy.version
    body = {"source": source.replace(f"version: \"{version}\"", f"version: \"{NEW_TAXONOMY_VERSION}\"", 1)
            .replace("Cardiovascular", "Cardiovascular disease", 1)}
    client: TestClient = api.faultless  # type: ignore[attr-defined]
    return client.put("/v1/taxonomy", json=body, headers=api.h("admin")).status_code


def _review(api: Api) -> int:
    return _http("POST", f"/v1/tags/{_tag(api).id}/review", "reviewer", json={"action": "accept"})(api)


def _add_tag(api: Api) -> int:
    return _http("POST", f"/v1/assets/{_asset_id(api)}/tags", "reviewer",
                 json={"dimension": "value_driver", "value": "onset_speed"})(api)


def _opt_in(api: Api) -> int:
    _after_baseline(api, lambda: _http("POST", "/v1/opt-outs", "rep", json={"hcp_id": "hcp-opt-in"})(api))
    return _http("DELETE", "/v1/opt-outs/hcp-opt-in", "rep")(api)


def _delete(api: Api) -> int:
    return _http("DELETE", f"/v1/assets/{_asset_id(api, 1)}", "content_editor")(api)


def _path_job(api: Api) -> int:
    return _http("POST", "/v1/ingest/path", "content_editor", json={"path": str(api.roots)})(api)  # type: ignore[attr-defined]


def _upload(api: Api) -> int:
    files = [("files", ("upload.md", b"# Glucora\n\nHbA1c fell by 1.8%.\n"))]
    return _http("POST", "/v1/uploads", "content_editor", files=files)(api)


def _new_key(api: Api, role: str, name: str) -> CreatedKey:
    with api.components.db.session() as s:
        return create_key(s, role, name)


def _key_create(api: Api) -> int:
    _new_key(api, "reviewer", "audited key")
    return 201


def _key_scope(api: Api) -> int:
    key = _after_baseline(api, lambda: _new_key(api, "rep", "scoped later"))
    with api.components.db.session() as s:
        set_scope(s, key.principal.key_id, KeyScope(("glucora",)), api.components.tagger.taxonomy, ("cli", "admin"))
    return 200


def _key_revoke(api: Api) -> int:
    key = _after_baseline(api, lambda: _new_key(api, "rep", "revoked later"))
    with api.components.db.session() as s:
        return 204 if revoke_key(s, key.principal.key_id) else 404


def _report(api: Api) -> int:
    c = api.components

    def reviewed_run() -> Any:
        _http("POST", f"/v1/tags/{_tag(api).id}/review", "reviewer", json={"action": "reject"})(api)
        with c.db.session() as s:
            run = run_from_reviews(s, c.tagger.taxonomy)
        return build_report(c.tagger.taxonomy, run, title="audited", threshold=0.8)

    report = _after_baseline(api, reviewed_run)
    with c.db.session() as s:
        save_report(s, report, "cli", "admin")
    return 201


def _ingest(api: Api) -> int:
    c = api.components
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger)
    outcomes = ingestor.ingest_path(SAMPLES / SUBSET[4])
    return 201 if all(o.error is None for o in outcomes) else 500


def _after_baseline(api: Api, prepare: Callable[[], Any]) -> Any:
    """Runs ``prepare`` with the real audit (its writes belong to the set-up), then counts the tables again: the
    comparison starts from there."""
    fault = audit.record
    audit.record = api.real_record  # type: ignore[attr-defined]
    try:
        out = prepare()
    finally:
        audit.record = fault
    api.baseline = table_counts(api)  # type: ignore[attr-defined]
    return out


SITES: dict[str, tuple[Callable[[Api], int], str]] = {
    "key.create": (_key_create, "api_keys"),
    "key.scope": (_key_scope, "audit_log"),
    "key.revoke": (_key_revoke, "audit_log"),
    "job.create (upload)": (_upload, "jobs"),
    "job.create (path)": (_path_job, "jobs"),
    "taxonomy.replace and its re-tag job": (_taxonomy, "taxonomy_versions"),
    "tag.accept": (_review, "tag_reviews"),
    "tag.add": (_add_tag, "tag_reviews"),
    "hcp.opt_out": (_http("POST", "/v1/opt-outs", "rep", json={"hcp_id": "hcp-audited"}), "hcp_opt_outs"),
    "hcp.opt_in": (_opt_in, "audit_log"),
    "asset.delete": (_delete, "assets"),
    "job.create (retrain)": (_http("POST", "/v1/tagging/retrain", "reviewer"), "jobs"),
    "eval_report.create": (_report, "eval_reports"),
    "asset.create (ingest)": (_ingest, "assets"),
}


@pytest.mark.parametrize("site", list(SITES))
def test_a_write_and_its_audit_entry_commit_together_or_not_at_all(api, site, monkeypatch):
    act, table = SITES[site]
    api.real_record = audit.record
    fault = AuditWriteFault()
    monkeypatch.setattr(audit, "record", fault)
    api.baseline = table_counts(api)
    try:
        status = act(api)
    except Exception:  # a direct call raises the database's error; the API answers 5xx
        status = 500
    assert fault.calls >= 1, f"{site} never wrote an audit entry"
    assert status >= 500
    assert table_counts(api) == api.baseline, f"{site}: a write survived its failed audit entry"

    monkeypatch.setattr(audit, "record", api.real_record)
    before = table_counts(api)
    status = act(api)
    assert status < 300, f"{site} failed without the fault: {status}"
    after = table_counts(api)
    assert after["audit_log"] > before["audit_log"]
    assert after[table] != before[table] or table == "audit_log", f"{site} wrote nothing to {table}"
    with api.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.role == "fault")) == 0
