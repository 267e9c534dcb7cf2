"""Key scopes: a rep key scoped to a product reaches no other product's content by any path, still gets its
own product's and the product-agnostic content of its therapy area everywhere, and a scope change applies
from the next request with its audit entry. Real service on a loopback port, real stores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.matching.matcher import Matcher
from service.matching.schemas import MatchRequest
from service.settings import Settings
from service.store.models import Asset, AssetTag
from service.store.visibility import resolve_scope

from .api_helpers import HttpApi, first_job_id, hidden_assets, ingest_samples, probe_every_path, start_http, stop_http

OWN = ["cardiovex/cardiovex_real_world_en.md", "cardiovex/cardiovex_bleeding_safety_en.pdf",
       "cardiovex/cardiovex_phase3_summary_zh.pdf"]
OTHER = ["glucora/glucora_onset_zh.md", "glucora/glucora_glow1_study_en.pdf", "oncotinib/oncotinib_dosing_en.html"]
# disease education with no product, written here so nothing in it names one
AGNOSTIC = """---
title: 'Atrial fibrillation and stroke: what patients should know'
approval_code: ED-GL-2026-900
approval_status: approved
valid_until: '2028-12-31'
---
# Atrial fibrillation and stroke: what patients should know

Atrial fibrillation is the most common sustained heart rhythm disorder, and it raises the risk of
ischaemic stroke about fivefold, because blood pools in the left atrium and clots form there.

Oral anticoagulation lowers that stroke risk substantially. Guidelines recommend scoring every patient's
stroke risk with CHA2DS2-VASc and reviewing bleeding risk, kidney function and interacting medicines at
each visit, so that prevention of stroke in atrial fibrillation stays both effective and safe.
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpApi]:
    root = tmp_path_factory.mktemp("scopes")
    settings = Settings(data_dir=root / "data", llm_mode="off", worker_poll_s=0.1, retrain_after_reviews=10_000,
                        rate_limit_per_minute=1_000_000)
    live = start_http(settings)
    ingest_samples(live.components, OWN + OTHER)
    (root / "af_education_en.md").write_text(AGNOSTIC, encoding="utf-8")
    from service.ingest import Ingestor

    c = live.components
    ingestor = Ingestor.from_settings(c.db, c.vectors, c.embedder, c.settings, tagger=c.tagger)
    ingestor.ingest_path(root / "af_education_en.md")
    yield live
    stop_http(live)


def _post_key(api: HttpApi, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api.base_url}/v1/keys", json=body, headers=api.h("admin"), timeout=30)


def _rep(api: HttpApi, **scope: list[str]) -> tuple[str, dict[str, str]]:
    r = _post_key(api, {"role": "rep", "name": "scoped rep", **scope})
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['secret']}"}


def _by_product(api: HttpApi) -> dict[str | None, list[Asset]]:
    out: dict[str | None, list[Asset]] = {}
    with api.components.db.session() as s:
        for asset in s.scalars(select(Asset)):
            s.expunge(asset)
            out.setdefault(asset.product, []).append(asset)
    return out


def _agnostic(api: HttpApi) -> str:
    """The AF education asset's id, with its tags made what a reviewer would leave: no product, and the
    cardiovascular therapy area (the precondition this file's claims rest on)."""
    asset = next(a for a in _by_product(api)[None] if a.title.startswith("Atrial fibrillation"))
    reviewer = api.h("reviewer")
    with api.components.db.session() as s:
        tags = list(s.scalars(select(AssetTag).where(AssetTag.asset_id == asset.id, AssetTag.status == "proposed",
                                                     AssetTag.dimension.in_(["product", "therapy_area"]))))
    for tag in tags:
        if tag.dimension == "product" or tag.value != "cardiovascular":
            r = httpx.post(f"{api.base_url}/v1/tags/{tag.id}/review", json={"action": "reject"}, headers=reviewer,
                           timeout=30)
            assert r.status_code == 200, r.text
    r = httpx.post(f"{api.base_url}/v1/assets/{asset.id}/tags",
                   json={"dimension": "therapy_area", "value": "cardiovascular"}, headers=reviewer, timeout=30)
    assert r.status_code == 201, r.text
    return asset.id


