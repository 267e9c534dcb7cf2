"""Bad input over real HTTP: every malformed body, oversized or hostile string and malformed upload gets a 4xx in
the one error shape, and nothing stored changes (every table's rows are compared before and after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from service.settings import Settings
from service.store.models import Asset, AssetTag

from .api_helpers import SUBSET, HttpApi, start_http, stop_http
from .badfiles import malformed_uploads
from .badinput import (
    CONTROL_STRINGS,
    MALFORMED_JSON,
    PROMPT_INJECTION,
    QUERY_FIELDS,
    SQL_INJECTION,
    TEN_MB,
    JsonEndpoint,
    json_endpoints,
)

# rows these tables gain from a refused request are expected: the audit of accepted writes and the job of an
# upload whose files all failed (its items say why); every other table must not change at all
BOOKKEEPING = {"audit_log", "jobs", "job_items"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("badinput") / "data", llm_mode="off", worker_poll_s=0.1,
                        retrain_after_reviews=10_000, rate_limit_per_minute=1_000_000)
    api = start_http(settings)
    api.ingest(SUBSET[:3])
    yield api
    stop_http(api)


@pytest.fixture(scope="module")
def http(live: HttpApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers=live.h("admin"), timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def endpoints(live: HttpApi) -> list[JsonEndpoint]:
    with live.components.db.session() as s:
        asset_id = s.scalars(select(Asset.id).where(Asset.approval_status == "approved")).first()
        tag_id = s.scalars(select(AssetTag.id)).first()
    assert asset_id and tag_id
    return json_endpoints(asset_id, tag_id)


def snapshot(api: HttpApi) -> dict[str, Any]:
    """Every table's row count and a digest of the rows that matter, so a change anywhere shows."""
    db = api.components.db
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for table in db.tables():
            if table not in BOOKKEEPING and table != "alembic_version":
                out[table] = conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
        out["tags"] = sorted(conn.execute(text("SELECT id, status, value FROM asset_tags")).all())
        out["keys"] = sorted(conn.execute(text("SELECT id, key_hash, revoked_at FROM api_keys")).all())
    out["vectors"] = api.components.vectors.count()
    return out


@pytest.fixture
def unchanged(live: HttpApi) -> Iterator[None]:
    before = snapshot(live)
    yield
    assert snapshot(live) == before, "a refused request changed what is stored"


def assert_refused(r: httpx.Response, case: str, statuses: tuple[int, ...] = (400, 413, 415, 422)) -> None:
    assert r.status_code in statuses, f"{case}: {r.status_code} {r.text[:300]}"
    body = r.json()
    assert isinstance(body["code"], str) and body["code"] and body["message"], f"{case}: {body}"
    assert "Traceback" not in r.text and 'File "' not in r.text


def assert_names_field(r: httpx.Response, path: str, name: str) -> None:
    locs = [".".join(str(p) for p in d["loc"][1:]) for d in r.json()["details"]]
    assert any(loc.startswith(name.split(".")[0]) for loc in locs), (path, name, locs)


def test_malformed_json_bodies_are_refused(http, endpoints, unchanged):
    for ep in endpoints:
        for case, raw in MALFORMED_JSON.items():
            r = http.request(ep.method, ep.path, content=raw, headers={"Content-Type": "application/json"})
            assert_refused(r, f"{ep.method} {ep.path} {case}")


def test_a_json_body_sent_as_another_media_type_is_refused(http, endpoints, unchanged):
    for ep in endpoints:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            r = http.request(ep.method, ep.path, content=b'{"text": "a"}', headers={"Content-Type": ctype})
            assert_refused(r, f"{ep.method} {ep.path} as {ctype}")


def test_huge_json_is_refused_before_it_is_parsed_declared_or_chunked(http, endpoints, unchanged):
    huge = b'{"text": "' + b"a" * (9 * 1024 * 1024) + b'"}'

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must hold while the body streams in
        for i in range(0, len(huge), 1 << 20):
            yield huge[i:i + (1 << 20)]

    for ep in endpoints:
        r = http.request(ep.method, ep.path, content=huge, headers={"Content-Type": "application/json"})
        assert_refused(r, f"{ep.path} declared", (413,))
        assert r.json()["code"] == "payload_too_large"
        r = http.request(ep.method, ep.path, content=chunked(), headers={"Content-Type": "application/json"})
        assert_refused(r, f"{ep.path} chunked", (413,))


