"""An outsider without a key costs the service almost nothing (issue 46, finding 1): the key is checked from the
headers before a byte of the body is read, the larger upload limit holds only on the routes that take files, and
an address guessing keys is slowed to a stop."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from service.settings import Settings

from .api_helpers import HttpApi, start_http, stop_http

GIB = 1_000_000_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    # five unknown keys a minute from one address: the guessing test, last in this file, uses them up
    settings = Settings(data_dir=tmp_path_factory.mktemp("gate") / "data", llm_mode="off", worker_enabled=False,
                        auth_failures_per_minute=5)
    api = start_http(settings)
    yield api
    stop_http(api)


def _headers_only(api: HttpApi, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """Send a request's headers announcing a 1 GB body and none of the body; read the answer."""
    port = int(api.base_url.rsplit(":", 1)[1])
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {GIB}",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:  # the timeout only ends a hang
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


MULTIPART = {"Content-Type": "multipart/form-data; boundary=x"}


def test_no_key_or_an_unknown_key_is_refused_before_the_body_is_read(live):
    status, body = _headers_only(live, "/v1/keys", MULTIPART)
    assert (status, body["code"]) == (401, "missing_api_key")
    status, body = _headers_only(live, "/v1/uploads", {**MULTIPART, "Authorization": "Bearer hcp_nobody_x"})
    assert (status, body["code"]) == (401, "invalid_api_key")


def test_a_multipart_body_gets_the_upload_limit_only_on_routes_that_take_files(live):
    admin = {"Authorization": f"Bearer {live.keys['admin']}"}
    # a JSON route does not take a gigabyte because the client calls its body multipart
    status, body = _headers_only(live, "/v1/keys", {**MULTIPART, **admin})
    assert (status, body["code"]) == (413, "payload_too_large")
    assert body["details"]["limit_bytes"] == live.components.settings.max_request_bytes
    from service.api.guards import upload_paths
    from service.app import create_app

    assert upload_paths(create_app(live.components.settings, live.components)) == {
        "/v1/uploads", "/v1/tag/file", "/v1/content/check", "/v1/panels/plan/csv"}


def test_a_valid_key_passes_the_gate_and_its_role_still_decides(live):
    import httpx

    assert httpx.get(f"{live.base_url}/v1/me", headers=live.h("rep"), timeout=30).status_code == 200
    r = httpx.get(f"{live.base_url}/v1/audit", headers=live.h("rep"), timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_an_address_guessing_keys_is_answered_429_whatever_it_presents_next(live):
    import httpx

    def me(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{live.base_url}/v1/me", headers=headers, timeout=30)

    # five unknown keys a minute (earlier tests in this file may have spent one): then 429, unverified
    answers = [me({"Authorization": f"Bearer hcp_guess_{i}"}) for i in range(6)]
    codes = [r.json()["code"] for r in answers]
    refused = codes.index("auth_rate_limited")
    assert 1 <= refused <= 5 and set(codes[:refused]) == {"invalid_api_key"} and set(codes[refused:]) == {
        "auth_rate_limited"}, codes
    assert all(r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 for r in answers[refused:])
    # the right key from the same address is not even looked up until the minute is over
    assert me(live.h("admin")).status_code == 429
    # a request with no key costs nothing to refuse, and is answered as such
    assert me({}).json()["code"] == "missing_api_key"
    # health needs no key and is never held back
    assert httpx.get(f"{live.base_url}/healthz", timeout=30).status_code == 200