def test_a_rep_scoped_to_one_product_reaches_no_other_products_content_through_any_endpoint(api):
    _agnostic(api)
    _, headers = _rep(api, products=["cardiovex"])
    hidden = hidden_assets(api.components, lambda a: a.product in ("glucora", "oncotinib"))
    assert len(hidden) == len(OTHER)
    reached = probe_every_path(api.base_url, headers, hidden, first_job_id(api.components))
    assert reached >= 20, "the rep's own routes answered, so the checks above looked at real results"


def test_the_scoped_rep_still_gets_its_products_and_its_areas_product_agnostic_content_everywhere(api):
    agnostic = _agnostic(api)
    groups = _by_product(api)
    own = {a.id for a in groups["cardiovex"]}
    other = {a.id for p in ("glucora", "oncotinib") for a in groups[p]}
    _, headers = _rep(api, products=["cardiovex"])
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=120) as http:
        listed = {a["id"] for a in http.get("/v1/assets", params={"limit": 200}).json()["items"]}
        assert listed == own | {agnostic}
        for asset_id in [*own, agnostic]:
            assert http.get(f"/v1/assets/{asset_id}").status_code == 200
        found = http.get("/v1/assets", params={"q": "Atrial fibrillation and stroke"}).json()["items"]
        assert [a["id"] for a in found] == [agnostic]

        matched = http.post("/v1/match", json={"need_tags": {"therapy_area": ["cardiovascular"]}, "language": "en",
                                               "k": 10}).json()["results"]
        ids = {m["asset_id"] for m in matched}
        assert ids & own and agnostic in ids and not ids & other, ids
        by_text = http.post("/v1/match", json={"need_text": "stroke risk in atrial fibrillation, CHA2DS2-VASc",
                                               "language": "en", "k": 3}).json()["results"]
        assert by_text and by_text[0]["asset_id"] == agnostic

        for asset_ids in ([sorted(own)[0]], [agnostic]):
            tp = http.post("/v1/talking-points", json={"asset_ids": asset_ids, "language": "en"})
            assert tp.status_code == 200, tp.text
            assert {c["asset_id"] for p in tp.json()["points"] for c in p["citations"]} == set(asset_ids)
        tp = http.post("/v1/talking-points", json={"need_tags": {"therapy_area": ["cardiovascular"]},
                                                   "language": "en"}).json()
        cited = {c["asset_id"] for p in tp["points"] for c in p["citations"]}
        assert cited and cited <= own | {agnostic}

    # the metabolism area's product-agnostic content needs that area: a therapy-area scope reaches it and
    # its product, not cardiovex
    _, metabolism = _rep(api, therapy_areas=["metabolism"])
    listed = {a["id"] for a in httpx.get(f"{api.base_url}/v1/assets", params={"limit": 200}, headers=metabolism,
                                         timeout=30).json()["items"]}
    assert listed == {a.id for a in groups["glucora"]}


def test_a_scoped_top_k_is_filled_before_ranking_not_emptied_by_filtering_after(api):
    """With few candidates per channel, a post-filter would leave a scoped rep nothing for a need that
    another product's content answers best; the vector prefilter gives it its own product's best."""
    _agnostic(api)
    c = api.components
    narrow = Matcher.from_settings(c.db, c.vectors, c.embedder, c.settings.model_copy(update={"match_candidates": 4}))
    need = MatchRequest(need_text="once-weekly GLP-1 injection lowers HbA1c within four weeks", language="en", k=3)
    unscoped = narrow.match(need, c.tagger.taxonomy).results
    glucora = {a.id for a in _by_product(api)["glucora"]}
    assert unscoped and unscoped[0].asset_id in glucora, "the need is another product's best, as intended"
    # what the prefilter retrieves, before the relevance floor judges it (whether Cardiovex content answers a GLP-1
    # question is the floor's call, tested in test_coverage)
    scoped = narrow.match(need, c.tagger.taxonomy, scope=resolve_scope(["cardiovex"], [], c.tagger.taxonomy),
                          floored=False)
    assert len(scoped.results) == 3 and not {r.asset_id for r in scoped.results} & glucora


