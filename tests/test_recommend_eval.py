"""`hcp-content eval recommend`: the harness on a folder built by hand, checked against hand-worked metrics, and
the whole command on a small slice of the synthetic engagement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.contract import EvalError
from eval.recommend import evaluate, load_folder, parse_cutoff
from eval.synthetic_engagement import generate
from service.engagement.rules import default_rules

ROOT = Path(__file__).resolve().parent.parent


def _write(folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def hand_folder(tmp_path: Path) -> Path:
    """Five items, four doctors. Before the cutoff (2026-01-10): a is worth 4 (u1 3, u3 1), b 2, c 1; u2 also
    dismissed d, so u2 has 3 events and is the only doctor with history. After: u1 opens c, u2 opens d and a, u3
    opens b, u4 (no history) opens e, which nobody had seen; u3 is also sent d (a send is not a target)."""
    _write(tmp_path, "items.jsonl", [{"id": i, "tags": {"area": ["x" if i in "ab" else "y"]}} for i in "abcde"])
    _write(tmp_path, "users.jsonl", [{"id": u, "attributes": {"dept": "card"}} for u in ("u1", "u2", "u3", "u4")])
    events = [("u1", "a", "viewed", "2026-01-01", 3), ("u2", "b", "opened", "2026-01-02", 2),
              ("u2", "c", "opened", "2026-01-03", 1), ("u2", "d", "dismissed", "2026-01-04", None),
              ("u3", "a", "opened", "2026-01-05", 1),
              ("u1", "c", "opened", "2026-01-10", None),  # exactly at the cutoff: test
              ("u2", "d", "opened", "2026-01-11", None), ("u2", "a", "viewed", "2026-01-12", None),
              ("u3", "b", "opened", "2026-01-12", None), ("u3", "d", "sent", "2026-01-12", None),
              ("u4", "e", "opened", "2026-01-13", None)]
    _write(tmp_path, "events.jsonl", [{"user": u, "item": i, "action": a, "timestamp": f"{t}T00:00:00Z",
                                       **({"weight": w} if w is not None else {})} for u, i, a, t, w in events])
    return tmp_path


def test_popularity_on_a_hand_built_folder_scores_what_was_worked_out_by_hand(hand_folder: Path) -> None:
    # Lists at k=2, leaving out what each doctor engaged with before: u1 [b, c] (c 2nd: nDCG 1/log2(3) = 0.6309),
    # u2 [a, d] (both targets: 1), u3 [b, c] (b first: 1), u4 [a, b] (e missed: 0).
    report = evaluate(load_folder(hand_folder, default_rules()), parse_cutoff("2026-01-10"), ["popularity"], k=2,
                      rounds=200)
    assert report["evaluated_doctors"] == 4 and report["events_test"] == 6
    entry = report["rankers"]["popularity"]
    assert entry["hr@10"] == 0.75
    assert entry["ndcg@10"] == pytest.approx((0.6309 + 1 + 1 + 0) / 4, abs=1e-4)
    assert entry["coverage"] == 0.8  # a, b, c, d shown; e never
    cold, new, rest = (entry["slices"][s] for s in ("cold_doctors", "new_items", "rest"))
    assert cold["doctors"] == 3 and cold["hr@10"] == pytest.approx(2 / 3, abs=1e-4)
    assert cold["ndcg@10"] == pytest.approx((0.6309 + 1 + 0) / 3, abs=1e-4)
    assert new["doctors"] == 1 and new["hr@10"] == 0.0  # u4's e: popularity cannot know a new item
    assert rest["doctors"] == 1 and rest["ndcg@10"] == 1.0  # u2
    low, high = entry["ci95"]["hr@10"]
    assert 0 <= low <= 0.75 <= high <= 1


def test_a_cutoff_after_every_event_is_refused_with_the_reason(hand_folder: Path) -> None:
    with pytest.raises(EvalError, match="cutoff"):
        evaluate(load_folder(hand_folder, default_rules()), parse_cutoff("2026-02-01"), ["popularity"])


def test_an_event_naming_an_unknown_item_is_refused_naming_its_line(hand_folder: Path) -> None:
    with (hand_folder / "events.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"user": "u1", "item": "zz", "action": "opened", "timestamp": "2026-01-02"}) + "\n")
    with pytest.raises(EvalError, match="line 12: item 'zz'"):
        load_folder(hand_folder, default_rules())


@pytest.mark.slow
def test_the_command_prints_every_ranker_with_intervals_and_the_learned_one_leads(tmp_path: Path) -> None:
    folder = tmp_path / "engagement"
    manifest = generate(folder, doctors=300, days=60, seed=3)
    assert manifest["synthetic"] is True
    out = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "service.cli", "eval", "recommend", str(folder), "--rounds", "100",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["default"] == "learned"
    names = {"popularity", "recent_popularity", "segment_popularity", "matcher_profile", "tag_affinity", "als",
             "learned"}
    assert set(report["rankers"]) == names
    for entry in report["rankers"].values():
        assert set(entry["ci95"]) == {"hr@10", "ndcg@10", "coverage"}
        assert set(entry["slices"]) == {"cold_doctors", "new_items", "rest"}
    learned = report["rankers"]["learned"]
    for name in names - {"learned"}:
        assert learned["ndcg@10"] > report["rankers"][name]["ndcg@10"], name
    assert "overall (default: learned)" in run.stdout + run.stderr  # the tables go to the console (stderr)
