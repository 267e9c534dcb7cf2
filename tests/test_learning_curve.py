"""The learning curve: its numbers against a hand-worked case, and the command's report against its own JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import GoldItem
from eval.learning_curve import Draw, plan_sizes, score_draw, summarise
from eval.tagging import Prepared
from service.core.taxonomy import load_taxonomy
from service.reports.render import render_html
from service.reports.stored import get_report
from service.settings import Settings
from service.store.db import Database
from service.tagging.result import Tag, TaggingResult

from .report_checks import mismatches

ROOT = Path(__file__).resolve().parent.parent


def _result(taxonomy_key: str, tags: list[tuple[str, float]]) -> TaggingResult:
    return TaggingResult(tags=[Tag("hallmark", v, c, "learned", None, False, c < 0.8) for v, c in tags],
                         status="llm_off", taxonomy=taxonomy_key, prompt_version=None, models={})


def test_a_draws_numbers_match_the_hand_worked_case():
    taxonomy = load_taxonomy(ROOT / "taxonomy" / "hoc.yaml")
    dim = taxonomy.dimensions[0]
    v1, v2, v3 = dim.value_ids[:3]
    items = [Prepared(GoldItem(id=i, text=i, labels={dim.id: labels}), [i], np.zeros((1, 4), np.float32))
             for i, labels in (("a", {v1}), ("b", {v2}))]
    results = [_result(taxonomy.key, [(v1, 0.9), (v3, 0.85)]), _result(taxonomy.key, [(v2, 0.3)])]
    draw = score_draw(taxonomy, items, results, threshold=0.8)
    # by hand: v1 and v2 each one true positive (F1 1), v3 one false positive (F1 0): macro over the three
    # labels seen = 2/3. Three tags in three confidence bins: |1-0.9|, |0-0.85|, |1-0.3| → ECE (0.1+0.85+0.7)/3.
    # At 0.8 two tags are accepted, one of them right.
    assert draw.macro_f1 == pytest.approx(2 / 3, abs=1e-3)
    assert draw.ece == pytest.approx(0.55, abs=1e-3)
    assert draw.precision == pytest.approx(0.5)
    assert draw.accepted_share == pytest.approx(2 / 3, abs=1e-3)


def test_a_point_is_the_mean_and_sample_deviation_of_its_draws():
    point = summarise(25, [Draw(0.5, 0.10, 0.8, 0.2, 0.4), Draw(0.7, 0.06, None, 0.0, 0.5),
                           Draw(0.6, 0.08, 0.9, 0.4, 0.6)])
    assert (point.size, point.draws) == (25, 3)
    assert point.macro_f1 == pytest.approx(0.6) and point.macro_f1_sd == pytest.approx(0.1)
    assert point.ece == pytest.approx(0.08) and point.ece_sd == pytest.approx(0.02)
    assert point.precision_at_threshold == pytest.approx(0.85)  # the draw where no tag reached it is left out
    assert point.accepted_share == pytest.approx(0.2) and point.baseline_macro_f1 == pytest.approx(0.5)
    single = summarise(10, [Draw(0.4, 0.1, None, 0.0)])
    assert single.macro_f1_sd == 0.0 and single.precision_at_threshold is None and single.baseline_macro_f1 is None


def test_sizes_stop_below_the_pool_and_the_whole_pool_is_one_draw():
    assert plan_sizes([50, 10, 25, 10, 1000], pool=30, draws=3) == [(10, 3), (25, 3), (30, 1)]
    assert plan_sizes([], pool=8, draws=2) == [(8, 1)]


def test_the_learning_curve_command_writes_a_report_whose_page_and_plot_match_its_json(tmp_path):
    out = tmp_path / "curve"
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path / "data"), "HCP_LLM_MODE": "off"}
    run = subprocess.run([sys.executable, "-m", "service.cli", "eval", "learning-curve", "--gold",
                          str(ROOT / "samples" / "gold.yaml"), "--taxonomy", str(ROOT / "taxonomy" / "pharma.yaml"),
                          "--sizes", "8,16", "--draws", "2", "--folds", "3", "--out", str(out), "--save"], env=env,
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    curve = report["learning_curve"]
    assert curve["evaluated_on"] == "cross-validated (3 folds)"
    assert [(p["size"], p["draws"]) for p in curve["points"]] == [(8, 2), (16, 2), (24, 1)]
    for p in curve["points"]:
        assert 0.0 <= p["macro_f1"] <= 1.0 and 0.0 <= p["ece"] <= 1.0 and p["baseline_macro_f1"] is not None
    # the whole pool is every fold's full training split: the same folds as the report's own cross-validation
    assert curve["points"][-1]["macro_f1"] == pytest.approx(report["overall"]["macro_f1_mean"], abs=1e-3)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-plot="learning_curve"' in html and "<svg" in html.split('data-plot="learning_curve"')[1][:400]
    assert mismatches(html, report) == []
    # stored too, so the console's Reports page lists it and draws its curve
    stored_id = run.stdout.split("stored as ")[1].split()[0]
    settings = Settings(data_dir=tmp_path / "data", llm_mode="off")
    with Database(settings.resolved_database_url).session() as s:
        stored = get_report(s, stored_id)
    assert stored is not None and stored.learning_curve is not None
    assert [p.size for p in stored.learning_curve.points] == [8, 16, 24]
    assert 'data-plot="learning_curve"' in render_html(stored, "zh")
