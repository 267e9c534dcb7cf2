"""Security: secrets stay secret, keys are checked, a rep never sees unapproved content by any route, CORS is
closed unless configured, and no answer carries a stack trace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.llm.local_server import free_port
from service.settings import Settings
from service.store.models import ApiKey

from .api_helpers import (
    DRAFT_OR_EXPIRED,
    SUBSET,
    HttpApi,
    first_job_id,
    hidden_assets,
    probe_every_path,
    start_http,
    stop_http,
)
from .test_serve import wait_ready


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_key_secrets_appear_once_at_creation_and_never_in_logs_responses_or_the_database(tmp_path):
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, "HCP_DATA_DIR": str(data), "HCP_PORT": str(port), "HCP_LLM_MODE": "off",
           "HCP_LOG_LEVEL": "debug"}
    env.pop("HCP_LLM_BASE_URL", None)
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    secrets: list[str] = []
    bodies: list[str] = []
    try:
        wait_ready(f"{base}/readyz", proc)
        admin = (data / "admin.key").read_text().strip()
        secrets.append(admin)
        created = _cli(env, "keys", "create", "--role", "rep", "--name", "field rep")
        rep = created.stdout.strip().splitlines()[-1]
        assert created.returncode == 0 and rep.startswith("hcp_") and created.stdout.count(rep) == 1
        secrets.append(rep)
        key_id = rep.split("_")[1]
        listed = _cli(env, "keys", "list")
        assert key_id in listed.stdout and rep not in listed.stdout and rep[-12:] not in listed.stdout

        with httpx.Client(base_url=base, timeout=60) as http:
            for key in (admin, rep):
                for path in ("/v1/assets", "/v1/taxonomy", "/v1/audit", "/v1/jobs", "/v1/opt-outs/hcp-1"):
                    for header in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
                        bodies.append(http.get(path, headers=header).text)
                bodies.append(http.post("/v1/match", headers={"X-API-Key": key},
                                        json={"need_tags": {"therapy_area": ["cardiovascular"]}}).text)
            # a near-miss, a malformed and an unknown key are refused, and the answer does not echo them
            forged = rep[:-4] + ("AAAA" if not rep.endswith("AAAA") else "BBBB")
            for bad in (forged, "hcp_nosuchkey_" + "x" * 43, "not-a-key", rep + "x", rep[:20]):
                r = http.get("/v1/assets", headers={"Authorization": f"Bearer {bad}"})
                assert r.status_code == 401 and r.json()["code"] == "invalid_api_key", bad
                assert bad.strip() not in r.text
                bodies.append(r.text)
            assert http.get("/v1/assets", headers={"X-API-Key": rep}).status_code == 200
            assert http.get("/v1/assets", params={"q": "searched-for-zq"}, headers={"X-API-Key": rep}).status_code \
                == 200
            revoked = _cli(env, "keys", "revoke", key_id)
            assert revoked.returncode == 0
            r = http.get("/v1/assets", headers={"X-API-Key": rep})
            assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"
            audit = http.get("/v1/audit", headers={"X-API-Key": admin}).json()
            assert {"key.create", "key.revoke"} <= {e["action"] for e in audit["items"]}
            bodies.append(str(audit))
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert "GET /v1/assets" in output, "the access log was on, so the check below means something"
    # the access log names routes by their template: no HCP id, no search text (issue 46, finding 12)
    assert '"GET /v1/opt-outs/{hcp_id}" 200' in output
    assert "hcp-1" not in output and "searched-for-zq" not in output
    for secret in secrets:
        secret_part = secret.split("_", 2)[2]
        assert secret_part not in output, "a key's secret reached the log"
        assert not any(secret_part in body for body in bodies), "a key's secret came back in a response"
    from service.store.db import Database

    db = Database(f"sqlite:///{data / 'hcp.db'}")
    with db.session() as s:
        rows = [(k.id, k.key_hash) for k in s.scalars(select(ApiKey))]
    db.dispose()
    stored = " ".join(f"{i} {h}" for i, h in rows)
    assert rows and not any(secret.split("_", 2)[2] in stored for secret in secrets)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, h in rows), "only a SHA-256 is stored"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("security") / "data", llm_mode="off", worker_poll_s=0.1,
                        retrain_after_reviews=10_000, rate_limit_per_minute=1_000_000)
    api = start_http(settings)
    api.ingest(SUBSET)
    yield api
    stop_http(api)


def test_a_rep_reaches_no_unapproved_content_through_any_endpoint(live):
    hidden = hidden_assets(live.components, lambda a: Path(a.uri or "").name in DRAFT_OR_EXPIRED)
    assert len(hidden) == len(DRAFT_OR_EXPIRED)
    reached = probe_every_path(live.base_url, live.h("rep"), hidden, first_job_id(live.components))
    assert reached >= 20, "the rep's own routes answered, so the checks above looked at real results"


def test_cors_is_closed_by_default_and_opens_only_to_configured_origins(live, tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    r = httpx.options(f"{live.base_url}/v1/match", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in r.headers and r.status_code >= 400
    r = httpx.get(f"{live.base_url}/v1/assets", headers={**live.h("rep"), "Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    opened = start_http(Settings(data_dir=tmp_path / "data", llm_mode="off",
                                 cors_origins=["https://crm.example.com"]))
    try:
        ok = httpx.options(f"{opened.base_url}/v1/match", timeout=30,
                           headers={**preflight, "Origin": "https://crm.example.com"})
        assert ok.headers.get("access-control-allow-origin") == "https://crm.example.com"
        other = httpx.options(f"{opened.base_url}/v1/match", headers=preflight, timeout=30)
        assert "access-control-allow-origin" not in other.headers
    finally:
        stop_http(opened)


def test_the_console_is_served_with_its_content_security_policy_and_the_api_without_it(live):
    """The console's pages may run only the service's own scripts (no inline script, nothing from elsewhere); the
    API's JSON needs no such policy and does not pay for one."""
    for path in ("/console", "/console/", "/console/console.js"):
        r = httpx.get(f"{live.base_url}{path}", timeout=30, follow_redirects=False)
        assert "script-src 'self'" in r.headers.get("content-security-policy", ""), path
        assert r.headers.get("x-content-type-options") == "nosniff" and r.headers.get("referrer-policy") == \
            "no-referrer", path
    api = httpx.get(f"{live.base_url}/v1/assets", headers=live.h("rep"), timeout=30)
    assert api.status_code == 200 and "content-security-policy" not in api.headers
    near = httpx.get(f"{live.base_url}/consoles", timeout=30)  # a path that only starts like the console's
    assert "content-security-policy" not in near.headers


def test_an_unexpected_error_answers_500_without_a_stack_trace(live, monkeypatch, caplog):
    def broken(*_: object, **__: object) -> None:  # fault injection: a bug deep in matching
        raise RuntimeError("boom in /srv/hcp/service/matching/secret_module.py line 42")

    monkeypatch.setattr(live.components.matcher, "match", broken)
    r = httpx.post(f"{live.base_url}/v1/match", headers=live.h("rep"), timeout=60,
                   json={"need_tags": {"therapy_area": ["cardiovascular"]}})
    assert r.status_code == 500
    assert r.json() == {"code": "internal_error", "message": "Something went wrong on our side; it has been "
                        "logged.", "details": None}
    assert "boom" in caplog.text, "the log keeps what the client is not shown"