def test_ten_megabyte_strings_in_every_text_field_are_refused(http, endpoints, unchanged):
    big = "药" * (TEN_MB // 3) + "a" * (TEN_MB % 3)  # 10 MB of UTF-8
    for ep in endpoints:
        for name in ep.text_fields:
            r = http.request(ep.method, ep.path, json=ep.with_value(name, big))
            assert_refused(r, f"{ep.path} {name}", (413,))
    for path, name in QUERY_FIELDS:
        r = http.get(path, params={name: "a" * 8000})  # past every field limit, inside the HTTP line limit
        assert_refused(r, f"{path}?{name}", (422,))


def test_one_character_past_each_limit_names_the_field(http, endpoints, unchanged):
    for ep in endpoints:
        for name in ep.text_fields:
            over = "a" * 1_000_001  # longer than every text field's maxLength
            r = http.request(ep.method, ep.path, json=ep.with_value(name, over))
            assert_refused(r, f"{ep.path} {name}", (422,))
            assert_names_field(r, ep.path, name)


def test_control_characters_in_every_text_field_are_refused(http, endpoints, unchanged):
    for ep in endpoints:
        for name in ep.text_fields:
            for value in CONTROL_STRINGS:
                r = http.request(ep.method, ep.path, json=ep.with_value(name, value))
                assert_refused(r, f"{ep.path} {name}={value!r}", (422,))
                assert_names_field(r, ep.path, name)  # refused for this field, not for another reason
    for path, name in QUERY_FIELDS:
        for value in CONTROL_STRINGS:
            assert_refused(http.get(path, params={name: value}), f"{path}?{name}={value!r}", (422,))


def test_sql_and_prompt_injection_is_refused_in_ids_and_harmless_in_free_text(http, live, endpoints, unchanged):
    taxonomy = live.components.tagger.taxonomy
    known = {(d.id, v.id) for d in taxonomy.dimensions for v in d.values}
    for ep in endpoints:
        for name in ep.text_fields:
            for value in SQL_INJECTION + PROMPT_INJECTION:
                r = http.request(ep.method, ep.path, json=ep.with_value(name, value))
                if name not in ep.free_text:
                    assert_refused(r, f"{ep.path} {name}={value!r}", (400, 403, 404, 409, 422))
                    continue
                # text fields take any words; the answer is the ordinary one and stays inside the taxonomy
                assert r.status_code == 200, (ep.path, name, value, r.text[:300])
                body = r.json()
                for tag in body.get("tags", []):
                    assert (tag["dimension"], tag["value"]) in known
                for item in body.get("results", []):
                    assert item["asset_id"] and item["title"]
    for value in SQL_INJECTION:
        r = http.get("/v1/assets", params={"q": value})
        assert r.status_code == 200 and r.json()["items"] == [], value  # matched as text, found nowhere


def test_invalid_utf8_and_control_characters_in_urls_are_refused(http, live, unchanged):
    for raw in (b"/v1/assets/%FF%FE", b"/v1/assets/%00", b"/v1/jobs/%C3%28", b"/v1/assets?q=%FF",
                b"/v1/assets?q=%00", b"/v1/opt-outs/a%00b", b"/v1/tags/99999999999999999999/review"):
        method = "POST" if raw.endswith(b"/review") else "GET"
        r = http.request(method, httpx.URL(raw.decode()), json={"action": "accept"} if method == "POST" else None)
        assert_refused(r, raw.decode(), (400, 404, 422))


def test_malformed_uploads_are_refused_at_the_door_or_fail_in_their_job_and_store_nothing(http, live, tmp_path,
                                                                                          unchanged):
    cases = malformed_uploads(tmp_path)
    for case, (name, data) in cases.items():
        r = http.post("/v1/tag/file", files={"file": (name, data)})
        assert_refused(r, f"tag/file {case}", (413, 415, 422))
    for case, (name, data) in cases.items():
        r = http.post("/v1/uploads", files=[("files", (name, data))])
        if r.status_code != 202:
            assert_refused(r, f"upload {case}", (413, 415, 422))
            continue
        job = live.wait_job(r.json()["id"])
        assert job["status"] == "failed" and job["failed"] == 1, (case, job)
        item = job["items"][0]
        assert item["error_code"] and item["error_message"][0].isupper() and item["asset_id"] is None, (case, item)
    assert not any(Path(live.components.settings.uploads_dir).glob("*/*")), "refused upload files were left behind"


def test_malformed_multipart_is_refused(http, unchanged):
    for case, headers, content in (
        ("no boundary", {"Content-Type": "multipart/form-data"}, b"--x\r\n\r\n"),
        ("broken part", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nContent-Disposition: form"),
        ("no files field", {"Content-Type": "multipart/form-data; boundary=x"},
         b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nv\r\n--x--\r\n'),
        ("json instead", {"Content-Type": "application/json"}, b'{"files": ["a.pdf"]}'),
    ):
        assert_refused(http.post("/v1/uploads", content=content, headers=headers), case)
