"""POST /v1/panels/plan on the sample content, over HTTP as a rep: a whole panel in one call, compliant
(approved, unexpired, nothing excluded, opted-out HCPs non-personalised), channels from the rule data, CSV equal
to JSON, audited without the needs, bad input refused before any work."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import select

from service.core.embeddings import Embedder, Kind
from service.matching.matcher import Matcher
from service.matching.panel_rules import load_panel_rules
from service.matching.panels import PanelPlanner
from service.matching.schemas import PanelPlanRequest
from service.store.models import Asset, AuditEntry

from .api_helpers import ROOT, Api, start_samples_api, stop_api

RULES = ROOT / "taxonomy" / "panel_rules.yaml"
SAFETY_CARDIO = {"therapy_area": ["cardiovascular"], "value_driver": {"safety": 2}}
ONSET_DIABETES = {"therapy_area": ["metabolism"], "value_driver": ["onset_speed"]}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Api:
    api = start_samples_api(tmp_path_factory.mktemp("panels") / "data")
    yield api
    stop_api(api)


def plan(api: Api, body: dict, status: int = 200, accept: str | None = None) -> dict:
    headers = {**api.h("rep"), **({"Accept": accept} if accept else {})}
    r = api.client.post("/v1/panels/plan", json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json() if accept is None else {"text": r.text, "type": r.headers["content-type"]}


def panel(n: int) -> list[dict]:
    """Mixed needs: tags with a channel preference and a tier, free text, both languages."""
    out = []
    for i in range(n):
        hcp: dict = {"hcp_id": f"hcp-{i:03d}", "language": "zh" if i % 2 else "en", "k": 3}
        if i % 3 == 2:
            hcp["need_text"] = "GLP-1 胃肠道不良反应怎么处理"
        else:
            hcp["need_tags"] = {**(SAFETY_CARDIO if i % 3 == 0 else ONSET_DIABETES),
                                "channel_preference": [["online", "face_to_face", "meeting"][i % 3]],
                                "potential_tier": [["high", "medium", "low"][i % 3]]}
        out.append(hcp)
    return out


def test_every_hcp_of_a_panel_gets_visible_content_without_what_was_sent_and_opt_outs_get_the_general_list(api):
    c = api.components
    hcps = panel(40)
    first = plan(api, {"hcps": hcps})
    assert [h["hcp_id"] for h in first["hcps"]] == [h["hcp_id"] for h in hcps]  # the request's order
    # 10% with exclusions: what the first plan would send them is what the CRM "sent recently"
    excluded = {h["hcp_id"]: [s["asset_id"] for s in h["suggestions"][:2]] for h in first["hcps"][::10]}
    for hcp in hcps:
        if hcp["hcp_id"] in excluded:
            hcp["exclude_asset_ids"] = excluded[hcp["hcp_id"]]
    opted = [h["hcp_id"] for h in hcps[1::5]]  # 20% opted out
    general = api.client.post("/v1/match", json={"personalized": False, "k": 3, "language": "en"},
                              headers=api.h("rep")).json()
    # an opted-out HCP's exclusions hold in the non-personalised list too
    excluded[hcps[1]["hcp_id"]] = hcps[1]["exclude_asset_ids"] = [r["asset_id"] for r in general["results"][:2]]
    for hcp_id in opted:
        assert api.client.post("/v1/opt-outs", json={"hcp_id": hcp_id}, headers=api.h("rep")).status_code == 201
    try:
        out = plan(api, {"hcps": hcps})
    finally:
        for hcp_id in opted:
            api.client.delete(f"/v1/opt-outs/{hcp_id}", headers=api.h("rep"))
    with c.db.session() as s:
        assets = {a.id: a for a in s.scalars(select(Asset))}
    assert out["opted_out"] == len(opted)
    for h in out["hcps"]:
        # every HCP gets content, unless the CRM's exclusions took all that fits (then the plan says so)
        assert h["suggestions"] or (h["hcp_id"] in excluded and h["coverage"] == "none"), h["hcp_id"]
        for s in h["suggestions"]:
            asset = assets[s["asset_id"]]
            assert asset.approval_status == "approved", s["title"]
            assert asset.valid_until is None or asset.valid_until >= date.today(), s["title"]
            assert s["asset_id"] not in excluded.get(h["hcp_id"], [])
            assert all(a["asset_id"] not in excluded.get(h["hcp_id"], []) for a in s["alternates"])
        assert h["expiry"] == min((s["valid_until"] for s in h["suggestions"] if s["valid_until"]), default=None)
        if h["hcp_id"] in opted:
            assert (h["basis"], h["personalized"]) == ("opted_out", False)
            assert h["drivers"] == [{"driver": "not_personalised", "value": "opted_out", "score": 0.0, "weight": 1.0,
                                     "contribution": 0.0}]
            assert all(s["matched_tags"] == [] for s in h["suggestions"])
            if h["hcp_id"] not in excluded and dict(hcps[int(h["hcp_id"][4:])]).get("language") == "en":
                assert [s["asset_id"] for s in h["suggestions"]] == [r["asset_id"] for r in general["results"]]
        else:
            assert h["basis"] == "need_tags" and h["personalized"]
    # HCPs with one need share one retrieval: two tag needs per language and one free text per language
    assert out["distinct_needs"] == 6


def test_the_channel_follows_the_rule_data_and_the_priority_its_drivers(api, tmp_path: Path):
    c = api.components
    out = plan(api, {"hcps": [
        {"hcp_id": "f2f", "need_tags": {**SAFETY_CARDIO, "channel_preference": ["face_to_face"],
                                        "potential_tier": ["high"]}, "k": 6},
        {"hcp_id": "low", "need_tags": {**SAFETY_CARDIO, "channel_preference": ["face_to_face"],
                                        "potential_tier": ["low"]}, "k": 6},
        {"hcp_id": "none", "need_tags": SAFETY_CARDIO, "k": 6},
    ]})
    f2f, low, none = out["hcps"]
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    carried = {"pptx": "slide_deck", "pdf": "document", "docx": "document", "news": "news_item",
               "html": "web_article", "markdown": "web_article", "txt": "document"}
    for s in f2f["suggestions"]:
        fits = carried[s["format"]] in rules["channels"]["face_to_face"]
        assert (s["channel"], s["channel_basis"]) == (("face_to_face", "preference") if fits
                                                      else ("face_to_face", "preference_only")), s
    for s in none["suggestions"]:
        assert (s["channel"], s["channel_basis"]) == (rules["format_default_channel"][carried[s["format"]]], "format")
    assert {s["format"] for s in f2f["suggestions"]} & {"pptx", "pdf"}, "the need should find a deck or a PDF"
    # the same need: the tier alone decides, as the rules weigh it
    assert f2f["priority"] - low["priority"] == pytest.approx(rules["priority"]["dimensions"]["potential_tier"]
                                                              ["weight"] * (1.0 - 0.3), abs=1e-3)
    assert f2f["priority_rank"] < none["priority_rank"] < low["priority_rank"]
    for h in out["hcps"]:
        assert h["priority"] == pytest.approx(sum(d["contribution"] for d in h["drivers"]), abs=1e-3)
    # the rules are data: a file that sends slide decks to meetings changes the channel, no code touched
    rules["channels"]["face_to_face"] = ["document"]
    rules["channels"]["meeting"] = ["slide_deck"]
    edited = tmp_path / "rules.yaml"
    edited.write_text(yaml.safe_dump(rules), encoding="utf-8")
    planner = PanelPlanner(c.matcher, load_panel_rules(edited, c.tagger.taxonomy))
    request = PanelPlanRequest.model_validate({"hcps": [{"hcp_id": "x", "need_tags": {
        **SAFETY_CARDIO, "channel_preference": {"face_to_face": 2, "meeting": 1}}, "k": 6}]})
    for s in planner.plan(request, c.tagger.taxonomy).hcps[0].suggestions:
        expected = {"pptx": ("meeting", "preference"), "pdf": ("face_to_face", "preference"),
                    "docx": ("face_to_face", "preference")}.get(s.format, ("face_to_face", "preference_only"))
        assert (s.channel, s.channel_basis) == expected, s.format


def test_rules_that_name_what_the_taxonomy_lacks_are_refused_naming_it(api, tmp_path: Path):
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules["channels"]["carrier_pigeon"] = ["document"]
    bad = tmp_path / "rules.yaml"
    bad.write_text(yaml.safe_dump(rules), encoding="utf-8")
    with pytest.raises(ValueError, match="carrier_pigeon"):
        load_panel_rules(bad, api.components.tagger.taxonomy)


def test_the_csv_plan_says_what_the_json_plan_says(api):
    body = {"hcps": panel(9)}
    as_json = plan(api, body)
    as_csv = plan(api, body, accept="text/csv")
    assert as_csv["type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv["text"])))
    # a row per suggestion; an HCP nothing fits gets one row, its asset columns empty, its coverage saying why
    expected = [(h["hcp_id"], str(h["priority_rank"]), h["basis"], h["coverage"] or "", str(rank), s["asset_id"],
                 s["channel"], s["valid_until"] or "", h["expiry"] or "")
                for h in as_json["hcps"] for rank, s in enumerate(h["suggestions"], start=1)]
    expected += [(h["hcp_id"], str(h["priority_rank"]), h["basis"], h["coverage"], "", "", "", "", "")
                 for h in as_json["hcps"] if not h["suggestions"]]
    got = [(r["hcp_id"], r["priority_rank"], r["basis"], r["coverage"], r["rank"], r["asset_id"], r["channel"],
            r["valid_until"], r["expiry"]) for r in rows]
    assert sorted(got) == sorted(expected)
    assert [r["hcp_id"] for r in rows] == [h["hcp_id"] for h in as_json["hcps"]
                                           for _ in (h["suggestions"] or [None])], "in the plan's order"


PANEL_CSV = ROOT / "samples" / "panel.csv"


def test_a_panel_uploaded_as_csv_is_planned_as_the_same_panel_sent_as_json(api):
    r = api.client.post("/v1/panels/plan/csv", files={"panel": ("panel.csv", PANEL_CSV.read_bytes(), "text/csv")},
                        headers=api.h("rep"))
    assert r.status_code == 200, r.text
    same = {"hcps": [
        {"hcp_id": "hcp-001", "language": "zh", "need_tags": {"therapy_area": {"cardiovascular": 1},
         "value_driver": {"safety": 2}, "channel_preference": {"face_to_face": 1}, "potential_tier": {"high": 1}}},
        {"hcp_id": "hcp-002", "language": "en", "need_tags": {"therapy_area": ["metabolism"], "value_driver":
         ["onset_speed"], "channel_preference": ["online"], "potential_tier": ["medium"]}},
        {"hcp_id": "hcp-003", "language": "zh", "need_text": "GLP-1 胃肠道不良反应怎么处理",
         "need_tags": {"channel_preference": ["meeting"], "potential_tier": ["low"]}},
        {"hcp_id": "hcp-004", "language": "en", "need_tags": {"therapy_area": ["oncology"], "value_driver":
         ["efficacy", "price_access"], "channel_preference": ["third_party"], "potential_tier": ["medium"]}}]}
    as_json = plan(api, same)
    def key(p: dict) -> list:
        return [(h["hcp_id"], h["priority_rank"], [(s["asset_id"], s["channel"]) for s in h["suggestions"]])
                for h in p["hcps"]]
    assert key(r.json()) == key(as_json) and all(h["suggestions"] for h in as_json["hcps"])
    # and as CSV back, a row per suggestion
    back = api.client.post("/v1/panels/plan/csv", files={"panel": ("panel.csv", PANEL_CSV.read_bytes())},
                           headers={**api.h("rep"), "Accept": "text/csv"})
    assert back.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(back.text)))) == sum(len(h["suggestions"]) for h in as_json["hcps"])


@pytest.mark.parametrize(("text", "code", "where"), [
    ("hcp_id,colour\nh1,red\n", "csv_unknown_column", {"column": "colour"}),
    ("language\nzh\n", "csv_missing_column", None),
    ("hcp_id,k\nh1,3\nh2,many\n", "csv_invalid_row", {"row": 3, "column": "k"}),
    ("hcp_id,value_driver\nh1,safety:lots\n", "csv_invalid_row", {"row": 2, "column": "value_driver"}),
    ("hcp_id,value_driver\nh1,bravery\n", "unknown_value", None),
    ("hcp_id\n", "csv_empty", None),
])
def test_a_bad_panel_csv_is_a_422_naming_the_row_and_column(api, text, code, where):
    r = api.client.post("/v1/panels/plan/csv", files={"panel": ("panel.csv", text.encode())}, headers=api.h("rep"))
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    if where:
        assert {k: r.json()["details"][k] for k in where} == where
        assert f"column {where['column']}" in r.json()["message"] or where["column"] in r.json()["message"]
    gbk = api.client.post("/v1/panels/plan/csv", files={"panel": ("p.csv", "hcp_id\n医生1\n".encode("gbk"))},
                          headers=api.h("rep"))
    assert gbk.status_code == 422 and gbk.json()["code"] == "bad_csv_encoding"


def test_a_plan_is_audited_by_its_size_without_any_hcp_or_need(api):
    c = api.components
    with c.db.session() as s:
        before = s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
    hcps = panel(6)
    planned = plan(api, {"hcps": hcps})
    with c.db.session() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.id > before)))
    assert [e.action for e in entries] == ["panel.plan"]
    assert entries[0].after["hcps"] == 6
    assert entries[0].after["suggestions"] == sum(len(h["suggestions"]) for h in planned["hcps"]) > 0
    stored = json.dumps([entries[0].before, entries[0].after, entries[0].target_id], ensure_ascii=False)
    for secret in ["hcp-00", "cardiovascular", "safety", "face_to_face", "high", "GLP-1", "胃肠道"]:
        assert secret not in stored


@pytest.mark.parametrize(("body", "code"), [
    ({"hcps": [{"hcp_id": f"h{i}", "need_text": "抗凝"} for i in range(501)]}, "invalid_request"),
    ({"hcps": [{"hcp_id": "a", "need_text": "抗凝"}, {"hcp_id": "b", "need_tags": {"star_sign": ["leo"]}}]},
     "unknown_dimension"),
    ({"hcps": [{"hcp_id": "a", "need_tags": {"potential_tier": ["legendary"]}}]}, "unknown_value"),
    ({"hcps": [{"hcp_id": "a", "need_text": "抗凝"}, {"hcp_id": "a", "need_text": "降糖"}]}, "duplicate_hcp_id"),
    ({"hcps": [{"hcp_id": "a", "need_tags": {"channel_preference": ["online"]}}]}, "empty_need"),
    ({"hcps": []}, "invalid_request"),
])
def test_a_bad_plan_is_a_422_with_a_code_and_nothing_is_audited(api, body, code):
    c = api.components
    with c.db.session() as s:
        before = s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
    err = plan(api, body, status=422)
    assert err["code"] == code and err["message"]
    if code in ("unknown_dimension", "unknown_value", "empty_need"):
        assert err["details"]["hcp_id"] == body["hcps"][-1]["hcp_id"]  # which HCP is wrong
    with c.db.session() as s:
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.id > before).limit(1)) is None


class CountingEmbedder(Embedder):
    """The real embedder, counting the query texts that reach it."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner.batch_size)
        self.inner, self.name, self.dim, self.queries = inner, inner.name, inner.dim, 0

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        self.queries += len(texts) if kind == "query" else 0
        return self.inner.embed(texts, kind)

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        return self.inner.embed(texts, kind)


