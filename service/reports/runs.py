"""A run to score: gold labels per item, the proposals made for those items, and (from the database) the
review decisions over time."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.taxonomy import Taxonomy
from service.store.models import AssetTag, TagReview
from service.store.tags import reviewed_gold


@dataclass(frozen=True)
class Prediction:
    item: str
    dimension: str
    value: str
    confidence: float
    method: str


@dataclass(frozen=True)
class ReviewEvent:
    at: datetime
    action: str  # accept, reject, edit (adds are not decisions on a proposal)


@dataclass
class Run:
    label: str
    source: str
    mode: str
    taxonomy: str
    gold: dict[str, dict[str, set[str]]]  # item -> labelled dimension -> values (possibly none)
    predictions: list[Prediction]
    reviews: list[ReviewEvent] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    prompt_version: str | None = None

    def scored(self) -> list[Prediction]:
        """The proposals that can be judged: those in a dimension the item's gold labels."""
        return [p for p in self.predictions if p.dimension in self.gold.get(p.item, {})]

    def correct(self, p: Prediction) -> bool:
        return p.value in self.gold.get(p.item, {}).get(p.dimension, set())


def _most_common(values: list[str | None]) -> str | None:
    present = [v for v in values if v]
    return Counter(present).most_common(1)[0][0] if present else None


def run_from_reviews(s: Session, taxonomy: Taxonomy) -> Run:
    """The engine's stored proposals scored against what reviewers decided: a rejected or edited proposal
    is wrong, an accepted one right, and a value a reviewer added or edited in is a label the engine missed."""
    gold = {g.asset_id: g.labels for g in reviewed_gold(s)}
    predictions: list[Prediction] = []
    models: list[str | None] = []
    prompts: list[str | None] = []
    if gold:
        query = select(AssetTag).where(AssetTag.asset_id.in_(list(gold)), AssetTag.method != "human")
        for tag in s.scalars(query.order_by(AssetTag.id)):
            predictions.append(Prediction(tag.asset_id, tag.dimension, tag.value, tag.confidence, tag.method))
            models.append(json.dumps(tag.models, sort_keys=True) if tag.models else None)
            prompts.append(tag.prompt_version)
    reviews = [ReviewEvent(r.at, r.action) for r in s.scalars(
        select(TagReview).where(TagReview.action != "add").order_by(TagReview.at))]
    model_key = _most_common(models)
    model_map = {str(k): str(v) for k, v in json.loads(model_key).items()} if model_key else {}
    prompt = _most_common(prompts)
    label = "stored proposals" + (f" · {prompt}" if prompt else "") + (
        f" · {model_map['embedder']}" if "embedder" in model_map else "")
    return Run(label=label, source="reviewed", mode="service", taxonomy=taxonomy.key, gold=gold,
               predictions=predictions, reviews=reviews, models=model_map, prompt_version=prompt)
