"""`hcp-content eval recommend FOLDER`: every ranker on one temporal split of an engagement folder.

The folder holds three JSON Lines files (no taxonomy needed: dimensions are read from the data):
- items.jsonl: {"id", "tags": {dimension: [values]}, optional "text", optional "published" (ISO date)}
- users.jsonl: {"id", "attributes": {dimension: value}}
- events.jsonl: {"user", "item", "action", "timestamp" (ISO), optional "weight", optional "dwell_seconds"}

The split is one global cutoff: every event after it is test, never a random split. A doctor's targets are the
items they engaged with (any action but sent and dismissed) after the cutoff and never before it; items they
engaged with before are not ranked for them. Metrics per doctor at 10: HR (a target in the list) and nDCG (binary
gains); catalogue coverage is the share of items shown to anyone. 95% intervals: bootstrap over doctors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from eval.contract import EvalError
from service.engagement.hybrid import LearnedRanker
from service.engagement.interactions import Catalogue, Doctors, Interactions
from service.engagement.rankers import (
    GlobalPopularity,
    ImplicitALS,
    ProfileMatcher,
    Ranker,
    SegmentPopularity,
    TagAffinity,
    recent_popularity,
)
from service.engagement.rules import ACTIONS, EngagementRules, default_rules

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT = "learned"
COLD_EVENTS = 3


def days(when: str) -> float:
    """ISO date or timestamp → days since the epoch (a date alone is its midnight UTC)."""
    parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - EPOCH).total_seconds() / 86400


@dataclass
class Folder:
    catalogue: Catalogue
    doctors: Doctors
    events: Interactions


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EvalError(f"{path} is missing: an engagement folder holds items.jsonl, users.jsonl and events.jsonl")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise EvalError(f"{path.name} line {n}: not JSON ({err.msg})") from err
    return rows


def load_folder(folder: Path, rules: EngagementRules) -> Folder:
    items = _jsonl(folder / "items.jsonl")
    catalogue = Catalogue.build([(str(i["id"]), i.get("tags") or {},
                                  days(i["published"]) if i.get("published") else None) for i in items])
    users = _jsonl(folder / "users.jsonl")
    known = {str(u["id"]) for u in users}
    rows = _jsonl(folder / "events.jsonl")
    extra = sorted({str(e["user"]) for e in rows} - known)  # a doctor with events but no attributes
    doctors = Doctors([str(u["id"]) for u in users] + extra,
                      [{k: str(v) for k, v in (u.get("attributes") or {}).items()} for u in users] +
                      [{} for _ in extra])
    parsed = []
    for n, e in enumerate(rows, 1):
        if e.get("action") not in ACTIONS:
            raise EvalError(f"events.jsonl line {n}: action {e.get('action')!r} is not one of {', '.join(ACTIONS)}")
        item = catalogue.index.get(str(e.get("item")))
        if item is None:
            raise EvalError(f"events.jsonl line {n}: item {e.get('item')!r} is not in items.jsonl")
        parsed.append((doctors.index[str(e["user"])], item, e["action"], days(e["timestamp"]),
                       e.get("dwell_seconds"), e.get("weight")))
    return Folder(catalogue, doctors, Interactions.build(parsed, rules))


def rankers(rules: EngagementRules) -> dict[str, Callable[[], Ranker]]:
    """Every ranker the report prints, by name; DEFAULT is the one the service runs."""
    return {"popularity": GlobalPopularity, "recent_popularity": recent_popularity,
            "segment_popularity": SegmentPopularity, "matcher_profile": lambda: ProfileMatcher(rules),
            "tag_affinity": lambda: TagAffinity(rules), "als": ImplicitALS, DEFAULT: lambda: LearnedRanker(rules)}


@dataclass
class Split:
    cutoff: float
    users: np.ndarray  # the evaluated doctors (at least one target)
    targets: list[np.ndarray]
    seen: sparse.csr_matrix  # doctors × items engaged with before the cutoff (not ranked for them)
    cold: np.ndarray  # per evaluated doctor: fewer than COLD_EVENTS events before the cutoff
    new_items: np.ndarray  # per item: no event before the cutoff


def split(folder: Folder, cutoff: float) -> Split:
    ev, n_users, n_items = folder.events, len(folder.doctors.ids), len(folder.catalogue.ids)
    train = ev.before(cutoff)
    seen = (train.positive().matrix(n_users, n_items) > 0).astype(np.int8).tocsr()
    test = ev.where((ev.t >= cutoff) & (ev.weight > 0))
    after = sparse.csr_matrix((np.ones(len(test)), (test.user, test.item)), shape=(n_users, n_items)) > 0
    targets = (after.astype(np.int8) - after.multiply(seen)).tocsr()
    targets.eliminate_zeros()
    users = np.flatnonzero(np.diff(targets.indptr) > 0)
    history = np.bincount(train.user, minlength=n_users)
    new_items = np.bincount(train.item, minlength=n_items) == 0
    return Split(cutoff, users, [targets[u].indices for u in users], seen, history[users] < COLD_EVENTS, new_items)


def top_k(scores: np.ndarray, seen: sparse.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """Each doctor's k best items, leaving out what they engaged with before; ties go to the lower item index."""
    scores = scores.astype(np.float64, copy=True)
    for row, u in enumerate(users):
        scores[row, seen[u].indices] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]