def test_hcps_with_one_need_share_one_need_vector(api):
    """Shared work once per plan: 30 HCPs with two needs (and their own k and exclusions), two query embeddings,
    with no query cache in front of the embedder."""
    c = api.components
    counting = CountingEmbedder(c.embedder)
    planner = PanelPlanner(Matcher.from_settings(c.db, c.vectors, counting, c.settings),
                           load_panel_rules(RULES, c.tagger.taxonomy))
    hcps = [{"hcp_id": f"h{i}", "need_tags": SAFETY_CARDIO if i % 2 else ONSET_DIABETES, "language": "en",
             "exclude_asset_ids": [f"x{i}"], "k": 1 + i % 5} for i in range(30)]
    out = planner.plan(PanelPlanRequest.model_validate({"hcps": hcps}), c.tagger.taxonomy)
    assert out.distinct_needs == 2 and counting.queries == 2
    assert [len(h.suggestions) for h in out.hcps] == [1 + i % 5 for i in range(30)]


def test_panel_plans_need_a_key_whose_role_may_match(api):
    body = {"hcps": [{"hcp_id": "a", "need_text": "抗凝"}]}
    assert api.client.post("/v1/panels/plan", json=body).status_code == 401
    assert api.client.post("/v1/panels/plan", json=body, headers=api.h("reviewer")).status_code == 403
