"""``GET /v1/me`` (what a client shows each key) and the audit log's filters (actor, action, day), over a real
service with a key per role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from service.auth.roles import GRANTS
from service.settings import Settings

from .api_helpers import Api, start_api, stop_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(Settings(data_dir=tmp_path_factory.mktemp("me") / "data", llm_mode="off", worker_enabled=False))
    yield api
    stop_api(api)


def test_every_key_reads_its_own_role_permissions_and_scope_and_nothing_else(api: Api):
    for role in ("admin", "content_editor", "reviewer", "rep"):
        r = api.client.get("/v1/me", headers=api.h(role))
        assert r.status_code == 200, r.text
        me = r.json()
        assert me["role"] == role and me["permissions"] == sorted(GRANTS[role])  # type: ignore[index]
        assert api.keys[role].startswith(f"hcp_{me['key_id']}_") and me["scope"] is None
        assert "secret" not in me and api.keys[role] not in r.text
    assert "keys:admin" in api.client.get("/v1/me", headers=api.h("admin")).json()["permissions"]
    assert "keys:admin" not in api.client.get("/v1/me", headers=api.h("rep")).json()["permissions"]
    r = api.client.get("/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "missing_api_key"


def test_the_audit_log_filters_by_actor_action_and_day_and_shows_a_revocation_before_and_after(api: Api):
    admin = api.client.get("/v1/me", headers=api.h("admin")).json()["key_id"]
    created = api.client.post("/v1/keys", headers=api.h("admin"), json={"name": "Audit probe", "role": "reviewer"})
    assert created.status_code == 201, created.text
    probe = created.json()["id"]
    assert api.client.delete(f"/v1/keys/{probe}", headers=api.h("admin")).status_code == 204

    def audit(**params: str) -> list[dict]:
        r = api.client.get("/v1/audit", headers=api.h("admin"), params={"target_id": probe, **params})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    assert [e["action"] for e in audit(actor=admin)] == ["key.revoke", "key.create"]
    assert audit(actor="somebody-else") == []
    revoke = audit(action="key.revoke")[0]
    assert revoke["before"]["revoked_at"] is None and revoke["after"]["revoked_at"]
    assert revoke["before"]["name"] == revoke["after"]["name"] == "Audit probe"
    today = datetime.now(UTC).date()
    assert len(audit(since=str(today), until=str(today))) == 2  # until takes the whole day
    assert audit(since=str(today + timedelta(days=1))) == []
    assert audit(until=str(today - timedelta(days=1))) == []
    r = api.client.get("/v1/audit", headers=api.h("admin"), params={"since": str(today), "until": "2000-01-01"})
    assert r.status_code == 422 and r.json()["code"] == "bad_date_range"
    r = api.client.get("/v1/audit", headers=api.h("admin"), params={"since": "yesterday"})
    assert r.status_code == 422 and r.json()["code"]
    assert api.client.get("/v1/audit", headers=api.h("reviewer")).status_code == 403


def test_hostile_small_inputs_are_answers_not_500s(api: Api):
    """Issue 46, findings 11 and 12: the last day there is, a 300-character file name, a key name that reads
    backwards."""
    r = api.client.get("/v1/audit", params={"until": "9999-12-31"}, headers=api.h("admin"))
    assert r.status_code == 200 and isinstance(r.json()["items"], list), r.text
    long_name = "报告" * 150 + ".txt"  # 904 bytes in UTF-8
    r = api.client.post("/v1/uploads", files=[("files", (long_name, "卡迪维每日一次。".encode()))],
                        headers=api.h("content_editor"))
    assert r.status_code == 202, r.text
    job = api.client.get(f"/v1/jobs/{r.json()['id']}", headers=api.h("admin")).json()  # queued: no worker here
    item = job["items"][0]
    assert job["total"] == 1 and len(item["name"].encode()) <= 200 and item["name"].endswith(".txt")
    before = len(api.client.get("/v1/keys", headers=api.h("admin")).json())
    for name in ("admin\u202egnp.exe", "ops\u2066x\u2069", "a\u200fb"):
        r = api.client.post("/v1/keys", json={"role": "rep", "name": name}, headers=api.h("admin"))
        assert r.status_code == 422 and r.json()["code"], (name, r.text)
    assert len(api.client.get("/v1/keys", headers=api.h("admin")).json()) == before
