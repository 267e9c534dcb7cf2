"""The review loop: reviewers accept and reject the engine's tags on the sample set; retraining fits learned
heads on those reviews, the service tags with them, and `eval --gold reviewed` shows the difference."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import yaml

from service.ingest import Ingestor
from service.settings import Settings
from service.store.generations import load_generation, serving_state
from service.tagging.calibration import Calibrator
from service.tagging.proposer import parse_heads

from .api_helpers import ROOT, SAMPLES, start_api, stop_api


def test_reviews_train_the_heads_and_eval_on_reviewed_gold_reflects_them(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", llm_mode="off", worker_poll_s=0.1, retrain_after_reviews=10_000)
    api = start_api(settings)
    try:
        c = api.components
        Ingestor.from_settings(c.db, c.vectors, c.embedder, settings, tagger=c.tagger).ingest_path(SAMPLES)
        assert c.tagger.engine.heads is None
        gold = yaml.safe_load((ROOT / "samples" / "gold.yaml").read_text(encoding="utf-8"))["assets"]
        page = api.client.get("/v1/assets", params={"limit": 200}, headers=api.h("admin")).json()["items"]
        uris = {a["id"]: api.client.get(f"/v1/assets/{a['id']}", headers=api.h("admin")).json()["uri"] for a in page}
        reviewed = added = 0
        for asset in page:
            truth = gold[uris[asset["id"]]]
            for dimension, values in truth.items():
                values = {values} if isinstance(values, str) else set(values or [])
                proposed = [t for t in asset["tags"] if t["dimension"] == dimension and t["method"] != "metadata"]
                if not proposed and not values:
                    continue
                for tag in proposed:  # accept what is right, reject what is wrong
                    action = "accept" if tag["value"] in values else "reject"
                    r = api.client.post(f"/v1/tags/{tag['id']}/review", json={"action": action},
                                        headers=api.h("reviewer"))
                    assert r.status_code == 200, r.text
                    reviewed += 1
                for value in values - {t["value"] for t in asset["tags"] if t["dimension"] == dimension}:
                    r = api.client.post(f"/v1/assets/{asset['id']}/tags", json={"dimension": dimension,
                                                                               "value": value},
                                        headers=api.h("reviewer"))  # and add what the engine missed
                    assert r.status_code == 201, r.text
                    added += 1
        assert reviewed > 100 and added > 10
        r = api.client.post("/v1/tagging/retrain", headers=api.h("reviewer"))
        assert r.status_code == 202
        job = api.wait_job(r.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["items"][0]["outcome"].startswith("heads:")
        heads = c.tagger.engine.heads
        assert heads is not None and heads.embedding is not None and heads.lexical is not None
        assert len(heads.embedding.models) > 10 and len(heads.lexical.models) > 10
        assert heads.embedding.examples == heads.lexical.examples == 36
        # stored as the newest model generation of the active taxonomy, which every process serves
        state = serving_state(c.db)
        assert state is not None and state.taxonomy_key == c.tagger.taxonomy.key
        assert state.generation is not None and state.generation == c.tagger.generation
        assert f"generation:{state.generation}" in job["items"][0]["outcome"]
        # stored in skops' format (JSON and arrays, read with an allow-list), never a pickle; read back whole
        raw_heads, raw_calibrator = load_generation(c.db, state.generation)
        for raw in (raw_heads, raw_calibrator):
            assert "schema.json" in zipfile.ZipFile(io.BytesIO(raw)).namelist()
        again = parse_heads(c.tagger.taxonomy, raw_heads)
        assert again is not None and again.count == heads.count
        assert Calibrator.loads(c.tagger.taxonomy, raw_calibrator) is not None
    finally:
        stop_api(api)

    out = tmp_path / "reviewed.json"
    env = {**os.environ, "HCP_DATA_DIR": str(settings.data_dir), "HCP_LLM_MODE": "off"}
    run = subprocess.run([sys.executable, "-m", "service.cli", "eval", "tagging", "--gold", "reviewed",
                          "--mode", "embedding,learned", "--out", str(out)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    embedding, learned = json.loads(out.read_text(encoding="utf-8"))
    assert embedding["items"] == learned["items"] == 36 and learned["heads"] > 10
    # the heads were fitted on these very reviews: on them they must beat the zero-shot signals clearly
    assert learned["macro_f1_mean"] > embedding["macro_f1_mean"] + 0.1, (learned["macro_f1_mean"],
                                                                       embedding["macro_f1_mean"])