def per_user(lists: np.ndarray, targets: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """HR@k and nDCG@k of each doctor (binary gains; the ideal list puts every target first)."""
    discounts = 1 / np.log2(np.arange(2, k + 2))
    hr, ndcg = np.zeros(len(lists)), np.zeros(len(lists))
    for n, (ranked, wanted) in enumerate(zip(lists, targets, strict=True)):
        hits = np.isin(ranked, wanted)
        hr[n] = float(hits.any())
        ndcg[n] = float((hits * discounts).sum() / discounts[:min(len(wanted), k)].sum()) if len(wanted) else 0.0
    return hr, ndcg


def summarise(lists: np.ndarray, targets: Sequence[np.ndarray], n_items: int, k: int, rounds: int,
              rng: np.random.Generator) -> dict[str, Any]:
    """The three metrics and their bootstrap 95% intervals (doctors resampled; coverage recomputed per round,
    bias-corrected)."""
    if not len(lists):
        return {"doctors": 0, "hr@10": None, "ndcg@10": None, "coverage": None, "ci95": {}}
    hr, ndcg = per_user(lists, targets, k)
    shown = sparse.csr_matrix((np.ones(lists.size), (np.repeat(np.arange(len(lists)), lists.shape[1]),
                                                     lists.ravel())), shape=(len(lists), n_items))
    coverage = float((np.asarray(shown.sum(axis=0)).ravel() > 0).mean())
    draws = rng.integers(0, len(lists), size=(rounds, len(lists)))
    counts = np.zeros((rounds, len(lists)))
    np.add.at(counts, (np.repeat(np.arange(rounds), len(lists)), draws.ravel()), 1)
    boot_cov = (np.asarray(shown.T @ counts.T).T > 0).mean(axis=1)
    # A resample holds fewer distinct doctors, so it shows fewer items: coverage's bootstrap is biased low. Its
    # interval is shifted by that bias (the bootstrap's median minus the estimate), so it is centred on the estimate.
    boot_cov += coverage - np.median(boot_cov)

    def ci(values: np.ndarray) -> list[float]:
        return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]

    return {"doctors": len(lists), "hr@10": round(float(hr.mean()), 4), "ndcg@10": round(float(ndcg.mean()), 4),
            "coverage": round(coverage, 4),
            "ci95": {"hr@10": ci(hr[draws].mean(axis=1)), "ndcg@10": ci(ndcg[draws].mean(axis=1)),
                     "coverage": ci(boot_cov)}}


def slices(s: Split) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Rows of the evaluated doctors and their targets per slice: doctors with fewer than 3 events before the
    cutoff; items first seen after it (targets held to those); and the rest (other doctors, seen items)."""
    out: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    rows = np.flatnonzero(s.cold)
    out["cold_doctors"] = (rows, [s.targets[r] for r in rows])
    new = [t[s.new_items[t]] for t in s.targets]
    rows = np.array([r for r, t in enumerate(new) if len(t)], dtype=np.int64)
    out["new_items"] = (rows, [new[r] for r in rows])
    rest = [t[~s.new_items[t]] for t in s.targets]
    rows = np.array([r for r, t in enumerate(rest) if len(t) and not s.cold[r]], dtype=np.int64)
    out["rest"] = (rows, [rest[r] for r in rows])
    return out


def default_cutoff(folder: Folder, test_days: float) -> float:
    return float(folder.events.t.max()) - test_days


def evaluate(folder: Folder, cutoff: float, names: Sequence[str] | None = None, k: int = 10, rounds: int = 1000,
             seed: int = 0, rules: EngagementRules | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report: every ranker fitted on the events before the cutoff and judged on those after."""
    rules = rules or default_rules()
    s = split(folder, cutoff)
    if not len(s.users):
        raise EvalError("no doctor engaged with anything new after the cutoff: move it earlier (--cutoff)")
    train = folder.events.before(cutoff)
    available = rankers(rules)
    chosen = list(names) if names else list(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise EvalError(f"unknown ranker(s) {unknown}: choose from {', '.join(available)}")
    cut = datetime.fromtimestamp(cutoff * 86400, UTC)
    report: dict[str, Any] = {
        "default": DEFAULT, "cutoff": cut.isoformat(), "k": k, "bootstrap_rounds": rounds,
        "doctors": len(folder.doctors.ids), "items": len(folder.catalogue.ids), "events_train": len(train),
        "events_test": int((folder.events.t >= cutoff).sum()), "evaluated_doctors": len(s.users),
        "rankers": {}}
    for name in chosen:
        if progress:
            progress(name)
        ranker = available[name]()
        ranker.fit(train, folder.catalogue, folder.doctors, cutoff)
        lists = top_k(ranker.score(s.users), s.seen, s.users, k)
        n_items = len(folder.catalogue.ids)
        entry = summarise(lists, s.targets, n_items, k, rounds, np.random.default_rng(seed))
        entry["slices"] = {slice_name: summarise(lists[rows], targets, n_items, k, rounds,
                                                 np.random.default_rng(seed))
                           for slice_name, (rows, targets) in slices(s).items()}
        report["rankers"][name] = entry
    return report


def parse_cutoff(text: str) -> float:
    try:
        return days(text if "T" in text else date.fromisoformat(text).isoformat())
    except ValueError as err:
        raise EvalError(f"--cutoff {text!r} is not an ISO date or timestamp") from err