def test_a_scope_change_applies_on_the_next_request_and_is_audited_with_before_and_after(api):
    groups = _by_product(api)
    cardiovex, glucora = groups["cardiovex"][0].id, groups["glucora"][0].id
    key_id, headers = _rep(api, products=["cardiovex"])
    with httpx.Client(base_url=api.base_url, timeout=60) as http:
        assert http.get(f"/v1/assets/{cardiovex}", headers=headers).status_code == 200
        assert http.get(f"/v1/assets/{glucora}", headers=headers).status_code == 404
        changed = http.put(f"/v1/keys/{key_id}/scope", json={"products": ["glucora"]}, headers=api.h("admin"))
        assert changed.status_code == 200 and changed.json()["scope"] == {"products": ["glucora"],
                                                                           "therapy_areas": []}
        assert http.get(f"/v1/assets/{cardiovex}", headers=headers).status_code == 404
        assert http.get(f"/v1/assets/{glucora}", headers=headers).status_code == 200
        assert http.put(f"/v1/keys/{key_id}/scope", json={}, headers=api.h("admin")).json()["scope"] is None
        assert http.get(f"/v1/assets/{cardiovex}", headers=headers).status_code == 200, "an empty scope lifts it"
        audit = http.get("/v1/audit", params={"action": "key.scope", "target_id": key_id},
                         headers=api.h("admin")).json()["items"]
    assert [(e["before"], e["after"]) for e in reversed(audit)] == [
        ({"scope": {"products": ["cardiovex"], "therapy_areas": []}},
         {"scope": {"products": ["glucora"], "therapy_areas": []}}),
        ({"scope": {"products": ["glucora"], "therapy_areas": []}}, {"scope": None}),
    ]
    assert all(e["actor"] == api.key_ids["admin"] for e in audit)


def test_a_reviewed_product_tag_moves_an_asset_between_scopes_on_every_channel(api):
    agnostic = _agnostic(api)
    _, headers = _rep(api, products=["cardiovex"])
    need = {"need_text": "stroke risk in atrial fibrillation, CHA2DS2-VASc", "language": "en", "k": 10}
    with httpx.Client(base_url=api.base_url, timeout=60) as http:
        assert agnostic in {m["asset_id"] for m in http.post("/v1/match", json=need, headers=headers).json()["results"]}
        added = http.post(f"/v1/assets/{agnostic}/tags", json={"dimension": "product", "value": "glucora"},
                          headers=api.h("reviewer"))
        assert added.status_code == 201
        try:
            assert agnostic not in {m["asset_id"] for m in http.post("/v1/match", json=need,
                                                                     headers=headers).json()["results"]}
            assert http.get(f"/v1/assets/{agnostic}", headers=headers).status_code == 404
            scopes = {tuple(p.payload["scope"]) for p in api.components.vectors.scroll()
                      if p.payload.get("asset_id") == agnostic}
            assert scopes == {("product:glucora",)}, "the vectors' prefilter followed the review"
        finally:
            r = http.post(f"/v1/tags/{added.json()['tag']['id']}/review", json={"action": "reject"},
                          headers=api.h("reviewer"))
            assert r.status_code == 200
        assert agnostic in {m["asset_id"] for m in http.post("/v1/match", json=need, headers=headers).json()["results"]}


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"role": "rep", "name": "x", "products": ["nosuchproduct"]}, "unknown_value", "product"),
    ({"role": "rep", "name": "x", "therapy_areas": ["dermatology"]}, "unknown_value", "therapy_area"),
    ({"role": "reviewer", "name": "x", "products": ["cardiovex"]}, "scope_not_for_role", None),
])
def test_a_scope_the_taxonomy_does_not_allow_is_refused_with_the_allowed_values(api, body, code, field):
    before = httpx.get(f"{api.base_url}/v1/keys", headers=api.h("admin"), timeout=30).json()
    r = _post_key(api, body)
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    if field == "product":
        assert r.json()["details"]["allowed"] == ["cardiovex", "glucora", "oncotinib"]
        assert "nosuchproduct" in r.json()["message"]
    if field == "therapy_area":
        assert r.json()["details"]["allowed"] == ["cardiovascular", "metabolism", "oncology"]
    assert httpx.get(f"{api.base_url}/v1/keys", headers=api.h("admin"), timeout=30).json() == before
    key_id, _ = _rep(api, products=["cardiovex"])
    bad = httpx.put(f"{api.base_url}/v1/keys/{key_id}/scope", json={"products": ["cardiovex", "nosuchproduct"]},
                    headers=api.h("admin"), timeout=30)
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_value"
    kept = next(k for k in httpx.get(f"{api.base_url}/v1/keys", headers=api.h("admin"), timeout=30).json()
                if k["id"] == key_id)
    assert kept["scope"] == {"products": ["cardiovex"], "therapy_areas": []}, "a refused change changes nothing"


