"""Tags in the database: the reviews of proposals and the gold labels reviews make (the engine's proposals are
written by ``service.tagging.proposals``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import AssetTag

REVIEWED = ("accepted", "rejected", "edited")


@dataclass
class GoldAsset:
    asset_id: str
    labels: dict[str, set[str]]  # dimension -> accepted values, for every dimension with a review


def reviewed_gold(s: Session) -> list[GoldAsset]:
    """Gold labels from reviews: per asset and reviewed dimension, the values accepted or set by a reviewer.

    A dimension counts as labelled on an asset once any of its tags was reviewed there; its values are
    the accepted ones (possibly none, when every proposal was rejected)."""
    by_asset: dict[str, dict[str, set[str]]] = {}
    for tag in s.scalars(select(AssetTag).where(AssetTag.status.in_(REVIEWED)).order_by(AssetTag.asset_id)):
        labels = by_asset.setdefault(tag.asset_id, {})
        values = labels.setdefault(tag.dimension, set())
        if tag.status == "accepted":
            values.add(tag.value)
    return [GoldAsset(a, labels) for a, labels in by_asset.items()]
