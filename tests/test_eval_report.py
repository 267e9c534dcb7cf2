"""Evaluation reports: the numbers are right, the page shows the JSON's numbers, the charts are drawn, and the
API makes, lists and serves reports from reviewers' decisions (with the roles it should)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from eval.datasets import load_gold
from eval.tagging import prepare, report_run, tag_all, tag_cross_validated
from service.core.prompts import load_prompt
from service.core.taxonomy import load_taxonomy
from service.reports.build import build_report
from service.reports.render import render_html
from service.reports.runs import Prediction, ReviewEvent, Run
from service.reports.schema import EvalReport
from service.settings import Settings
from service.tagging.engine import TaggingEngine

from .api_helpers import ROOT, SUBSET, ingest_samples, start_api, stop_api
from .report_checks import mismatches, page_numbers

TAXONOMY = load_taxonomy(ROOT / "taxonomy" / "pharma.yaml")


def _hand_run() -> Run:
    gold = {"a1": {"therapy_area": {"cardiovascular"}, "content_type": {"clinical_study"}},
            "a2": {"therapy_area": {"oncology"}, "content_type": {"guideline"}}}
    predictions = [
        Prediction("a1", "therapy_area", "cardiovascular", 0.95, "embedding"),  # right
        Prediction("a1", "therapy_area", "oncology", 0.35, "embedding"),  # wrong
        Prediction("a1", "content_type", "clinical_study", 0.85, "llm"),  # right
        Prediction("a2", "therapy_area", "oncology", 0.90, "llm"),  # right
        Prediction("a2", "content_type", "clinical_study", 0.82, "llm"),  # wrong, and the top proposal
        Prediction("a2", "content_type", "guideline", 0.50, "keyword"),  # right
        Prediction("a2", "disease", "nsclc", 0.99, "llm"),  # disease is not labelled on a2: not scored
    ]
    day1, day2 = datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 21, 9, tzinfo=UTC)
    reviews = [ReviewEvent(day1, "accept"), ReviewEvent(day1, "accept"), ReviewEvent(day1, "reject"),
               ReviewEvent(day2, "edit")]
    return Run(label="hand", source="test", mode="service", taxonomy=TAXONOMY.key, gold=gold,
               predictions=predictions, reviews=reviews)


def test_report_numbers_are_the_ones_worked_out_by_hand():
    r = build_report(TAXONOMY, _hand_run(), threshold=0.8)
    assert r.run.items == 2 and r.run.predictions == 6  # the unlabelled disease tag is not scored
    ta = r.dimensions["therapy_area"]
    assert (ta.tp, ta.fp, ta.fn) == (2, 1, 0) and ta.precision == pytest.approx(0.6667) and ta.f1 == 0.8
    assert (r.overall.tp, r.overall.fp, r.overall.fn) == (4, 2, 0) and r.overall.f1 == 0.8
    ct = r.confusion["content_type"]
    assert ct.labels == ["guideline", "clinical_study"]  # taxonomy order, only values that occur
    assert ct.matrix == [[0, 1], [0, 1]] and ct.accuracy == 0.5  # the guideline item's top proposal was wrong
    assert "therapy_area" not in r.confusion  # multi-valued
    # bins 3, 5, 8 (0.82, 0.85) and 9 (0.9, 0.95): ECE = (0.35 + 0.5 + 2 × 0.335 + 2 × 0.075) / 6
    assert r.reliability.ece == pytest.approx(1.67 / 6, abs=1e-4)
    assert [b.count for b in r.reliability.bins] == [0, 0, 0, 1, 0, 1, 0, 0, 2, 2]
    aa = r.auto_accept
    assert (aa.accepted, aa.correct, aa.wrong, aa.to_review, aa.correct_to_review) == (4, 3, 1, 2, 1)
    assert aa.precision == 0.75
    at_08 = next(p for p in r.thresholds if p.threshold == 0.8)
    assert at_08.kept == 4 and at_08.precision == 0.75 and at_08.recall == 0.75
    assert {m: (row.count, row.correct) for m, row in r.methods.items()} == {
        "llm": (3, 2), "embedding": (2, 1), "keyword": (1, 1)}
    assert [(d.day.isoformat(), d.accepted, d.rejected, d.edited, d.rate) for d in r.acceptance] == [
        ("2026-11-20", 2, 1, 0, pytest.approx(0.6667)), ("2026-11-21", 0, 0, 1, 0.0)]


def test_comparison_highlights_what_got_better_and_worse():
    base = _hand_run()
    better = Run(**{**base.__dict__, "label": "fixed", "predictions": [
        p for p in base.predictions if not (p.item == "a2" and p.value == "clinical_study")]})
    a = build_report(TAXONOMY, base)
    b = build_report(TAXONOMY, better, baseline=a, baseline_id="rep_a")
    c = b.comparison
    assert c is not None and c.baseline_id == "rep_a" and c.a.label == "hand" and c.b.label == "fixed"
    assert c.dimensions["content_type"].change == "better" and c.dimensions["content_type"].delta == pytest.approx(0.2)
    assert c.dimensions["therapy_area"].change == "same"
    assert c.overall["precision"].change == "better" and c.overall["ece"].b < c.overall["ece"].a
    html = render_html(b)
    assert mismatches(html, b.model_dump(mode="json")) == []
    rows = re.findall(r'<tr class="(\w+)"><td>(\w+)</td>', html)
    assert ("better", "content_type") in rows and ("same", "therapy_area") in rows


@pytest.fixture(scope="module")
def sample_reports(embedder):
    """The sample gold tagged twice: embedding only (A) and learned heads, cross-validated (B)."""
    items = prepare(load_gold(ROOT / "samples" / "gold.yaml", TAXONOMY), embedder)
    engine = TaggingEngine(TAXONOMY, embedder, prompt=load_prompt("tagging"))
    a = build_report(TAXONOMY, report_run(TAXONOMY, items, tag_all(engine, items, "embedding"), mode="embedding",
                                          source="gold.yaml", label="embedding"))
    pooled, results = tag_cross_validated(engine, items, folds=4)
    b = build_report(TAXONOMY, report_run(TAXONOMY, pooled, results, mode="learned", source="gold.yaml",
                                          label="learned (cv4)"), baseline=a, baseline_id="rep_embedding")
    return a, b


def test_sample_gold_report_page_shows_the_json_numbers_and_draws_every_chart(sample_reports):
    _, report = sample_reports
    data = json.loads(report.model_dump_json())
    assert EvalReport.model_validate(data) == report  # the JSON is the whole report
    assert report.run.items == 36 and report.run.predictions > 300
    html = render_html(report)
    numbers = page_numbers(html)
    assert mismatches(html, data) == []
    keys = {k for k, _ in numbers}
    for dim in report.dimensions:  # every dimension's scores are on the page, and every comparison row
        assert {f"dimensions.{dim}.{m}" for m in ("precision", "recall", "f1", "macro_f1")} <= keys
        assert f"comparison.dimensions.{dim}.delta" in keys
    assert {"overall.f1", "reliability.ece", "auto_accept.wrong", "auto_accept.accepted"} <= keys
    assert {f"methods.{m}.precision" for m in report.methods} <= keys
    assert {"content_type", "evidence_level", "adoption_stage"} <= set(report.confusion)
    figures = re.findall(r'<figure class="plot" data-plot="([^"]+)">(.*?)</figure>', html, flags=re.S)
    names = {name for name, _ in figures}
    assert {"dimensions", "reliability", "precision_coverage", "methods", "comparison"} <= names
    assert {f"confusion:{d}" for d in report.confusion} <= names
    for name, svg in figures:
        assert svg.startswith("<svg") and svg.count("<path") >= 3, name
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    # the JSON is consistent with itself: the page could not agree with a wrong JSON by accident
    assert report.overall.tp == sum(d.tp for d in report.dimensions.values())
    bins = [b for b in report.reliability.bins if b.count]
    ece = sum(b.count / report.reliability.predictions * abs(b.accuracy - b.confidence) for b in bins)
    assert report.reliability.ece == pytest.approx(ece, abs=2e-3)
    assert sum(b.count for b in report.reliability.bins) == report.run.predictions
    assert report.auto_accept.accepted == next(p.kept for p in report.thresholds if p.threshold == 0.8)
    # learned heads beat embedding-only on the samples, and the page says so
    assert report.comparison is not None and report.comparison.overall["f1"].change == "better"
    assert 'class="better"><td>f1</td>' in html


def test_report_page_in_chinese(sample_reports):
    html = render_html(sample_reports[0], "zh")
    assert '<html lang="zh-CN">' in html and "各维度的精确率、召回率与F1" in html and "阈值 0.800 自动通过" in html


def _review_some(api, n_accept: int, n_reject: int) -> list[int]:
    queue = api.client.get("/v1/review/queue", params={"limit": 100}, headers=api.h("reviewer")).json()
    tags = [t for item in queue["items"] for t in item["tags"]]
    assert len(tags) >= n_accept + n_reject
    done = []
    for tag, action in zip(tags, ["accept"] * n_accept + ["reject"] * n_reject, strict=False):
        r = api.client.post(f"/v1/tags/{tag['id']}/review", json={"action": action}, headers=api.h("reviewer"))
        assert r.status_code == 200, r.text
        done.append(tag["id"])
    return done


def test_review_queue_and_reports_over_the_api(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", llm_mode="off", worker_poll_s=0.1, retrain_after_reviews=10_000)
    api = start_api(settings)
    try:
        ingest_samples(api.components, SUBSET)
        r = api.client.post("/v1/eval/reports", json={}, headers=api.h("reviewer"))
        assert r.status_code == 409 and r.json()["code"] == "no_reviewed_tags"

        q = api.client.get("/v1/review/queue", params={"limit": 100}, headers=api.h("reviewer")).json()
        waiting = [t for item in q["items"] for t in item["tags"]]
        assert q["total_tags"] == len(waiting) > 4
        assert all(t["needs_review"] and t["status"] == "proposed" for t in waiting)
        dim = waiting[0]["dimension"]
        only = api.client.get("/v1/review/queue", params={"dimension": dim}, headers=api.h("reviewer")).json()
        assert {t["dimension"] for i in only["items"] for t in i["tags"]} == {dim}
        low = api.client.get("/v1/review/queue", params={"max_confidence": 0.3}, headers=api.h("reviewer")).json()
        assert all(t["confidence"] <= 0.3 for i in low["items"] for t in i["tags"])
        assert low["total_tags"] == sum(t["confidence"] <= 0.3 for t in waiting)
        paged = api.client.get("/v1/review/queue", params={"limit": 1}, headers=api.h("reviewer")).json()
        assert len(paged["items"]) == 1 and paged["next_cursor"]
        for params, code in (({"dimension": "colour"}, "unknown_dimension"),
                             ({"min_confidence": 0.9, "max_confidence": 0.1}, "invalid_range"),
                             ({"cursor": "!!"}, "invalid_request"), ({"cursor": "AAAA"}, "invalid_cursor")):
            r = api.client.get("/v1/review/queue", params=params, headers=api.h("reviewer"))
            assert r.status_code == 422 and r.json()["code"] == code, r.text
        assert api.client.get("/v1/review/queue", headers=api.h("rep")).status_code == 403

        _review_some(api, 2, 1)
        after = api.client.get("/v1/review/queue", params={"limit": 100}, headers=api.h("reviewer")).json()
        assert after["total_tags"] == q["total_tags"] - 3

        r = api.client.post("/v1/eval/reports", json={"title": "First week"}, headers=api.h("reviewer"))
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["id"].startswith("rep_") and first["title"] == "First week"
        assert first["run"]["source"] == "reviewed" and first["run"]["items"] >= 1
        today = datetime.now(UTC).date().isoformat()
        assert [(d["day"], d["accepted"], d["rejected"]) for d in first["acceptance"]] == [(today, 2, 1)]

        assert api.client.get(f"/v1/eval/reports/{first['id']}", headers=api.h("admin")).json() == first
        page = api.client.get(f"/v1/eval/reports/{first['id']}", params={"format": "html"}, headers=api.h("reviewer"))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert mismatches(page.text, first) == [] and len(page_numbers(page.text)) > 50
        browser = api.client.get(f"/v1/eval/reports/{first['id']}", headers={**api.h("reviewer"),
                                                                               "Accept": "text/html,*/*"})
        assert browser.headers["content-type"].startswith("text/html")
        zh = api.client.get(f"/v1/eval/reports/{first['id']}", params={"format": "html", "lang": "zh"},
                            headers=api.h("reviewer"))
        assert "审核通过率随时间变化" in zh.text

        _review_some(api, 1, 0)
        r = api.client.post("/v1/eval/reports", json={"baseline_id": first["id"]}, headers=api.h("admin"))
        assert r.status_code == 201
        second = r.json()
        assert second["comparison"]["baseline_id"] == first["id"]
        listed = api.client.get("/v1/eval/reports", headers=api.h("reviewer")).json()
        assert [x["id"] for x in listed] == [second["id"], first["id"]]  # newest first
        assert listed[1]["f1"] == first["overall"]["f1"]

        r = api.client.post("/v1/eval/reports", json={"baseline_id": "rep_missing"}, headers=api.h("reviewer"))
        assert r.status_code == 404 and r.json()["code"] == "report_not_found"
        r = api.client.post("/v1/eval/reports", json={"threshold": 1.5}, headers=api.h("reviewer"))
        assert r.status_code == 422
        assert api.client.get("/v1/eval/reports/rep_nope", headers=api.h("reviewer")).status_code == 404
        for role in ("rep", "content_editor"):
            assert api.client.get("/v1/eval/reports", headers=api.h(role)).status_code == 403
            assert api.client.post("/v1/eval/reports", json={}, headers=api.h(role)).status_code == 403
        assert api.client.get(f"/v1/eval/reports/{first['id']}").status_code == 401
    finally:
        stop_api(api)


def test_eval_report_command_writes_html_and_json(tmp_path):
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path / "data"), "HCP_LLM_MODE": "off"}
    out = tmp_path / "out"
    empty = subprocess.run([sys.executable, "-m", "service.cli", "eval", "report", "--out", str(out)],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert empty.returncode == 1 and "no reviewed tags" in empty.stdout + empty.stderr
    done = subprocess.run([sys.executable, "-m", "service.cli", "eval", "report", "--gold", "samples/gold.yaml",
                           "--limit", "10", "--out", str(out), "--save"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["run"]["items"] == 10 and data["id"].startswith("rep_")
    assert mismatches((out / "report.html").read_text(encoding="utf-8"), data) == []
    assert f"F1 {data['overall']['f1']:.3f}" in done.stdout
