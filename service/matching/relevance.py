"""How likely a candidate serves the need: a calibrated probability from what retrieval already measured.

Fused scores are ranks: first of a bad lot is still first. A rep needs to know whether a result serves the doctor,
so every candidate gets ``relevance``, the probability that a judge would grade it relevant (grade >= 2), from
features the matcher has at hand (``features``):

- need-tags (needs with tags only): the weighted share of the need the asset's tags carry, the coverage of the
  need's least- and average-covered dimension (a safety deck for a metabolism + safety need covers one of two),
  how well the best of the need's candidates covers it (whether anything serves this need at all),
  the share of the need's dimensions it contradicts (``conflicts.py``: another product than the one asked about),
  and whether it is about another therapy area or disease than the need names or implies (its product's);
- the dense cosine of its best passage, against the best of this need's candidates and their spread;
- BM25 of its best passage against the best of this need's candidates.

A logistic model per need kind (tag needs; free-text needs, which have no tag features) maps them to a probability.
Its coefficients are data (``relevance_model.json`` beside this module, or ``HCP_MATCH_RELEVANCE_MODEL``), fitted by
``hcp-content eval matching --fit`` on judged pairs and checked there for calibration on pairs it was not fitted
on. Nothing is unpickled: the file is plain JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

NeedKind = Literal["tags", "text"]

DEFAULT_MODEL = Path(__file__).with_name("relevance_model.json")

TAG_FEATURES = ("tag_share", "dims_min", "dims_mean", "conflict", "contradicts", "need_served", "cosine", "cosine_gap",
                "cosine_z", "bm25_share")
TEXT_FEATURES = ("cosine", "cosine_gap", "cosine_z", "bm25_share")
FEATURES: dict[NeedKind, tuple[str, ...]] = {"tags": TAG_FEATURES, "text": TEXT_FEATURES}

Strength = Literal["strong", "partial", "weak"]


@dataclass(frozen=True)
class Evidence:
    """What retrieval measured for each of a need's candidates, one entry per pool row."""

    dense: np.ndarray  # best passage cosine, NaN where the dense channel did not find it
    lexical: np.ndarray  # best passage BM25, NaN where not found
    tags: np.ndarray  # weighted share of the need-tags carried (0 for a free-text need)
    dims: np.ndarray  # (need dimensions x rows): each dimension's best carried confidence; 0 rows when no tags
    conflict: np.ndarray  # (need dimensions x rows): carries other values of the dimension, none wanted
    contradicts: np.ndarray  # bool per row: contradicts a penalised dimension the need names or implies


def features(e: Evidence, kind: NeedKind) -> np.ndarray:
    """The model's inputs, rows x ``FEATURES[kind]``. A candidate the dense channel did not reach scores below the
    lowest it did (it was not among the nearest), one BM25 did not reach scores 0."""
    n = len(e.tags)
    found = ~np.isnan(e.dense)
    if found.any():
        hits = e.dense[found]
        floor = float(hits.min()) - 0.02
        top, mean, spread = float(hits.max()), float(hits.mean()), float(hits.std())
    else:
        floor, top, mean, spread = 0.0, 0.0, 0.0, 0.0
    cosine = np.where(found, e.dense, floor)
    lexical = np.nan_to_num(e.lexical, nan=0.0)
    top_lex = float(lexical.max()) if n else 0.0
    columns = {
        "cosine": cosine,
        "cosine_gap": cosine - top,
        "cosine_z": (cosine - mean) / spread if spread > 1e-6 else np.zeros(n),
        "bm25_share": lexical / top_lex if top_lex > 0 else np.zeros(n),
    }
    if kind == "tags":
        has_dims = e.dims.shape[0] > 0
        columns |= {"tag_share": e.tags,
                    "dims_min": e.dims.min(axis=0) if has_dims else np.zeros(n),
                    "dims_mean": e.dims.mean(axis=0) if has_dims else np.zeros(n),
                    "conflict": e.conflict.mean(axis=0) if has_dims else np.zeros(n),
                    "contradicts": e.contradicts.astype(float),
                    "need_served": np.full(n, _best_cover(e))}
    return np.column_stack([columns[name] for name in FEATURES[kind]]) if n else np.zeros((0, len(FEATURES[kind])))


def _best_cover(e: Evidence) -> float:
    """How much of the need the best candidate that contradicts nothing carries (its weighted tag share): whether
    anything serves this need at all. Judges grade a partial match higher for a need that something serves than for
    one nothing does (there, the same partial match is filler)."""
    fine = ~e.contradicts
    return float(e.tags[fine].max()) if fine.any() else 0.0


@dataclass(frozen=True)
class Logistic:
    """Standardised inputs, a linear score, the logistic function: what ``fit`` in eval/relevance.py writes."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def to_json(self) -> dict[str, object]:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict[str, object], kind: str, expected: tuple[str, ...]) -> Logistic:
        names: tuple[str, ...] = tuple(data["features"])  # type: ignore[arg-type]
        if names != expected:
            raise ValueError(f"the {kind} relevance model was fitted on {list(names)}, this code computes "
                             f"{list(expected)}: refit it (hcp-content eval matching --fit)")
        arrays = [np.asarray(data[k], dtype=float) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(names),) for a in arrays) or not all(np.isfinite(a).all() for a in arrays):
            raise ValueError(f"the {kind} relevance model's arrays must be {len(names)} finite numbers each")
        intercept = float(data["intercept"])  # type: ignore[arg-type]
        if not math.isfinite(intercept):
            raise ValueError(f"the {kind} relevance model's intercept is not a number")
        return cls(names, arrays[0], np.where(arrays[1] > 0, arrays[1], 1.0), arrays[2], intercept)


@dataclass(frozen=True)
class RelevanceModel:
    """One logistic model per need kind, and the words a rep reads for a probability."""

    models: dict[NeedKind, Logistic]
    strong: float  # at or above: "strong"
    partial: float  # at or above: "partial"; below: "weak"

    def relevance(self, e: Evidence, kind: NeedKind) -> np.ndarray:
        return self.models[kind].predict(features(e, kind))

    def strength(self, relevance: float) -> Strength:
        return "strong" if relevance >= self.strong else "partial" if relevance >= self.partial else "weak"

    def to_json(self) -> dict[str, object]:
        return {"strength": {"strong": self.strong, "partial": self.partial},
                "models": {kind: m.to_json() for kind, m in self.models.items()}}


def load_model(path: Path | None) -> RelevanceModel:
    """The fitted model at ``path`` (None: the one shipped with the service); ValueError naming what is wrong."""
    path = path or DEFAULT_MODEL
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = {kind: Logistic.from_json(data["models"][kind], kind, FEATURES[kind]) for kind in FEATURES}
        bands = data["strength"]
        return RelevanceModel(models, float(bands["strong"]), float(bands["partial"]))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the relevance model {path}: {err}") from err


def dimension_cover(need_tags: dict[str, dict[str, float]], best: dict[tuple[str, str], np.ndarray],
                    rows: np.ndarray) -> np.ndarray:
    """Per need dimension (sorted), each row's best confidence of any of its wanted values: dimensions x rows."""
    dims = sorted(need_tags)
    out = np.zeros((len(dims), len(rows)))
    for i, d in enumerate(dims):
        for v in need_tags[d]:
            found = best.get((d, v))
            if found is not None:
                out[i] = np.maximum(out[i], found[rows])
    return out
