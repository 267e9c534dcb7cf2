"""The asset API over HTTP, on SQLite and PostgreSQL: uploads and jobs, listing, roles, review, taxonomy, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from service.store.models import AuditEntry, TagReview
from service.store.vectors import Where

from .api_helpers import DRAFT_OR_EXPIRED, ROOT, SAMPLES, SUBSET, Api, start_api, stop_api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("api")
    url = None
    if request.param == "postgresql":
        import uuid

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from service.store.db import normalise_url

        base = make_url(normalise_url(request.getfixturevalue("postgres_url")))
        name = f"hcp_api_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    root = data / "repo"
    root.mkdir()
    settings = Settings(data_dir=data, llm_mode="off", database_url=url, ingest_roots=[root], worker_poll_s=0.1,
                        max_file_bytes=2_000_000)
    a = start_api(settings)
    a.root = root  # type: ignore[attr-defined]
    job = a.upload([SAMPLES / p for p in SUBSET])
    done = a.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    yield a
    stop_api(a)


def _assets(api: Api, role: str, **params: object) -> list[dict]:
    r = api.client.get("/v1/assets", params=params, headers=api.h(role))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_an_upload_job_reports_every_file_and_stores_rows_tags_and_vectors(api):
    jobs = api.client.get("/v1/jobs", headers=api.h("content_editor")).json()
    job = api.client.get(f"/v1/jobs/{jobs[-1]['id']}", headers=api.h("content_editor")).json()
    assert job["total"] == len(SUBSET) and job["done"] == len(SUBSET) and job["progress"] == 1.0
    assert {i["name"] for i in job["items"]} == {Path(p).name for p in SUBSET}
    assert all(i["status"] == "done" and i["outcome"] == "created" and i["asset_id"] for i in job["items"])
    for item in job["items"]:
        asset = api.client.get(f"/v1/assets/{item['asset_id']}", headers=api.h("admin")).json()
        assert asset["tags"], asset["title"]
        assert all(t["confidence"] > 0 and t["method"] and t["taxonomy_version"] for t in asset["tags"])
        chunks = len(asset["chunks"])
        assert api.components.vectors.count(Where(equals={"asset_id": item["asset_id"]})) == chunks > 0


def test_keys_are_required_and_401_differs_from_403(api):
    assert api.client.get("/v1/assets").status_code == 401
    assert api.client.get("/v1/assets").json()["code"] == "missing_api_key"
    bad = api.client.get("/v1/assets", headers={"X-API-Key": "hcp_000000000000_nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_api_key"
    forbidden = api.client.post("/v1/uploads", files=[("files", ("a.txt", b"hello"))], headers=api.h("rep"))
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"


def test_a_revoked_key_is_refused(api):
    from service.auth.keys import create_key, revoke_key

    with api.components.db.session() as s:
        created = create_key(s, "reviewer", "short-lived")
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert api.client.get("/v1/taxonomy", headers=headers).status_code == 200
    with api.components.db.session() as s:
        revoke_key(s, created.principal.key_id)
    r = api.client.get("/v1/taxonomy", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"


def test_a_rep_sees_only_approved_unexpired_assets_and_cannot_upload_review_or_delete(api):
    everything = _assets(api, "admin", limit=200)
    rep_view = _assets(api, "rep", limit=200)
    hidden = [a for a in everything if a["id"] not in {r["id"] for r in rep_view}]
    assert {Path(p).name for p in DRAFT_OR_EXPIRED} and len(hidden) == len(DRAFT_OR_EXPIRED)
    assert all(a["approval_status"] == "approved" for a in rep_view)
    for a in hidden:
        r = api.client.get(f"/v1/assets/{a['id']}", headers=api.h("rep"))
        assert r.status_code == 404 and r.json()["code"] == "asset_not_found"
    # asking for drafts explicitly changes nothing for a rep
    assert _assets(api, "rep", approval_status="draft") == []
    tag_id = everything[0]["tags"][0]["id"]
    assert api.client.post(f"/v1/tags/{tag_id}/review", json={"action": "accept"},
                           headers=api.h("rep")).status_code == 403
    assert api.client.delete(f"/v1/assets/{everything[0]['id']}", headers=api.h("rep")).status_code == 403
    assert api.client.get("/v1/audit", headers=api.h("rep")).status_code == 403
    assert api.client.post("/v1/tag", json={"text": "x"}, headers=api.h("rep")).status_code == 403


def test_a_content_editor_cannot_review_and_a_reviewer_cannot_upload_or_delete(api):
    a = _assets(api, "admin")[0]
    r = api.client.post(f"/v1/tags/{a['tags'][0]['id']}/review", json={"action": "accept"},
                        headers=api.h("content_editor"))
    assert r.status_code == 403
    assert api.client.post("/v1/uploads", files=[("files", ("a.txt", b"hello"))],
                           headers=api.h("reviewer")).status_code == 403
    assert api.client.delete(f"/v1/assets/{a['id']}", headers=api.h("reviewer")).status_code == 403
    assert api.client.put("/v1/taxonomy", json={"source": "x"}, headers=api.h("reviewer")).status_code == 403


def test_filters_and_cursor_pagination(api):
    zh = _assets(api, "admin", language="zh")
    assert zh and all(a["language"] == "zh" for a in zh)
    pdfs = _assets(api, "admin", format="pdf")
    assert [a["format"] for a in pdfs] == ["pdf"]
    glucora = _assets(api, "admin", tag="product:glucora")
    assert glucora and all(any(t["dimension"] == "product" and t["value"] == "glucora" for t in a["tags"])
                           for a in glucora)
    found = _assets(api, "admin", q="VIVA-REAL")
    assert [a["title"] for a in found] == ["Cardiovex in routine care: results of the VIVA-REAL registry"]
    flagged = _assets(api, "admin", needs_review=True)
    assert all(any(t["needs_review"] for t in a["tags"]) for a in flagged)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/assets", params=params, headers=api.h("admin")).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(SUBSET)
    for cursor, code in (("%%%", "invalid_request"), ("A", "invalid_cursor"), ("AAAA", "invalid_cursor")):
        bad = api.client.get("/v1/assets", params={"cursor": cursor}, headers=api.h("admin"))
        assert bad.status_code == 422 and bad.json()["code"] == code, bad.text
    bad_tag = api.client.get("/v1/assets", params={"tag": "product"}, headers=api.h("admin"))
    assert bad_tag.status_code == 422 and bad_tag.json()["code"] == "invalid_request"


def test_one_asset_has_versions_chunks_with_provenance_and_tags_with_evidence(api):
    pdf = _assets(api, "admin", format="pdf")[0]
    asset = api.client.get(f"/v1/assets/{pdf['id']}", headers=api.h("reviewer")).json()
    assert asset["versions"][0]["version"] == 1 and len(asset["versions"][0]["content_hash"]) == 64
    assert all(c["page"] for c in asset["chunks"])
    assert any(t["evidence"] for t in asset["tags"])
    assert api.client.get("/v1/assets/nope", headers=api.h("admin")).status_code == 404


def test_upload_errors_are_clear_and_store_nothing(api):
    before = len(_assets(api, "admin", limit=200))
    r = api.client.post("/v1/uploads", files=[("files", ("virus.exe", b"MZ..."))], headers=api.h("content_editor"))
    assert r.status_code == 415 and r.json()["code"] == "unsupported_type"
    big = b"a" * 2_000_001
    r = api.client.post("/v1/uploads", files=[("files", ("big.txt", big))], headers=api.h("content_editor"))
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"
    r = api.client.post("/v1/uploads", headers=api.h("content_editor"))
    assert r.status_code == 422
    assert len(_assets(api, "admin", limit=200)) == before
    assert not any(p for p in api.components.settings.uploads_dir.glob("*/*"))


def test_a_corrupt_upload_is_reported_failed_in_its_job(api):
    r = api.client.post("/v1/uploads", files=[("files", ("broken.pdf", b"%PDF-1.7 not really")),
                                              ("files", ("fine.md", "# 新药\n\n安全性数据良好。".encode()))],
                        headers=api.h("content_editor"))
    assert r.status_code == 202
    done = api.wait_job(r.json()["id"])
    assert done["status"] == "partial" and done["failed"] == 1
    broken = next(i for i in done["items"] if i["name"] == "broken.pdf")
    assert broken["status"] == "failed" and broken["error_code"] == "truncated_file" and broken["error_message"]


def test_ingest_path_only_under_the_configured_roots(api, tmp_path):
    outside = api.client.post("/v1/ingest/path", json={"path": str(ROOT)}, headers=api.h("content_editor"))
    assert outside.status_code == 403 and outside.json()["code"] == "path_not_allowed"
    root: Path = api.root  # type: ignore[attr-defined]
    (root / "note_en.txt").write_text("Cardiovex bleeding risk stayed low in elderly patients.", encoding="utf-8")
    r = api.client.post("/v1/ingest/path", json={"path": str(root)}, headers=api.h("content_editor"))
    assert r.status_code == 202 and r.headers["location"].startswith("/v1/jobs/")
    done = api.wait_job(r.json()["id"])
    assert done["status"] == "succeeded" and done["items"][0]["name"] == "note_en.txt"
    missing = api.client.post("/v1/ingest/path", json={"path": str(root / "nope")}, headers=api.h("content_editor"))
    assert missing.status_code == 404


def test_tag_text_and_file_without_storing(api):
    before = len(_assets(api, "admin", limit=200))
    r = api.client.post("/v1/tag", json={"text": "Glucora once-weekly lowered HbA1c in type 2 diabetes; nausea "
                                         "was mild and transient.", "title": "Glucora"},
                        headers=api.h("reviewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    values = {(t["dimension"], t["value"]) for t in body["tags"]}
    assert ("product", "glucora") in values and body["status"] == "llm_off"
    taxonomy = api.client.get("/v1/taxonomy", headers=api.h("reviewer")).json()["taxonomy"]
    allowed = {(d["id"], v["id"]) for d in taxonomy["dimensions"] for v in d["values"]}
    assert values <= allowed
    f = api.client.post("/v1/tag/file", files={"file": ("x.md", "# 房颤\n\n卡地维克斯出血风险低。".encode())},
                        headers=api.h("content_editor"))
    assert f.status_code == 200 and any(t["dimension"] == "format" for t in f.json()["tags"])
    bad = api.client.post("/v1/tag/file", files={"file": ("x.exe", b"MZ")}, headers=api.h("content_editor"))
    assert bad.status_code == 415
    assert api.client.post("/v1/tag", json={"text": ""}, headers=api.h("reviewer")).status_code == 422
    assert len(_assets(api, "admin", limit=200)) == before


def test_review_accept_reject_edit_are_recorded_with_the_reviewer(api):
    asset = _assets(api, "admin")[0]
    tags = asset["tags"]
    accept, reject = tags[0], tags[1]
    r = api.client.post(f"/v1/tags/{accept['id']}/review", json={"action": "accept", "comment": "right"},
                        headers=api.h("reviewer"))
    assert r.status_code == 200 and r.json()["tag"]["status"] == "accepted"
    r = api.client.post(f"/v1/tags/{reject['id']}/review", json={"action": "reject"}, headers=api.h("reviewer"))
    assert r.json()["tag"]["status"] == "rejected" and r.json()["tag"]["needs_review"] is False
    taxonomy = api.client.get("/v1/taxonomy", headers=api.h("reviewer")).json()["taxonomy"]
    values = {d["id"]: [v["id"] for v in d["values"]] for d in taxonomy["dimensions"]}
    wrong = next(t for t in tags[2:] if t["status"] == "proposed" and t["method"] != "metadata")
    taken = {t["value"] for t in tags if t["dimension"] == wrong["dimension"]}
    other = next(v for v in values[wrong["dimension"]] if v not in taken)
    r = api.client.post(f"/v1/tags/{wrong['id']}/review", json={"action": "edit", "value": other},
                        headers=api.h("reviewer"))
    assert r.status_code == 200, r.text
    assert r.json()["tag"]["status"] == "edited" and r.json()["replaced_by"]["value"] == other
    assert r.json()["replaced_by"]["method"] == "human" and r.json()["replaced_by"]["status"] == "accepted"
    bad = api.client.post(f"/v1/tags/{accept['id']}/review", json={"action": "edit", "value": "made_up"},
                          headers=api.h("reviewer"))
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_value"
    assert api.client.post("/v1/tags/999999/review", json={"action": "accept"},
                           headers=api.h("reviewer")).status_code == 404
    assert api.client.post(f"/v1/tags/{accept['id']}/review", json={"action": "maybe"},
                           headers=api.h("reviewer")).status_code == 422
    reviewer_id = api.keys["reviewer"].split("_")[1]
    with api.components.db.session() as s:
        reviews = s.query(TagReview).filter(TagReview.tag_id.in_([accept["id"], reject["id"]])).all()
        assert {(r.action, r.reviewer) for r in reviews} == {("accept", reviewer_id), ("reject", reviewer_id)}
        assert s.query(AuditEntry).filter(AuditEntry.action == "tag.accept", AuditEntry.actor == reviewer_id).count()
    # a re-tag does not overwrite a human decision
    again = api.client.get(f"/v1/assets/{asset['id']}", headers=api.h("admin")).json()["tags"]
    assert next(t for t in again if t["id"] == reject["id"])["status"] == "rejected"


def test_taxonomy_replace_validates_conflicts_and_retags_changed_dimensions(api):
    current = api.client.get("/v1/taxonomy", headers=api.h("content_editor")).json()
    invalid = api.client.put("/v1/taxonomy", json={"source": "id: x\nversion: [\n"},
                             headers=api.h("content_editor"))
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_taxonomy"
    assert invalid.json()["details"]["line"]
    doc = yaml.safe_load(current["source"])
    doc["version"] = current["version"] + ".1"
    audience = next(d for d in doc["dimensions"] if d["id"] == "audience")
    audience["values"][0]["definition"] = {"en": "Doctors in hospital cardiology departments.",
                                           "zh": "医院心内科医生。"}
    stale = api.client.put("/v1/taxonomy", json={"source": yaml.safe_dump(doc, allow_unicode=True),
                                                 "expected_version": "0.0-old"}, headers=api.h("content_editor"))
    assert stale.status_code == 409 and stale.json()["code"] == "taxonomy_conflict"
    ok = api.client.put("/v1/taxonomy", json={"source": yaml.safe_dump(doc, allow_unicode=True),
                                              "expected_version": current["version"]},
                        headers=api.h("content_editor"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["changed_dimensions"] == ["audience"] and body["retag_job"]
    entry = api.client.get("/v1/audit", params={"action": "taxonomy.replace"},
                           headers=api.h("admin")).json()["items"][0]
    assert (entry["before"], entry["after"]) == ({"version": current["version"]},
                                                 {"version": doc["version"], "changed_dimensions": ["audience"]})
    job = api.wait_job(body["retag_job"])
    assert job["status"] == "succeeded" and job["total"] >= len(SUBSET)
    assert api.client.get("/v1/taxonomy", headers=api.h("rep")).json()["version"] == doc["version"]
    again = api.client.put("/v1/taxonomy", json={"source": yaml.safe_dump(doc, allow_unicode=True)},
                           headers=api.h("content_editor"))
    assert again.status_code == 409  # that version exists already
    assets = _assets(api, "admin")
    assert any(t["dimension"] == "audience" and t["taxonomy_version"].endswith(doc["version"])
               for a in assets for t in a["tags"])


def test_a_taxonomy_check_names_the_line_and_field_and_shows_what_saving_would_change(api):
    active = api.client.get("/v1/taxonomy", headers=api.h("content_editor")).json()
    lines = active["source"].splitlines()
    # an unknown field on a value: the answer names its line, and nothing is written (the YAML as written here,
    # whatever shape an earlier test left the active one in)
    edited = yaml.safe_load(active["source"])
    edited["version"] = active["version"] + ".check"
    base = yaml.safe_dump(edited, allow_unicode=True, sort_keys=False).splitlines()
    at = next(i for i, line in enumerate(base) if line.strip() in ("id: cardiologist", "- id: cardiologist"))
    indent = len(base[at]) - len(base[at].lstrip()) + (2 if base[at].lstrip().startswith("- ") else 0)
    broken = [*base[:at + 1], " " * indent + "colour: red", *base[at + 1:]]
    r = api.client.post("/v1/taxonomy/check", json={"source": "\n".join(broken)}, headers=api.h("content_editor"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert not answer["valid"] and answer["error"]["line"] == at + 2 and "colour" in answer["error"]["field"]
    assert "+" + broken[at + 1] in answer["diff"]
    # unchanged but for its version already taken: refused at the version's line
    same = api.client.post("/v1/taxonomy/check", json={"source": active["source"]}, headers=api.h("admin")).json()
    assert not same["valid"] and same["error"]["field"] == "version" and same["diff"] == []
    assert lines[same["error"]["line"] - 1].startswith("version:")
    # a new version with one dimension's definition changed: valid, that dimension would be re-tagged
    doc = edited
    next(d for d in doc["dimensions"] if d["id"] == "audience")["values"][0]["definition"] = {"en": "Cardiologists.",
                                                                                             "zh": "心内科医生。"}
    ok = api.client.post("/v1/taxonomy/check", json={"source": yaml.safe_dump(doc, allow_unicode=True)},
                         headers=api.h("content_editor")).json()
    assert ok["valid"] and ok["error"] is None and ok["changed_dimensions"] == ["audience"]
    assert ok["version"] == doc["version"] and any(line.startswith("+") for line in ok["diff"])
    assert api.client.get("/v1/taxonomy", headers=api.h("rep")).json()["version"] == active["version"]
    # editing the taxonomy is for content editors and admins only
    assert api.client.post("/v1/taxonomy/check", json={"source": active["source"]},
                           headers=api.h("reviewer")).status_code == 403


def test_an_assets_history_shows_its_creation_and_its_tags_reviews_to_staff_only(api):
    asset = _assets(api, "admin", q="VIVA-REAL")[0]
    tag = next(t for t in asset["tags"] if t["status"] == "proposed")
    r = api.client.post(f"/v1/tags/{tag['id']}/review", json={"action": "reject"}, headers=api.h("reviewer"))
    assert r.status_code == 200, r.text
    other = next(a for a in _assets(api, "admin") if a["id"] != asset["id"])
    history = api.client.get(f"/v1/assets/{asset['id']}/history", headers=api.h("content_editor")).json()["items"]
    actions = [(e["action"], e["target_id"]) for e in history]
    assert actions[0] == ("tag.reject", str(tag["id"]))  # newest first
    assert ("asset.create", asset["id"]) in actions
    assert all(e["target_id"] != other["id"] for e in history)  # nothing of another asset
    assert api.client.get(f"/v1/assets/{asset['id']}/history", headers=api.h("rep")).status_code == 403
    missing = api.client.get("/v1/assets/nope/history", headers=api.h("admin"))
    assert missing.status_code == 404 and missing.json()["code"] == "asset_not_found"


def test_delete_removes_rows_and_vectors_and_is_audited(api):
    victim = _assets(api, "admin", q="VIVA-REAL")[0]
    r = api.client.delete(f"/v1/assets/{victim['id']}", headers=api.h("content_editor"))
    assert r.status_code == 204
    assert api.client.get(f"/v1/assets/{victim['id']}", headers=api.h("admin")).status_code == 404
    assert api.components.vectors.count(Where(equals={"asset_id": victim["id"]})) == 0
    audit = api.client.get("/v1/audit", params={"action": "asset.delete"}, headers=api.h("admin")).json()["items"]
    assert audit[0]["target_id"] == victim["id"] and audit[0]["before"]["title"] == victim["title"]
    assert audit[0]["actor"] == api.keys["content_editor"].split("_")[1] and audit[0]["role"] == "content_editor"
    assert api.client.delete(f"/v1/assets/{victim['id']}", headers=api.h("admin")).status_code == 404


def test_the_rate_limit_answers_429_with_retry_after(tmp_path):
    settings = Settings(data_dir=tmp_path, llm_mode="off", rate_limit_per_minute=3, worker_enabled=False)
    a = start_api(settings)
    try:
        codes = [a.client.get("/v1/taxonomy", headers=a.h("rep")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = a.client.get("/v1/taxonomy", headers=a.h("rep"))
        assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert a.client.get("/v1/taxonomy", headers=a.h("admin")).status_code == 200  # per key
    finally:
        stop_api(a)


def test_a_billion_laughs_taxonomy_is_an_answer_and_a_refusal_not_a_hang(api):
    from .test_safe_yaml import LAUGHS

    before = api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["version"]
    r = api.client.post("/v1/taxonomy/check", json={"source": LAUGHS}, headers=api.h("content_editor"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert not answer["valid"] and "aliases" in answer["error"]["message"] and answer["error"]["line"] == 2
    r = api.client.put("/v1/taxonomy", json={"source": LAUGHS}, headers=api.h("admin"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_taxonomy", r.text
    assert api.client.get("/v1/taxonomy", headers=api.h("admin")).json()["version"] == before  # nothing replaced