def test_the_cli_creates_lists_and_changes_scoped_keys(tmp_path):
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path / "data"), "HCP_LLM_MODE": "off", "COLUMNS": "200"}

    def cli(*args: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "service.cli", "keys", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        return done.returncode, done.stdout, " ".join(done.stderr.split())  # messages go to stderr

    code, _, said = cli("create", "--role", "rep", "--products", "cardiovex,nosuch")
    assert code == 2 and "'nosuch' is not a value of dimension 'product'" in said
    assert "Allowed: cardiovex, glucora, oncotinib." in said
    code, secret, said = cli("create", "--role", "rep", "--name", "cv rep", "--products", "cardiovex,glucora")
    assert code == 0 and secret.startswith("hcp_"), said
    key_id = secret.split("_")[1]
    assert "products cardiovex,glucora" in said
    code, _, said = cli("scope", key_id, "--therapy-areas", "oncology")
    assert code == 0 and "therapy areas oncology" in said
    code, listed, _ = cli("list")
    assert code == 0 and key_id in listed and "therapy areas oncology" in listed


def test_vectors_written_before_scopes_get_their_tokens_when_the_worker_starts(api):
    """An upgraded store has points without scope tokens: a scoped prefilter would skip them until the
    start-up backfill gives them theirs."""
    from service.store.reconcile import reconcile_at_start
    from service.store.vectors import VectorPoint

    c = api.components
    own = _by_product(api)["cardiovex"][0].id
    old = [p for p in c.vectors.scroll(with_vectors=True) if p.payload.get("asset_id") == own]
    c.vectors.upsert([VectorPoint(p.id, p.vector, {k: v for k, v in p.payload.items() if k != "scope"},
                                  sparse=p.sparse) for p in old])
    scope = resolve_scope(["cardiovex"], [], c.tagger.taxonomy)
    with c.db.session() as s:
        title = s.get(Asset, own).title

    def dense_hits() -> set[str]:
        need = MatchRequest(need_text=title, language="en", k=10)
        return {r.asset_id for r in c.matcher.match(need, c.tagger.taxonomy, scope=scope, channels=("dense",)).results}

    assert own not in dense_hits(), "without tokens the prefilter skips the asset's points"
    assert reconcile_at_start(c.db, c.vectors, c.tagger.taxonomy)["scope"] == 1
    assert {tuple(p.payload["scope"]) for p in c.vectors.retrieve([p.id for p in old])} == {("product:cardiovex",)}
    assert own in dense_hits()
    assert reconcile_at_start(c.db, c.vectors, c.tagger.taxonomy) == {"orphans": 0, "lexical": 0, "scope": 0}, \
        "a second start has nothing to do"
